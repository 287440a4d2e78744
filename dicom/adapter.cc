/*
 * adapter.cc - the DCMTK adapter: the project's only C++, behind include/dcmcrypt_dicom.h.
 * Loads an object in any transfer syntax (DCMTK's codecs; OpenJPEG for JPEG 2000 and HTJ2K),
 * hands every frame in its real layout to the cipher library, builds the encrypted object
 * (docs/dicom.md) and restores the original on decryption. Every exception stops here.
 */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcddirif.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcostrmb.h"
#include "dcmtk/dcmdata/dcpxitem.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/dcmjpls/djrparam.h"
#include "dcmtk/oflog/oflog.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <exception>
#include <atomic>
#include <chrono>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include <openjpeg.h>

#include "dcmcrypt/dicom.h"
#include "prescan.h"

namespace {

const char *const kCreator = "DCMCRYPT 1";
const Uint16 kGroup = 0x0011;
const char *const kMarker =
    "ENCRYPTED PIXEL DATA (dcmcrypt): not for diagnosis; restore with dcmdecrypt";

/* Attributes the encryption changes or removes because they show or describe the original
 * pixels; their original values travel encrypted in the payload (format version 1). */
const DcmTagKey kTouched[] = {
    DCM_SOPInstanceUID,           DCM_SeriesInstanceUID,        DCM_ImageComments,
    DCM_DerivationDescription,    DCM_IconImageSequence,        DCM_SmallestImagePixelValue,
    DCM_LargestImagePixelValue,   DCM_SmallestPixelValueInSeries, DCM_LargestPixelValueInSeries,
    DCM_PixelPaddingValue,        DCM_PixelPaddingRangeLimit,   DCM_VOILUTSequence,
    DCM_SamplesPerPixel,          DCM_PhotometricInterpretation, DCM_SOPClassUID,
};
/* Of those, the ones the encrypted object does not carry at all. */
const DcmTagKey kRemoved[] = {
    DCM_IconImageSequence,        DCM_SmallestImagePixelValue,  DCM_LargestImagePixelValue,
    DCM_SmallestPixelValueInSeries, DCM_LargestPixelValueInSeries, DCM_PixelPaddingValue,
    DCM_PixelPaddingRangeLimit,   DCM_VOILUTSequence,
};

struct Failure {
    dcmc_status status;
    std::string msg;
};

[[noreturn]] void fail(dcmc_status st, const char *fmt, ...)
{
    char buf[DCMC_DICOM_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    throw Failure{st, buf};
}

void init_once()
{
    static std::once_flag once;
    std::call_once(once, [] {
        /* Library code never prints: DCMTK's own warnings would otherwise go to stderr. */
        OFLog::configure(OFLogger::OFF_LOG_LEVEL);
        DcmRLEDecoderRegistration::registerCodecs();
        DcmRLEEncoderRegistration::registerCodecs();
        DJDecoderRegistration::registerCodecs();
        DJEncoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
        DJLSEncoderRegistration::registerCodecs();
    });
}

uint64_t now_ns()
{
    return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool host_little_endian()
{
    const Uint16 one = 1;
    return *reinterpret_cast<const Uint8 *>(&one) == 1;
}

std::string get_string(DcmItem *ds, const DcmTagKey &key)
{
    OFString s;
    if (ds->findAndGetOFStringArray(key, s).good())
        return std::string(s.c_str());
    return std::string();
}

long get_int(DcmItem *ds, const DcmTagKey &key, long dflt)
{
    Uint16 v16;
    if (ds->findAndGetUint16(key, v16).good())
        return v16;
    Sint32 v32;
    if (ds->findAndGetSint32(key, v32).good())
        return v32;
    OFString s;
    if (ds->findAndGetOFString(key, s).good() && !s.empty())
        return atol(s.c_str());
    return dflt;
}

/* ---- loading ---------------------------------------------------------------------------- */

struct Loaded {
    DcmFileFormat ff;
    DcmDataset *ds = nullptr;
    std::string ts_uid;
    uint64_t file_bytes = 0; /* size on disk, the yardstick of what decoding may expand to */
};

/* Decoded pixels may be at most this many times the file's size (or kDecodedFloor): see
 * dcmc_dicom_set_max_expansion. */
std::atomic<unsigned> g_max_expansion{DCMC_DICOM_MAX_EXPANSION_DEFAULT};
const uint64_t kDecodedFloor = 4u << 20;

/* DCMTK reads nested sequences recursively, without a limit: a small file nesting thousands of
 * them overflows the stack. Real objects nest a handful of levels (enhanced multi-frame
 * functional groups about six); anything deeper than this is refused before DCMTK sees it. */
const unsigned kMaxNesting = 64;

void check_nesting(const char *path)
{
    dcmci_prescan_result r;
    if (dcmci_prescan(path, kMaxNesting, &r) != 0)
        fail(DCMC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    if (r.bad_record_type)
        fail(DCMC_ERR_FORMAT,
             "%s: a Directory Record Type (0004,1430) longer than 16 characters: refused "
             "before parsing (DCMTK 3.6.7 cannot read it safely)",
             path);
    if (r.depth > kMaxNesting)
        fail(DCMC_ERR_UNSUPPORTED,
             "%s: sequences nested more than %u deep: refused before parsing (no real object "
             "nests so deep)",
             path, kMaxNesting);
}

/* max_read: values longer than this stay on disk until used (DCMTK's lazy loading). */
void load(const char *path, Loaded &L, bool need_pixels, Uint32 max_read = DCM_MaxReadLength)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail(DCMC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0)
        L.file_bytes = (uint64_t)st.st_size;
    fclose(f);
    check_nesting(path);
    OFCondition c = L.ff.loadFile(path, EXS_Unknown, EGL_noChange, max_read, ERM_autoDetect);
    if (c.bad())
        fail(DCMC_ERR_FORMAT, "%s: not a readable DICOM object (%s)", path, c.text());
    L.ds = L.ff.getDataset();
    L.ts_uid = get_string(L.ff.getMetaInfo(), DCM_TransferSyntaxUID);
    if (L.ts_uid.empty())
        L.ts_uid = DcmXfer(L.ds->getOriginalXfer()).getXferID();
    if (need_pixels && !L.ds->tagExists(DCM_PixelData)) {
        if (L.ds->tagExists(DCM_FloatPixelData) || L.ds->tagExists(DCM_DoubleFloatPixelData))
            fail(DCMC_ERR_UNSUPPORTED, "%s: float pixel data is not supported", path);
        fail(DCMC_ERR_NOT_IMAGE, "%s: no pixel data (SOP class %s): not an image to encrypt", path,
             get_string(L.ds, DCM_SOPClassUID).c_str());
    }
}

bool is_j2k(const std::string &ts)
{
    static const char *const j2k[] = {"1.2.840.10008.1.2.4.90",  "1.2.840.10008.1.2.4.91",
                                      "1.2.840.10008.1.2.4.92",  "1.2.840.10008.1.2.4.93",
                                      "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
                                      "1.2.840.10008.1.2.4.203"};
    for (const char *u : j2k)
        if (ts == u)
            return true;
    return false;
}

/* ---- OpenJPEG: JPEG 2000 and HTJ2K frames, which free DCMTK cannot decode ----------------- */

struct MemStream {
    const Uint8 *data;
    OPJ_SIZE_T size, pos;
};

OPJ_SIZE_T mem_read(void *buf, OPJ_SIZE_T n, void *user)
{
    MemStream *m = static_cast<MemStream *>(user);
    if (m->pos >= m->size)
        return (OPJ_SIZE_T)-1;
    OPJ_SIZE_T k = n < m->size - m->pos ? n : m->size - m->pos;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return k;
}

OPJ_OFF_T mem_skip(OPJ_OFF_T n, void *user)
{
    MemStream *m = static_cast<MemStream *>(user);
    if (n < 0 || (OPJ_SIZE_T)n > m->size - m->pos)
        n = (OPJ_OFF_T)(m->size - m->pos);
    m->pos += (OPJ_SIZE_T)n;
    return n;
}

OPJ_BOOL mem_seek(OPJ_OFF_T n, void *user)
{
    MemStream *m = static_cast<MemStream *>(user);
    if (n < 0 || (OPJ_SIZE_T)n > m->size)
        return OPJ_FALSE;
    m->pos = (OPJ_SIZE_T)n;
    return OPJ_TRUE;
}

void quiet_cb(const char *, void *) {}

/* Decode one codestream into `out` (frame bytes of the native layout, planar 0); *prec gets
 * the precision the codestream declares. */
void j2k_decode_frame(const Uint8 *data, size_t len, const dcmc_layout &l, Uint8 *out,
                      unsigned *prec)
{
    const bool jp2 = len >= 12 && memcmp(data, "\0\0\0\x0cjP  ", 8) == 0;
    opj_codec_t *codec = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
    opj_stream_t *stream = opj_stream_create(1 << 16, OPJ_TRUE);
    opj_image_t *img = nullptr;
    MemStream ms{data, len, 0};
    std::string err;
    if (!codec || !stream) {
        err = "OpenJPEG: out of memory";
    } else {
        opj_set_error_handler(codec, quiet_cb, nullptr);
        opj_set_warning_handler(codec, quiet_cb, nullptr);
        opj_set_info_handler(codec, quiet_cb, nullptr);
        opj_stream_set_user_data(stream, &ms, nullptr);
        opj_stream_set_user_data_length(stream, len);
        opj_stream_set_read_function(stream, mem_read);
        opj_stream_set_skip_function(stream, mem_skip);
        opj_stream_set_seek_function(stream, mem_seek);
        opj_dparameters_t p;
        opj_set_default_decoder_parameters(&p);
        if (!opj_setup_decoder(codec, &p) || !opj_read_header(stream, codec, &img) ||
            !opj_decode(codec, stream, img) || !opj_end_decompress(codec, stream))
            err = "OpenJPEG could not decode a JPEG 2000 frame";
    }
    if (err.empty()) {
        if (img->numcomps != l.samples)
            err = "JPEG 2000 component count does not match Samples per Pixel";
        for (OPJ_UINT32 c = 0; err.empty() && c < img->numcomps; c++)
            if (img->comps[c].w != l.cols || img->comps[c].h != l.rows || img->comps[c].dx != 1 ||
                img->comps[c].dy != 1)
                err = "JPEG 2000 image size does not match Rows and Columns";
    }
    if (err.empty() && (img->comps[0].prec < 1 || img->comps[0].prec > l.bits_allocated))
        err = "JPEG 2000 precision exceeds Bits Allocated";
    if (err.empty()) {
        *prec = img->comps[0].prec;
        const size_t n = (size_t)l.rows * l.cols, B = l.bits_allocated / 8;
        for (OPJ_UINT32 c = 0; c < img->numcomps; c++) {
            const OPJ_INT32 *src = img->comps[c].data;
            for (size_t i = 0; i < n; i++) {
                Uint32 v = (Uint32)src[i];
                Uint8 *dst = out + (i * l.samples + c) * B;
                for (size_t b = 0; b < B; b++)
                    dst[b] = (Uint8)(v >> (8 * b));
            }
        }
    }
    if (img)
        opj_image_destroy(img);
    if (stream)
        opj_stream_destroy(stream);
    if (codec)
        opj_destroy_codec(codec);
    if (!err.empty())
        fail(DCMC_ERR_UNSUPPORTED, "%s", err.c_str());
}

DcmPixelSequence *pixel_sequence(DcmDataset *ds)
{
    DcmElement *el = nullptr;
    /* A hostile file can hold (7FE0,0010) with another VR: only a DcmPixelData has
     * representations. */
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el || el->ident() != EVR_PixelData)
        return nullptr;
    DcmPixelData *pd = OFstatic_cast(DcmPixelData *, el);
    E_TransferSyntax xf;
    const DcmRepresentationParameter *rp = nullptr;
    pd->getOriginalRepresentationKey(xf, rp);
    DcmPixelSequence *seq = nullptr;
    if (pd->getEncapsulatedRepresentation(xf, rp, seq).good() && seq)
        return seq;
    return nullptr;
}

/* The codestream of every frame: one fragment per frame, one frame over all fragments, or
 * frames that start at fragments beginning with the SOC marker. */
std::vector<std::vector<Uint8>> j2k_frames(DcmPixelSequence *seq, Uint32 frames)
{
    std::vector<std::vector<Uint8>> out;
    const unsigned long nfrag = seq->card();
    for (unsigned long i = 1; i < nfrag; i++) { /* item 0 is the offset table */
        DcmPixelItem *it = nullptr;
        Uint8 *p = nullptr;
        if (seq->getItem(it, i).bad() || !it || it->getUint8Array(p).bad())
            fail(DCMC_ERR_FORMAT, "damaged JPEG 2000 fragment");
        const Uint32 n = it->getLength();
        const bool soc = n >= 2 && p && p[0] == 0xFF && p[1] == 0x4F;
        const bool jp2 = n >= 8 && p && memcmp(p, "\0\0\0\x0cjP  ", 8) == 0;
        bool starts = out.empty() || (frames > 1 && (nfrag - 1 == frames || soc || jp2));
        if (starts)
            out.emplace_back();
        if (n && p)
            out.back().insert(out.back().end(), p, p + n);
    }
    if (out.size() != frames)
        fail(DCMC_ERR_FORMAT, "JPEG 2000 pixel data holds %zu frames, Number of Frames says %u",
             out.size(), (unsigned)frames);
    return out;
}

/* ---- pixel layout and access -------------------------------------------------------------- */

/* Bytes that `n` frames of layout `l` occupy once unpacked (frames byte-aligned), or a failure
 * when that does not fit in memory at all. Checked before anything of that size is allocated. */
size_t image_bytes(const dcmc_layout &l, Uint32 n)
{
    size_t fb = 0, total = 0;
    if (dcmc_layout_frame_bytes(&l, &fb) != DCMC_OK || fb == 0 ||
        __builtin_mul_overflow(fb, (size_t)n, &total))
        fail(DCMC_ERR_UNSUPPORTED, "%u frames of %ux%u pixels do not fit in memory", (unsigned)n,
             l.cols, l.rows);
    return total;
}

struct Pixels {
    dcmc_layout layout{};
    Uint32 frames = 1;
    size_t frame_bytes = 0;
    std::vector<Uint8> data; /* frames * frame_bytes, frames byte-aligned */
    /* What the pixel data element held after the last frame, when that is not just what DICOM's
     * rules would write there (zero bits to the end of the byte, a zero pad byte): junk bits after
     * a 1-bit image, a non-zero pad byte, surplus bytes. Kept so that decryption is exact. The
     * tail starts at byte floor(F*L/8) for Bits Allocated 1 (its bits below F*L zero), else at
     * byte F*frame_bytes. */
    std::vector<Uint8> tail;
    bool has_tail = false;

    /* Zeroed room for `n` frames of layout `l`: callers have checked the size (image_bytes) against
     * what the object really holds before asking for it. */
    void reset(const dcmc_layout &l, Uint32 n)
    {
        layout = l;
        frames = n;
        dcmc_layout_frame_bytes(&l, &frame_bytes);
        data.assign(image_bytes(l, n), 0);
        tail.clear();
        has_tail = false;
    }
};

/* Where the tail of `frames` frames of layout `l` starts, and how long the pixel data element is
 * when it holds nothing else (frames, then zero bits to a byte boundary, then a pad byte to an
 * even length). */
void tail_geometry(const dcmc_layout &l, Uint32 frames, size_t fb, size_t *start, size_t *plain_len)
{
    size_t packed;
    if (l.bits_allocated == 1) {
        const unsigned long long bits = (unsigned long long)l.rows * l.cols * l.samples * frames;
        *start = (size_t)(bits / 8);
        packed = (size_t)((bits + 7) / 8);
    } else {
        *start = packed = (size_t)frames * fb;
    }
    *plain_len = packed + (packed % 2);
}

dcmc_layout layout_of(DcmItem *ds)
{
    dcmc_layout l{};
    l.rows = (uint32_t)get_int(ds, DCM_Rows, 0);
    l.cols = (uint32_t)get_int(ds, DCM_Columns, 0);
    l.samples = (uint32_t)get_int(ds, DCM_SamplesPerPixel, 1);
    l.planar = l.samples > 1 ? (uint32_t)get_int(ds, DCM_PlanarConfiguration, 0) : 0;
    l.bits_allocated = (uint32_t)get_int(ds, DCM_BitsAllocated, 0);
    l.bits_stored = (uint32_t)get_int(ds, DCM_BitsStored, l.bits_allocated);
    l.high_bit = (uint32_t)get_int(ds, DCM_HighBit, (long)l.bits_stored - 1);
    l.is_signed = (uint32_t)get_int(ds, DCM_PixelRepresentation, 0);
    return l;
}

Uint32 frames_of(DcmItem *ds)
{
    long f = get_int(ds, DCM_NumberOfFrames, 1);
    if (f < 1 || f > 0x7FFFFFFF)
        fail(DCMC_ERR_FORMAT, "Number of Frames %ld is not valid", f);
    return (Uint32)f;
}

void check_layout(const dcmc_layout &l, const std::string &photometric)
{
    dcmc_status st = dcmc_layout_check(&l);
    if (st != DCMC_OK)
        fail(DCMC_ERR_UNSUPPORTED,
             "unsupported pixel layout: %ux%u, %u samples, bits allocated %u, stored %u, high bit %u",
             l.rows, l.cols, l.samples, l.bits_allocated, l.bits_stored, l.high_bit);
    if (photometric.find("422") != std::string::npos || photometric.find("420") != std::string::npos)
        fail(DCMC_ERR_UNSUPPORTED, "subsampled colour (%s) in native pixel data is not supported",
             photometric.c_str());
}

/* Native pixel bytes of the (already decoded) dataset, frames byte-aligned. Pixel data shorter
 * than the frames need fails with `short_status` (truncated input; an integrity failure for an
 * encrypted object, whose header the geometry comes from), before any room is allocated. */
void native_bytes(DcmDataset *ds, const dcmc_layout &l, Uint32 frames, Pixels &px,
                  dcmc_status short_status = DCMC_ERR_TRUNCATED)
{
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el)
        fail(DCMC_ERR_FORMAT, "pixel data cannot be read");
    const Uint32 len = el->getLength();
    const size_t L = (size_t)l.rows * l.cols * l.samples;
    if (dcmc_layout_check(&l) != DCMC_OK)
        fail(DCMC_ERR_UNSUPPORTED, "unsupported pixel layout");
    /* The declared geometry is checked against the bytes really there before any room is made
     * for it: a small file must not cost gigabytes. */
    if (l.bits_allocated == 1) {
        const unsigned long long need_bits = (unsigned long long)L * frames;
        if ((unsigned long long)len * 8 < need_bits)
            fail(short_status, "pixel data holds %u bytes, the image needs %llu bits", len,
                 need_bits);
    } else {
        const size_t need = image_bytes(l, frames);
        if ((unsigned long long)len < (unsigned long long)need)
            fail(short_status, "pixel data holds %u bytes, %u frames need %llu", len,
                 (unsigned)frames, (unsigned long long)need);
    }
    /* Only now is the value read (DCMTK loads large values lazily, sized by their length). */
    const Uint8 *bytes = nullptr;
    if (el->getVR() == EVR_OW) {
        Uint16 *w = nullptr;
        if (el->getUint16Array(w).bad() || (!w && len))
            fail(DCMC_ERR_FORMAT, "pixel data cannot be read");
        bytes = reinterpret_cast<const Uint8 *>(w);
    } else {
        Uint8 *b = nullptr;
        if (el->getUint8Array(b).bad() || (!b && len))
            fail(DCMC_ERR_FORMAT, "pixel data cannot be read");
        bytes = b;
    }
    px.reset(l, frames);
    const size_t fb = px.frame_bytes;
    if (l.bits_allocated == 1) {
        /* Frames of a 1-bit object follow each other bit after bit (PS3.5 8.1.1). */
        for (Uint32 f = 0; f < frames; f++)
            for (size_t j = 0; j < L; j++) {
                unsigned long long bit = (unsigned long long)f * L + j;
                if ((bytes[bit / 8] >> (bit % 8)) & 1)
                    px.data[f * fb + j / 8] |= (Uint8)(1u << (j % 8));
            }
    } else {
        memcpy(px.data.data(), bytes, (size_t)frames * fb);
    }
    size_t start, plain_len;
    tail_geometry(l, frames, fb, &start, &plain_len);
    std::vector<Uint8> tail(bytes + start, bytes + len);
    if (l.bits_allocated == 1 && !tail.empty()) /* the last frame's own bits are not tail */
        tail[0] &= (Uint8)(0xFFu << ((L * (unsigned long long)frames) % 8));
    const bool plain = len == plain_len &&
                       std::all_of(tail.begin(), tail.end(), [](Uint8 v) { return v == 0; });
    if (!plain) {
        px.tail.swap(tail);
        px.has_tail = true;
    }
}

/* Replace the pixel data element with native bytes (frames packed as the layout says), then
 * `tail` (the original's, on decryption) or, without one, a zero pad byte to an even length. */
void put_native(DcmDataset *ds, const Pixels &px, const std::vector<Uint8> *tail = nullptr)
{
    const dcmc_layout &l = px.layout;
    std::vector<Uint8> out;
    if (l.bits_allocated == 1) {
        const size_t L = (size_t)l.rows * l.cols * l.samples;
        out.assign(((unsigned long long)L * px.frames + 7) / 8, 0);
        for (Uint32 f = 0; f < px.frames; f++)
            for (size_t j = 0; j < L; j++)
                if ((px.data[f * px.frame_bytes + j / 8] >> (j % 8)) & 1) {
                    unsigned long long bit = (unsigned long long)f * L + j;
                    out[bit / 8] |= (Uint8)(1u << (bit % 8));
                }
    } else {
        out = px.data;
    }
    if (tail) {
        size_t start, plain_len;
        tail_geometry(l, px.frames, px.frame_bytes, &start, &plain_len);
        if (out.size() < start + tail->size())
            out.resize(start + tail->size(), 0);
        for (size_t i = 0; i < tail->size(); i++)
            out[start + i] |= (*tail)[i];
    }
    if (out.size() % 2)
        out.push_back(0); /* DICOM values have even length */
    OFCondition c;
    ds->findAndDeleteElement(DCM_PixelData);
    if (l.bits_allocated <= 8)
        c = ds->putAndInsertUint8Array(DCM_PixelData, out.data(), (unsigned long)out.size());
    else
        c = ds->putAndInsertUint16Array(DCM_PixelData, reinterpret_cast<const Uint16 *>(out.data()),
                                        (unsigned long)(out.size() / 2));
    if (c.bad())
        fail(DCMC_ERR_NOMEM, "cannot store pixel data: %s", c.text());
}

bool single_frame_class(const std::string &sop)
{
    static const char *const cls[] = {
        "1.2.840.10008.5.1.4.1.1.1",     "1.2.840.10008.5.1.4.1.1.1.1",
        "1.2.840.10008.5.1.4.1.1.1.1.1", "1.2.840.10008.5.1.4.1.1.1.2",
        "1.2.840.10008.5.1.4.1.1.1.2.1", "1.2.840.10008.5.1.4.1.1.1.3",
        "1.2.840.10008.5.1.4.1.1.1.3.1", "1.2.840.10008.5.1.4.1.1.2",
        "1.2.840.10008.5.1.4.1.1.4",     "1.2.840.10008.5.1.4.1.1.7"};
    for (const char *c : cls)
        if (sop == c)
            return true;
    return false;
}

/* After OpenJPEG decoding the dataset describes native pixels the way GDCM's decoder (the
 * reference for JPEG 2000 in DICOM, also built on OpenJPEG) writes them: precision from the
 * codestream, RGB after the inverse component transform, interleaved samples, the lossy method
 * recorded, private creators as LO, no Number of Frames in single-frame IODs. Decryption gives
 * this native object back exactly. */
void j2k_native_attributes(DcmDataset *ds, const std::string &ts, Uint32 frames, unsigned prec)
{
    if ((long)prec != get_int(ds, DCM_BitsStored, prec)) {
        ds->putAndInsertUint16(DCM_BitsStored, (Uint16)prec);
        ds->putAndInsertUint16(DCM_HighBit, (Uint16)(prec - 1));
    }
    if (get_int(ds, DCM_SamplesPerPixel, 1) == 3) {
        const std::string pm = get_string(ds, DCM_PhotometricInterpretation);
        if (pm == "YBR_RCT" || pm == "YBR_ICT")
            ds->putAndInsertString(DCM_PhotometricInterpretation, "RGB");
        ds->putAndInsertUint16(DCM_PlanarConfiguration, 0);
    }
    if ((ts == "1.2.840.10008.1.2.4.91" || ts == "1.2.840.10008.1.2.4.93") &&
        !ds->tagExists(DCM_LossyImageCompressionMethod))
        ds->putAndInsertString(DCM_LossyImageCompressionMethod, "ISO_15444_1");
    if (frames == 1 && ds->tagExists(DCM_NumberOfFrames) &&
        single_frame_class(get_string(ds, DCM_SOPClassUID)))
        ds->findAndDeleteElement(DCM_NumberOfFrames);
    for (unsigned long i = 0; i < ds->card(); i++) {
        DcmElement *el = ds->getElement(i);
        if (!el)
            continue;
        const DcmTagKey k = el->getTag();
        if (el->getVR() != EVR_UN || k.getGroup() % 2 == 0 || k.getElement() < 0x10 ||
            k.getElement() > 0xFF)
            continue;
        Uint8 *b = nullptr;
        if (el->getUint8Array(b).bad() || !b)
            continue;
        std::string v(reinterpret_cast<const char *>(b), el->getLength());
        while (!v.empty() && (v.back() == ' ' || v.back() == '\0'))
            v.pop_back();
        DcmLongString *lo = new DcmLongString(DcmTag(k, EVR_LO));
        lo->putString(v.c_str());
        ds->insert(lo, OFTrue);
    }
}

/* The layout the cipher sees. Native YBR_FULL_422 stores Y1 Y2 Cb Cr for every two pixels: as
 * many bytes as a gray image twice as wide, and any byte is a valid sample, so it is encrypted
 * as one. */
dcmc_layout cipher_layout(DcmItem *ds)
{
    dcmc_layout l = layout_of(ds);
    const std::string pm = get_string(ds, DCM_PhotometricInterpretation);
    if ((pm == "YBR_FULL_422" || pm == "YBR_PARTIAL_422") && l.samples == 3 &&
        l.bits_allocated == 8 && l.cols % 2 == 0 && l.cols <= 32767) {
        l.cols *= 2;
        l.samples = 1;
        l.planar = 0;
    }
    return l;
}

/* Compressed pixel data (encapsulated, or a deflated dataset) is decoded into Rows x Columns x
 * Frames, which its decoders allocate before they find out whether the data is there: a 40 KB
 * file can declare gigabytes. Refuse a declared size beyond the expansion limit before any
 * decoder runs (a decompression bomb costs nothing but this check). */
void check_expansion(const Loaded &L, const dcmc_layout &l, Uint32 frames)
{
    if (dcmc_layout_check(&l) != DCMC_OK)
        return; /* refused with a clearer message by check_layout */
    const uint64_t decoded = image_bytes(l, frames);
    const uint64_t ratio = g_max_expansion.load(std::memory_order_relaxed);
    uint64_t limit = L.file_bytes > UINT64_MAX / ratio ? UINT64_MAX : L.file_bytes * ratio;
    if (limit < kDecodedFloor)
        limit = kDecodedFloor;
    if (decoded > limit)
        fail(DCMC_ERR_UNSUPPORTED,
             "the pixel data would decode to %.1f MB from a %.1f KB file (more than %llux): "
             "refused as a possible decompression bomb (--max-expansion raises the limit)",
             decoded / 1e6, L.file_bytes / 1e3, (unsigned long long)ratio);
}

/* Decode whatever the object holds to native bytes (DCMTK's codecs, or OpenJPEG). */
void decode_pixels(Loaded &L, Pixels &px)
{
    DcmDataset *ds = L.ds;
    dcmc_layout l = layout_of(ds);
    const Uint32 frames = frames_of(ds);
    DcmXfer x(L.ts_uid.c_str());
    const bool encapsulated = x.isEncapsulated() || pixel_sequence(ds) != nullptr;
    if (encapsulated || x.getXfer() == EXS_DeflatedLittleEndianExplicit)
        check_expansion(L, l, frames);
    if (encapsulated && is_j2k(L.ts_uid)) {
        check_layout(l, "");
        if (l.bits_allocated != 8 && l.bits_allocated != 16)
            fail(DCMC_ERR_UNSUPPORTED, "JPEG 2000 with %u bits allocated", l.bits_allocated);
        DcmPixelSequence *seq = pixel_sequence(ds);
        if (!seq)
            fail(DCMC_ERR_FORMAT, "JPEG 2000 object without encapsulated pixel data");
        std::vector<std::vector<Uint8>> cs = j2k_frames(seq, frames);
        l.planar = 0; /* decoded samples are interleaved */
        px.reset(l, frames);
        const size_t fb = px.frame_bytes;
        unsigned prec = l.bits_stored;
        for (Uint32 f = 0; f < frames; f++)
            j2k_decode_frame(cs[f].data(), cs[f].size(), l, px.data.data() + (size_t)f * fb, &prec);
        j2k_native_attributes(ds, L.ts_uid, frames, prec);
        px.layout = layout_of(ds);
        px.layout.planar = 0;
        put_native(ds, px);
        L.ff.getMetaInfo()->putAndInsertString(DCM_TransferSyntaxUID, UID_LittleEndianExplicitTransferSyntax);
        return;
    }
    if (encapsulated) {
        OFCondition c = ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
        if (c.bad() || !ds->canWriteXfer(EXS_LittleEndianExplicit))
            fail(DCMC_ERR_UNSUPPORTED, "cannot decode transfer syntax %s (%s)", L.ts_uid.c_str(),
                 x.getXferName());
    }
    l = cipher_layout(ds); /* the decoder may have converted colour or planes */
    check_layout(l, l.samples == 1 ? "" : get_string(ds, DCM_PhotometricInterpretation));
    native_bytes(ds, l, frames, px);
}

/* ---- private block ------------------------------------------------------------------------ */

/* Element (0011,xx00) block number of our creator, or -1. */
int find_block(DcmItem *ds)
{
    for (Uint16 e = 0x10; e <= 0xFF; e++) {
        OFString v;
        if (ds->findAndGetOFString(DcmTagKey(kGroup, e), v).good() && v == kCreator)
            return e;
    }
    return -1;
}

/* A creator slot nobody uses, and no vendor data elements in its block either. */
int free_block(DcmDataset *ds)
{
    bool used[256] = {false};
    for (unsigned long i = 0; i < ds->card(); i++) {
        DcmObject *obj = ds->getElement(i);
        const DcmTagKey k = obj->getTag();
        if (k.getGroup() != kGroup)
            continue;
        if (k.getElement() >= 0x10 && k.getElement() <= 0xFF)
            used[k.getElement()] = true;
        if (k.getElement() >= 0x1000)
            used[k.getElement() >> 8] = true;
    }
    for (int e = 0x10; e <= 0xFF; e++)
        if (!used[e])
            return e;
    fail(DCMC_ERR_UNSUPPORTED, "no free private block in group %04x", kGroup);
}

DcmTag private_tag(int block, Uint8 elem, DcmEVR vr)
{
    DcmTag t(kGroup, (Uint16)(block << 8 | elem), vr);
    t.setPrivateCreator(kCreator);
    return t;
}

std::vector<Uint8> get_ob(DcmItem *ds, const DcmTagKey &key)
{
    const Uint8 *p = nullptr;
    unsigned long n = 0;
    if (ds->findAndGetUint8Array(key, p, &n).bad() || (!p && n))
        return std::vector<Uint8>();
    return std::vector<Uint8>(p, p + n);
}

/* ---- protected attributes ------------------------------------------------------------------ */

bool is_overlay_data(const DcmTagKey &k)
{
    return k.getGroup() >= 0x6000 && k.getGroup() <= 0x601E && k.getGroup() % 2 == 0 &&
           k.getElement() == 0x3000;
}

/* Protected bytes (docs/dicom.md): version, original transfer syntax UID, in version 2 the pixel
 * data tail, then a dataset of the originals. Version 1 where there is no tail, so that what
 * every earlier release wrote stays what an ordinary object gives. */
std::vector<Uint8> protect(DcmDataset *ds, const std::string &ts_uid, const Pixels &px)
{
    DcmDataset prot;
    for (const DcmTagKey &k : kTouched) {
        DcmElement *el = nullptr;
        if (ds->findAndGetElement(k, el).good() && el)
            prot.insert(OFstatic_cast(DcmElement *, el->clone()), OFTrue);
    }
    for (unsigned long i = 0; i < ds->card(); i++) {
        DcmElement *el = ds->getElement(i);
        if (el && is_overlay_data(el->getTag()))
            prot.insert(OFstatic_cast(DcmElement *, el->clone()), OFTrue);
    }
    const E_TransferSyntax xfer = EXS_LittleEndianExplicit;
    Uint32 len = prot.calcElementLength(xfer, EET_ExplicitLength);
    if (ts_uid.size() > 64)
        fail(DCMC_ERR_FORMAT, "transfer syntax UID longer than 64 characters");
    const size_t tail_room = px.has_tail ? 4 + px.tail.size() : 0;
    std::vector<Uint8> buf(2 + ts_uid.size() + tail_room + len + 64);
    buf[0] = px.has_tail ? 2 : 1;
    buf[1] = (Uint8)ts_uid.size();
    memcpy(buf.data() + 2, ts_uid.data(), ts_uid.size());
    size_t off = 2 + ts_uid.size();
    if (px.has_tail) {
        if (px.tail.size() > 0xFFFFFFFFu)
            fail(DCMC_ERR_UNSUPPORTED, "pixel data tail too long");
        const Uint32 tl = (Uint32)px.tail.size();
        for (int i = 0; i < 4; i++)
            buf[off + i] = (Uint8)(tl >> (8 * i));
        if (tl)
            memcpy(buf.data() + off + 4, px.tail.data(), tl);
        off += 4 + tl;
    }
    DcmOutputBufferStream os(buf.data() + off, (offile_off_t)(buf.size() - off));
    prot.transferInit();
    OFCondition c = prot.write(os, xfer, EET_ExplicitLength, nullptr);
    prot.transferEnd();
    if (c.bad())
        fail(DCMC_ERR_FORMAT, "cannot serialise the protected attributes: %s", c.text());
    void *written = nullptr;
    offile_off_t n = 0;
    os.flushBuffer(written, n);
    buf.resize(off + (size_t)n);
    return buf;
}

/* Put the protected originals back; `px` gets the pixel data tail of a version 2 block. */
void restore(DcmDataset *ds, const Uint8 *p, size_t n, std::string &ts_uid, Pixels &px)
{
    if (n < 2 || (p[0] != 1 && p[0] != 2) || (size_t)2 + p[1] > n)
        fail(DCMC_ERR_FORMAT, "protected attributes are malformed");
    ts_uid.assign(reinterpret_cast<const char *>(p + 2), p[1]);
    size_t off = 2 + (size_t)p[1];
    if (p[0] == 2) {
        if (n - off < 4)
            fail(DCMC_ERR_FORMAT, "protected attributes are malformed");
        const size_t tl = (size_t)p[off] | (size_t)p[off + 1] << 8 | (size_t)p[off + 2] << 16 |
                          (size_t)p[off + 3] << 24;
        if (n - off - 4 < tl)
            fail(DCMC_ERR_FORMAT, "protected attributes are malformed");
        px.tail.assign(p + off + 4, p + off + 4 + tl);
        px.has_tail = true;
        off += 4 + tl;
    }
    DcmDataset prot;
    if (n > off) {
        DcmInputBufferStream is;
        is.setBuffer(p + off, (offile_off_t)(n - off));
        is.setEos();
        prot.transferInit();
        OFCondition c = prot.read(is, EXS_LittleEndianExplicit, EGL_noChange);
        prot.transferEnd();
        if (c.bad())
            fail(DCMC_ERR_FORMAT, "protected attributes cannot be parsed: %s", c.text());
    }
    for (const DcmTagKey &k : kTouched)
        ds->findAndDeleteElement(k);
    for (unsigned long i = ds->card(); i-- > 0;) {
        DcmElement *el = ds->getElement(i);
        if (el && is_overlay_data(el->getTag()))
            delete ds->remove(el);
    }
    while (prot.card() > 0) {
        DcmElement *el = prot.remove((unsigned long)0);
        if (el)
            ds->insert(el, OFTrue);
    }
}

/* ---- writing ------------------------------------------------------------------------------- */

void save(DcmFileFormat &ff, const char *out, E_TransferSyntax xfer)
{
    errno = 0;
    OFCondition c = ff.saveFile(out, xfer, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0,
                                EWM_updateMeta);
    if (c.bad())
        fail(DCMC_ERR_WRITE, "cannot write %s: %s", out, c.text());
    /* DCMTK does not report every failed write (a full disk can end in a short file): check
     * that what is on disk is all of it. */
    bool ok;
    if (xfer == EXS_DeflatedLittleEndianExplicit) {
        /* Compressed on the fly, so no length to compare: read it back instead. */
        DcmFileFormat back;
        ok = back.loadFile(out, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_fileOnly).good();
    } else {
        const Uint32 expect = ff.calcElementLength(xfer, EET_ExplicitLength);
        struct stat st;
        ok = stat(out, &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size == expect;
    }
    if (!ok)
        fail(DCMC_ERR_WRITE, "cannot write %s: short write (disk full?)", out);
}

/* Try one encoder; codecs also edit attributes (Derivation Description...), which the caller
 * puts back. */
bool try_encode(DcmDataset *ds, E_TransferSyntax t, const DcmRepresentationParameter *rp)
{
    return ds->chooseRepresentation(t, rp).good() && ds->canWriteXfer(t);
}

E_TransferSyntax encode_as(DcmDataset *ds, const std::string &ts_uid)
{
    const E_TransferSyntax t = DcmXfer(ts_uid.c_str()).getXfer();
    switch (t) {
    case EXS_LittleEndianImplicit:
    case EXS_BigEndianExplicit:
    case EXS_DeflatedLittleEndianExplicit:
        return t;
    case EXS_RLELossless:
        if (try_encode(ds, t, nullptr))
            return t;
        break;
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1: {
        DJ_RPLossless rp(1, 0);
        if (try_encode(ds, t, &rp))
            return t;
        break;
    }
    case EXS_JPEGLSLossless: {
        /* CharLS as shipped with DCMTK 3.6.7 aborts on some signed images: keep those native. */
        if (get_int(ds, DCM_PixelRepresentation, 0) != 0)
            break;
        DJLSRepresentationParameter rp(0, OFTrue);
        if (try_encode(ds, t, &rp))
            return t;
        break;
    }
    default:
        break;
    }
    ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    return EXS_LittleEndianExplicit;
}

/* Re-encode to the original transfer syntax where that is lossless and DCMTK can do it, with
 * every other attribute exactly as restored. */
E_TransferSyntax output_xfer(DcmDataset *ds, const std::string &ts_uid)
{
    DcmDataset before;
    for (unsigned long i = 0; i < ds->card(); i++) {
        DcmElement *el = ds->getElement(i);
        if (el && el->getTag() != DCM_PixelData)
            before.insert(OFstatic_cast(DcmElement *, el->clone()), OFTrue);
    }
    const E_TransferSyntax t = encode_as(ds, ts_uid);
    for (unsigned long i = ds->card(); i-- > 0;) {
        DcmElement *el = ds->getElement(i);
        if (el && el->getTag() != DCM_PixelData && !before.tagExists(el->getTag()))
            delete ds->remove(el);
    }
    while (before.card() > 0) {
        DcmElement *el = before.remove((unsigned long)0);
        if (el)
            ds->insert(el, OFTrue);
    }
    return t;
}

void fill_info(dcmc_dicom_info *info, const Loaded &L, const Pixels &px)
{
    if (!info)
        return;
    memset(info, 0, sizeof *info);
    snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s", L.ts_uid.c_str());
    snprintf(info->sop_class, sizeof info->sop_class, "%s",
             get_string(L.ds, DCM_SOPClassUID).c_str());
    info->layout = px.layout;
    info->frames = px.frames;
    info->pixel_bytes = px.data.size();
}

/* ---- the operations ------------------------------------------------------------------------ */

void encrypt(const char *in, const char *out, const dcmc_key *key, const dcmc_kdf *kdf,
             const uint8_t uid_key[32], const dcmc_options *opt, dcmc_dicom_info *info)
{
    init_once();
    if (!host_little_endian())
        fail(DCMC_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    const uint64_t t0 = now_ns();
    Loaded L;
    load(in, L, true);
    if (find_block(L.ds) >= 0)
        fail(DCMC_ERR_ALREADY_ENCRYPTED, "%s is already encrypted by dcmcrypt", in);
    Pixels px;
    decode_pixels(L, px);
    fill_info(info, L, px);
    DcmDataset *ds = L.ds;
    const uint64_t t1 = now_ns();

    std::vector<Uint8> attrs = protect(ds, L.ts_uid, px);
    dcmc_header hdr;
    uint8_t *payload = nullptr;
    size_t payload_len = 0;
    dcmc_status st = dcmc_image_encrypt(key, kdf, opt, &px.layout, px.frames, px.data.data(),
                                        px.data.size(), attrs.data(), attrs.size(), &hdr, &payload,
                                        &payload_len);
    dcmc_wipe(attrs.data(), attrs.size());
    if (st != DCMC_OK)
        fail(st, "encryption failed: %s", dcmc_status_str(st));
    std::vector<Uint8> pl(payload, payload + payload_len);
    dcmc_free(payload, payload_len);
    const uint64_t t2 = now_ns();

    /* What showed the original pixels goes; the originals are in the payload. */
    for (const DcmTagKey &k : kRemoved)
        ds->findAndDeleteElement(k);
    /* ACR-NEMA objects may lack these; a DICOM image needs them (PS3.3 C.7.6.3). */
    if (!ds->tagExists(DCM_SamplesPerPixel))
        ds->putAndInsertUint16(DCM_SamplesPerPixel, (Uint16)px.layout.samples);
    if (!ds->tagExists(DCM_PhotometricInterpretation) && px.layout.samples == 1)
        ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
    if (get_string(ds, DCM_SOPClassUID).empty()) {
        const std::string mod = get_string(ds, DCM_Modality);
        const char *cls = mod == "CT"   ? UID_CTImageStorage
                          : mod == "MR" ? UID_MRImageStorage
                          : mod == "CR" ? UID_ComputedRadiographyImageStorage
                          : mod == "US" ? UID_UltrasoundImageStorage
                                        : UID_SecondaryCaptureImageStorage;
        ds->putAndInsertString(DCM_SOPClassUID, cls);
    }
    /* Overlay bitmaps are blanked, not removed: the Overlay Plane module stays complete. */
    for (unsigned long i = 0; i < ds->card(); i++) {
        DcmElement *el = ds->getElement(i);
        if (el && is_overlay_data(el->getTag())) {
            std::vector<Uint8> zero(el->getLength(), 0);
            if (el->getVR() == EVR_OW)
                el->putUint16Array(reinterpret_cast<const Uint16 *>(zero.data()), zero.size() / 2);
            else
                el->putUint8Array(zero.data(), zero.size());
        }
    }
    const DcmTagKey uids[] = {DCM_SOPInstanceUID, DCM_SeriesInstanceUID};
    for (const DcmTagKey &k : uids) {
        std::string old = get_string(ds, k);
        if (old.empty() && k == DCM_SOPInstanceUID) {
            /* An ACR-NEMA object without one: the encrypted object still needs its own UID.
             * Nothing to map, so it comes from this encryption's nonce. */
            old = "dcmcrypt-nonce:";
            for (uint8_t b : hdr.nonce) {
                char h[3];
                snprintf(h, sizeof h, "%02x", b);
                old += h;
            }
        }
        if (old.empty())
            continue;
        char mapped[65];
        if ((st = dcmc_uid_map(uid_key, old.c_str(), mapped)) != DCMC_OK)
            fail(st, "cannot derive a new UID: %s", dcmc_status_str(st));
        ds->putAndInsertString(k, mapped);
    }
    ds->putAndInsertString(DCM_ImageComments, kMarker);
    ds->putAndInsertString(DCM_DerivationDescription,
                           "Pixel data encrypted by dcmcrypt (AT-ResNet-CM); not for diagnosis");
    put_native(ds, px);

    const int block = free_block(ds);
    uint8_t hb[DCMC_HEADER_BYTES];
    dcmc_header_write(&hdr, hb);
    char scheme[96], kdfs[96];
    snprintf(scheme, sizeof scheme, "%s%s, format %u", dcmc_preset_name(hdr.preset.id),
             hdr.flags & DCMC_FLAG_STANDARD_LAYER ? " + ChaCha20" : " (chaos keystream only)",
             (unsigned)hdr.version);
    if (hdr.kdf.id == DCMC_KDF_SCRYPT)
        snprintf(kdfs, sizeof kdfs, "scrypt N=2^%u r=%u p=%u", hdr.kdf.log2_n, hdr.kdf.r, hdr.kdf.p);
    else
        snprintf(kdfs, sizeof kdfs, "key file");
    OFCondition c = ds->putAndInsertString(DcmTagKey(kGroup, (Uint16)block), kCreator);
    if (c.good())
        c = ds->putAndInsertUint8Array(private_tag(block, 0x01, EVR_OB), hb, sizeof hb);
    if (c.good())
        c = ds->putAndInsertUint8Array(private_tag(block, 0x02, EVR_OB), pl.data(),
                                       (unsigned long)pl.size());
    if (c.good())
        c = ds->putAndInsertString(private_tag(block, 0x03, EVR_LO), scheme);
    if (c.good())
        c = ds->putAndInsertString(private_tag(block, 0x04, EVR_LO), kdfs);
    if (c.bad())
        fail(DCMC_ERR_NOMEM, "cannot add the private block: %s", c.text());
    save(L.ff, out, EXS_LittleEndianExplicit);
    if (info) {
        info->read_ns = t1 - t0;
        info->cipher_ns = t2 - t1;
        info->write_ns = now_ns() - t2;
    }
}

/* The header and, if `payload` is given, the payload of our private block. Everything here is
 * untrusted until the MAC is checked: the payload's length is compared with the header's before
 * anything is copied. */
void read_block(DcmDataset *ds, dcmc_header &hdr, std::vector<Uint8> *payload, const char *in)
{
    const int block = find_block(ds);
    if (block < 0)
        fail(DCMC_ERR_NOT_ENCRYPTED, "%s was not encrypted by dcmcrypt", in);
    std::vector<Uint8> hb = get_ob(ds, DcmTagKey(kGroup, (Uint16)(block << 8 | 0x01)));
    if (hb.empty())
        fail(DCMC_ERR_FORMAT, "%s: the dcmcrypt header element (0011,%02x01) is missing", in,
             block);
    dcmc_status st = dcmc_header_read(hb.data(), hb.size(), &hdr);
    if (st != DCMC_OK)
        fail(st == DCMC_ERR_UNSUPPORTED ? st : DCMC_ERR_FORMAT,
             "%s: the dcmcrypt header is damaged or of an unknown version (%s)", in,
             dcmc_status_str(st));
    if (!payload)
        return;
    const Uint8 *p = nullptr;
    unsigned long n = 0;
    const DcmTagKey pk(kGroup, (Uint16)(block << 8 | 0x02));
    if (ds->findAndGetUint8Array(pk, p, &n).bad() || (!p && n))
        fail(DCMC_ERR_INTEGRITY, "%s: the encrypted payload (0011,%02x02) is missing", in, block);
    /* DICOM pads an odd-length value with one zero byte; the header says the real length. */
    const uint64_t want = hdr.payload_bytes;
    if (!(n == want || (want < n && n - want == 1 && p[n - 1] == 0)))
        fail(DCMC_ERR_INTEGRITY,
             "%s: the encrypted payload holds %lu bytes, its header says %llu: the object was "
             "changed or damaged",
             in, n, (unsigned long long)want);
    payload->assign(p, p + want);
}

void peek(const char *in, dcmc_header *hdr)
{
    init_once();
    Loaded L;
    load(in, L, false);
    read_block(L.ds, *hdr, nullptr, in);
}

/* An encrypted object, its header, payload and encrypted pixels, checked for what can be
 * checked without the key. */
struct Encrypted {
    Loaded L;
    dcmc_header hdr;
    std::vector<Uint8> payload;
    Pixels px;
};

void load_encrypted(const char *in, Encrypted &E)
{
    Loaded &L = E.L;
    dcmc_header &hdr = E.hdr;
    Pixels &px = E.px;
    init_once();
    if (!host_little_endian())
        fail(DCMC_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    load(in, L, false);
    DcmDataset *ds = L.ds;
    read_block(ds, hdr, &E.payload, in);
    if (!ds->tagExists(DCM_PixelData))
        fail(DCMC_ERR_INTEGRITY, "%s: the encrypted pixel data is missing", in);
    if (DcmXfer(L.ts_uid.c_str()).isEncapsulated())
        fail(DCMC_ERR_INTEGRITY, "%s: the encrypted pixel data has been recompressed", in);
    /* The header's layout is authenticated; the dataset must agree with it. */
    dcmc_layout l = cipher_layout(ds);
    if (memcmp(&l, &hdr.layout, sizeof l) != 0 || frames_of(ds) != hdr.frames)
        fail(DCMC_ERR_INTEGRITY, "%s: image attributes no longer match the encrypted pixels", in);
    native_bytes(ds, hdr.layout, hdr.frames, px, DCMC_ERR_INTEGRITY);
    /* Encryption writes the frames and at most a zero pad byte: anything else was added later. */
    if (px.has_tail)
        fail(DCMC_ERR_INTEGRITY, "%s: the pixel data holds more than the encrypted frames", in);
}

void decrypt(const char *in, const char *out, const dcmc_key *key, int threads,
             dcmc_dicom_info *info)
{
    const uint64_t t0 = now_ns();
    Encrypted E;
    load_encrypted(in, E);
    Loaded &L = E.L;
    const dcmc_header &hdr = E.hdr;
    const std::vector<Uint8> &payload = E.payload;
    Pixels &px = E.px;
    DcmDataset *ds = L.ds;
    fill_info(info, L, px);
    uint8_t *attrs = nullptr;
    size_t alen = 0;
    const uint64_t t1 = now_ns();
    dcmc_status st = dcmc_image_decrypt(key, &hdr, threads, px.data.data(), px.data.size(),
                                        payload.data(), payload.size(), &attrs, &alen);
    if (st == DCMC_ERR_WRONG_KEY)
        fail(st, "%s: wrong key or passphrase", in);
    if (st == DCMC_ERR_INTEGRITY)
        fail(st, "%s: integrity check failed: the object was changed or damaged", in);
    if (st != DCMC_OK)
        fail(st, "%s: %s", in, dcmc_status_str(st));
    std::string ts;
    try {
        restore(ds, attrs, alen, ts, px);
    } catch (...) {
        dcmc_free(attrs, alen);
        throw;
    }
    dcmc_free(attrs, alen);
    const int block = find_block(ds);
    for (unsigned e = 0; e <= 0xFF; e++)
        ds->findAndDeleteElement(DcmTagKey(kGroup, (Uint16)(block << 8 | e)));
    ds->findAndDeleteElement(DcmTagKey(kGroup, (Uint16)block));
    put_native(ds, px, px.has_tail ? &px.tail : nullptr);
    /* Record the syntax we really write in the meta header before encoders look at it. */
    const uint64_t t2 = now_ns();
    E_TransferSyntax xfer = output_xfer(ds, ts);
    save(L.ff, out, xfer);
    if (info) {
        info->read_ns = t1 - t0;
        info->cipher_ns = t2 - t1;
        info->write_ns = now_ns() - t2;
        snprintf(info->transfer_syntax, sizeof info->transfer_syntax, "%s",
                 DcmXfer(xfer).getXferID());
    }
}

void verify(const char *in, const dcmc_key *key, char sop_uid[65])
{
    Encrypted E;
    load_encrypted(in, E);
    dcmc_status st = dcmc_image_verify(key, &E.hdr, E.px.data.data(), E.px.data.size(),
                                       E.payload.data(), E.payload.size());
    if (st == DCMC_ERR_WRONG_KEY)
        fail(st, "%s: encrypted with another key or passphrase", in);
    if (st != DCMC_OK)
        fail(st, "%s: integrity check failed: the object was changed or damaged", in);
    if (sop_uid)
        snprintf(sop_uid, 65, "%s", get_string(E.L.ds, DCM_SOPInstanceUID).c_str());
}

void probe(const char *in, bool full, dcmc_dicom_probe_info *pi)
{
    init_once();
    Loaded L;
    /* Without `full`, values above 4 KiB stay on disk: enough to classify, and fast. With it,
     * every value is read, so a file cut short fails here. */
    load(in, L, false, full ? DCM_MaxReadLength : 4096);
    DcmDataset *ds = L.ds;
    const std::string cls = get_string(L.ff.getMetaInfo(), DCM_MediaStorageSOPClassUID);
    snprintf(pi->sop_instance_uid, sizeof pi->sop_instance_uid, "%s",
             get_string(ds, DCM_SOPInstanceUID).c_str());
    if (cls == UID_MediaStorageDirectoryStorage || ds->tagExists(DCM_DirectoryRecordSequence))
        pi->kind = DCMC_DICOM_DIRECTORY;
    else if (find_block(ds) >= 0)
        pi->kind = DCMC_DICOM_ENCRYPTED;
    else if (ds->tagExists(DCM_PixelData))
        pi->kind = DCMC_DICOM_IMAGE;
    else
        pi->kind = DCMC_DICOM_NO_PIXELS;
}

/* Every Referenced File ID of a DICOMDIR, '/'-separated, relative to its directory. */
void dicomdir_refs(const char *in, std::vector<std::string> &refs)
{
    init_once();
    Loaded L;
    load(in, L, false);
    DcmStack stack;
    DcmDataset *ds = L.ds;
    while (ds->search(DCM_ReferencedFileID, stack, ESM_afterStackTop, OFTrue).good()) {
        DcmElement *el = static_cast<DcmElement *>(stack.top());
        OFString v;
        if (el->getOFStringArray(v).bad() || v.empty())
            continue;
        std::string r(v.c_str());
        for (char &ch : r)
            if (ch == '\\')
                ch = '/';
        if (r.find("..") != std::string::npos || r[0] == '/')
            fail(DCMC_ERR_FORMAT, "%s: Referenced File ID '%s' leaves the file-set", in, v.c_str());
        if (std::find(refs.begin(), refs.end(), r) == refs.end())
            refs.push_back(r);
    }
}

void dicomdir_write(const char *in, const char *out, const char *root, const char *const *files,
                    size_t n)
{
    init_once();
    std::string fsid, descriptor;
    check_nesting(in);
    {
        DcmFileFormat ff;
        if (ff.loadFile(in, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect).good()) {
            fsid = get_string(ff.getDataset(), DCM_FileSetID);
            descriptor = get_string(ff.getDataset(), DCM_FileSetDescriptorFileID);
        }
    }
    /* DCMTK takes only ISO 9660 characters in a File-set ID ("TINY ALPHA" is refused). */
    for (char &ch : fsid)
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
            ch = '_';
    if (fsid.size() > 16)
        fsid.resize(16);
    for (char &ch : descriptor)
        if (ch == '\\')
            ch = '/';
    DicomDirInterface dd;
    dd.disableBackupMode();
    /* The objects are the tree's own: their syntax (JPEG, JPEG 2000...) and encoding stay as they
     * are, and records get placeholders where an attribute they need is missing. */
    dd.disableTransferSyntaxCheck();
    dd.disableEncodingCheck();
    dd.disableResolutionCheck();
    dd.disableConsistencyCheck();
    dd.enableInventMode();
    OFCondition c = dd.createNewDicomDir(DicomDirInterface::AP_GeneralPurpose, OFFilename(out),
                                         OFString(fsid.c_str()));
    if (c.bad())
        fail(DCMC_ERR_WRITE, "cannot create DICOMDIR %s: %s", out, c.text());
    if (!descriptor.empty()) {
        struct stat st;
        const std::string path = std::string(root) + "/" + descriptor;
        if (stat(path.c_str(), &st) == 0) /* kept only where the file came along */
            dd.setFilesetDescriptor(descriptor.c_str());
    }
    for (size_t i = 0; i < n; i++) {
        c = dd.addDicomFile(OFFilename(files[i]), OFFilename(root));
        if (c.bad())
            fail(DCMC_ERR_FORMAT, "cannot add %s to the DICOMDIR: %s", files[i], c.text());
    }
    c = dd.writeDicomDir();
    if (c.bad())
        fail(DCMC_ERR_WRITE, "cannot write DICOMDIR %s: %s", out, c.text());
}

template <class F> dcmc_status guard(char *msg, size_t msg_len, F f)
{
    if (msg && msg_len)
        msg[0] = '\0';
    try {
        f();
        return DCMC_OK;
    } catch (const Failure &e) {
        if (msg && msg_len)
            snprintf(msg, msg_len, "%s", e.msg.c_str());
        return e.status;
    } catch (const std::bad_alloc &) {
        if (msg && msg_len)
            snprintf(msg, msg_len, "out of memory");
        return DCMC_ERR_NOMEM;
    } catch (const std::exception &e) {
        if (msg && msg_len)
            snprintf(msg, msg_len, "internal error: %s", e.what());
        return DCMC_ERR_FORMAT;
    } catch (...) {
        if (msg && msg_len)
            snprintf(msg, msg_len, "internal error");
        return DCMC_ERR_FORMAT;
    }
}

} // namespace

extern "C" dcmc_status dcmc_dicom_encrypt(const char *in, const char *out, const dcmc_key *key,
                                          const dcmc_kdf *kdf, const uint8_t uid_key[32],
                                          const dcmc_options *opt, dcmc_dicom_info *info,
                                          char *msg, size_t msg_len)
{
    if (!in || !out || !key || !uid_key)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { encrypt(in, out, key, kdf, uid_key, opt, info); });
}

extern "C" dcmc_status dcmc_dicom_peek(const char *in, dcmc_header *hdr, char *msg, size_t msg_len)
{
    if (!in || !hdr)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { peek(in, hdr); });
}

extern "C" dcmc_status dcmc_dicom_decrypt(const char *in, const char *out, const dcmc_key *key,
                                          int threads, dcmc_dicom_info *info, char *msg,
                                          size_t msg_len)
{
    if (!in || !out || !key)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { decrypt(in, out, key, threads, info); });
}

extern "C" dcmc_status dcmc_dicom_read_pixels(const char *in, dcmc_dicom_info *info,
                                              uint8_t **pixels, size_t *len, char *msg,
                                              size_t msg_len)
{
    if (pixels)
        *pixels = nullptr;
    if (len)
        *len = 0;
    if (!in || !info || !pixels || !len)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] {
        init_once();
        Loaded L;
        load(in, L, true);
        Pixels px;
        decode_pixels(L, px);
        fill_info(info, L, px);
        uint8_t *buf = static_cast<uint8_t *>(malloc(px.data.size() ? px.data.size() : 1));
        if (!buf)
            throw std::bad_alloc();
        memcpy(buf, px.data.data(), px.data.size());
        *pixels = buf;
        *len = px.data.size();
    });
}

extern "C" void dcmc_dicom_set_max_expansion(unsigned ratio)
{
    g_max_expansion.store(ratio ? ratio : DCMC_DICOM_MAX_EXPANSION_DEFAULT,
                          std::memory_order_relaxed);
}

extern "C" const char *dcmc_dicom_versions(void)
{
    static char buf[160];
    if (!buf[0])
        snprintf(buf, sizeof buf, "DCMTK %s, OpenJPEG %s", OFFIS_DCMTK_VERSION_STRING,
                 opj_version());
    return buf;
}

extern "C" dcmc_status dcmc_dicom_verify(const char *in, const dcmc_key *key, char sop_uid[65],
                                         char *msg, size_t msg_len)
{
    if (!in || !key)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { verify(in, key, sop_uid); });
}

extern "C" dcmc_status dcmc_dicom_probe(const char *in, int full, dcmc_dicom_probe_info *info,
                                        char *msg, size_t msg_len)
{
    if (!in || !info)
        return DCMC_ERR_ARG;
    memset(info, 0, sizeof *info);
    return guard(msg, msg_len, [&] { probe(in, full != 0, info); });
}

extern "C" dcmc_status dcmc_dicomdir_refs(const char *in, char ***refs, size_t *n, char *msg,
                                          size_t msg_len)
{
    if (!in || !refs || !n)
        return DCMC_ERR_ARG;
    *refs = nullptr;
    *n = 0;
    return guard(msg, msg_len, [&] {
        std::vector<std::string> v;
        dicomdir_refs(in, v);
        char **a = static_cast<char **>(calloc(v.size() + 1, sizeof *a));
        if (!a)
            throw std::bad_alloc();
        for (size_t i = 0; i < v.size(); i++) {
            if (!(a[i] = strdup(v[i].c_str()))) {
                dcmc_dicomdir_refs_free(a, i);
                throw std::bad_alloc();
            }
        }
        *refs = a;
        *n = v.size();
    });
}

extern "C" void dcmc_dicomdir_refs_free(char **refs, size_t n)
{
    if (!refs)
        return;
    for (size_t i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
}

extern "C" dcmc_status dcmc_dicomdir_write(const char *in, const char *out, const char *root,
                                           const char *const *files, size_t n, char *msg,
                                           size_t msg_len)
{
    if (!in || !out || !root || (n && !files))
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { dicomdir_write(in, out, root, files, n); });
}

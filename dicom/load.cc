/*
 * load.cc - reading an object: the checks before DCMTK parses it, DCMTK's load, the attributes
 * that describe its pixels, and decoding them (DCMTK's codecs; OpenJPEG in j2k.cc) to native
 * frames, after refusing what would decode to far more than the file holds.
 */
#include "internal.h"

#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcrleerg.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpeg/djencode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/dcmjpls/djencode.h"
#include "dcmtk/oflog/oflog.h"

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "prescan.h"

namespace dcmci {

namespace {

/* Decoded pixels may be at most this many times the file's size (or kDecodedFloor): see
 * dcmc_dicom_set_max_expansion. */
std::atomic<unsigned> g_max_expansion{DCMC_DICOM_MAX_EXPANSION_DEFAULT};
const uint64_t kDecodedFloor = 4u << 20;

/* DCMTK reads nested sequences recursively, without a limit: a small file nesting thousands of
 * them overflows the stack. Real objects nest a handful of levels (enhanced multi-frame
 * functional groups about six); anything deeper than this is refused before DCMTK sees it. */
const unsigned kMaxNesting = 64;

} // namespace

void init_once()
{
    static std::once_flag once;
    std::call_once(once, [] {
        /* Library code never prints: DCMTK's own warnings would otherwise go to stderr. */
        OFLog::configure(OFLogger::OFF_LOG_LEVEL);
        /* Explicit VR UN for a tag the dictionary knows (an older writer's, or a relay's) is read
         * as the dictionary's VR, as pydicom and GDCM read it: a UID stored as UN is still a
         * UID to map, and its value is what it always was. Written back with the real VR. */
        dcmEnableUnknownVRConversion.set(OFTrue);
        DcmRLEDecoderRegistration::registerCodecs();
        DcmRLEEncoderRegistration::registerCodecs();
        DJDecoderRegistration::registerCodecs();
        DJEncoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
        DJLSEncoderRegistration::registerCodecs();
    });
}

bool host_little_endian()
{
    const Uint16 one = 1;
    return *reinterpret_cast<const Uint8 *>(&one) == 1;
}

std::vector<DcmElement *> elements_of(DcmItem *item)
{
    std::vector<DcmElement *> out;
    out.reserve(item->card());
    for (DcmObject *o = item->nextInContainer(nullptr); o != nullptr; o = item->nextInContainer(o))
        out.push_back(OFstatic_cast(DcmElement *, o));
    return out;
}

std::string get_string(DcmItem *ds, const DcmTagKey &key)
{
    return parsing("an attribute value", [&] {
        OFString s;
        if (ds->findAndGetOFStringArray(key, s).good())
            return std::string(s.c_str());
        return std::string();
    });
}

long get_int(DcmItem *ds, const DcmTagKey &key, long dflt)
{
    return parsing("an attribute value", [&] {
        Uint16 v16;
        if (ds->findAndGetUint16(key, v16).good())
            return (long)v16;
        Sint32 v32;
        if (ds->findAndGetSint32(key, v32).good())
            return (long)v32;
        OFString s;
        if (ds->findAndGetOFString(key, s).good() && !s.empty())
            return strtol(s.c_str(), nullptr, 10); /* as atol did, but defined on overflow */
        return dflt;
    });
}

/* ---- loading ------------------------------------------------------------------------------- */

/* What a file of `file_bytes` may decode or inflate to (dcmc_dicom_set_max_expansion). */
uint64_t expansion_limit(uint64_t file_bytes)
{
    const uint64_t ratio = g_max_expansion.load(std::memory_order_relaxed);
    const uint64_t limit = file_bytes > UINT64_MAX / ratio ? UINT64_MAX : file_bytes * ratio;
    return limit < kDecodedFloor ? kDecodedFloor : limit;
}

void check_nesting(const char *path)
{
    dcmci_prescan_result r;
    if (dcmci_prescan(path, kMaxNesting, &r) != 0)
        fail(DCMC_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    /* A deflated data set costs DCMTK's parser by its inflated size: 93 KB inflating to 100 MB
     * of empty elements took 5 s of CPU to parse (a fuzzing find). The pre-scan inflated it in
     * a fraction of that; the limit is the pixel decoders'. */
    struct stat st;
    const uint64_t file_bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (r.inflated > expansion_limit(file_bytes))
        fail(DCMC_ERR_UNSUPPORTED,
             "%s: its deflated data set inflates to more than %.1f MB from a %.1f KB file (more "
             "than %ux): refused before parsing as a possible decompression bomb "
             "(--max-expansion raises the limit)",
             path, r.inflated / 1e6, file_bytes / 1e3,
             g_max_expansion.load(std::memory_order_relaxed));
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

void load(const char *path, Loaded &L, bool need_pixels, Uint32 max_read)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        fail(DCMC_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0)
        L.file_bytes = (uint64_t)st.st_size;
    fclose(f);
    check_nesting(path);
    OFCondition c = parsing(path, [&] {
        return L.ff.loadFile(path, EXS_Unknown, EGL_noChange, max_read, ERM_autoDetect);
    });
    if (c.bad())
        fail(DCMC_ERR_FORMAT, "%s: not a readable DICOM object (%s)", path, c.text());
    L.ds = L.ff.getDataset();
    L.ts_uid = get_string(L.ff.getMetaInfo(), DCM_TransferSyntaxUID);
    if (L.ts_uid.empty())
        L.ts_uid = DcmXfer(L.ds->getOriginalXfer()).getXferID();
    if (need_pixels)
        require_pixels(L, path);
}

void require_pixels(const Loaded &L, const char *path)
{
    if (L.ds->tagExists(DCM_PixelData))
        return;
    if (L.ds->tagExists(DCM_FloatPixelData) || L.ds->tagExists(DCM_DoubleFloatPixelData))
        fail(DCMC_ERR_UNSUPPORTED, "%s: float pixel data is not supported", path);
    fail(DCMC_ERR_NOT_IMAGE, "%s: no pixel data (SOP class %s): not an image to encrypt", path,
         get_string(L.ds, DCM_SOPClassUID).c_str());
}

void set_max_expansion(unsigned ratio)
{
    g_max_expansion.store(ratio ? ratio : DCMC_DICOM_MAX_EXPANSION_DEFAULT,
                          std::memory_order_relaxed);
}

/* ---- the attributes that describe the pixels ----------------------------------------------- */

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

/* Field by field: a struct compared with memcmp would compare its padding too. */
bool same_layout(const dcmc_layout &a, const dcmc_layout &b)
{
    return a.rows == b.rows && a.cols == b.cols && a.samples == b.samples &&
           a.planar == b.planar && a.bits_allocated == b.bits_allocated &&
           a.bits_stored == b.bits_stored && a.high_bit == b.high_bit &&
           a.is_signed == b.is_signed;
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

/* ---- decoding ------------------------------------------------------------------------------ */

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
    if (decoded > expansion_limit(L.file_bytes))
        fail(DCMC_ERR_UNSUPPORTED,
             "the pixel data would decode to %.1f MB from a %.1f KB file (more than %llux): "
             "refused as a possible decompression bomb (--max-expansion raises the limit)",
             decoded / 1e6, L.file_bytes / 1e3, (unsigned long long)ratio);
}

namespace {

/* The Lossy Image Compression Method a lossy syntax implies (PS3.3 C.7.6.1.1.5.1), or null. */
const char *lossy_method(const std::string &ts)
{
    static const struct {
        const char *ts, *method;
    } m[] = {{"1.2.840.10008.1.2.4.50", "ISO_10918_1"},  {"1.2.840.10008.1.2.4.51", "ISO_10918_1"},
             {"1.2.840.10008.1.2.4.81", "ISO_14495_1"},  {"1.2.840.10008.1.2.4.91", "ISO_15444_1"},
             {"1.2.840.10008.1.2.4.93", "ISO_15444_1"},  {"1.2.840.10008.1.2.4.203", "ISO_15444_15"}};
    for (const auto &e : m)
        if (ts == e.ts)
            return e.method;
    return nullptr;
}

} // namespace

bool is_lossy_syntax(const std::string &ts)
{
    return lossy_method(ts) || DcmXfer(ts.c_str()).isLossy();
}

/* JPEG 2000 as GDCM decodes it: the method added whenever it is missing. DCMTK's decoders add
 * nothing, and an original already flagged "01" stays as they leave it; one that is not gets
 * the flag and the method. DCMTK 3.6.7 does not know HTJ2K, hence the table. */
void flag_lossy(DcmDataset *ds, const std::string &ts)
{
    if (!is_lossy_syntax(ts))
        return;
    const char *method = lossy_method(ts);
    const bool flagged = get_string(ds, DCM_LossyImageCompression) == "01";
    if (!flagged)
        ds->putAndInsertString(DCM_LossyImageCompression, "01");
    if (method && (!flagged || is_j2k(ts)) && !ds->tagExists(DCM_LossyImageCompressionMethod))
        ds->putAndInsertString(DCM_LossyImageCompressionMethod, method);
}

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
        decode_j2k(L, px, l, frames);
        return;
    }
    if (encapsulated) {
        /* DCMTK's decoders read the input's compressed bytes: inside the parse boundary. */
        const bool ok = parsing("the compressed pixel data", [&] {
            return ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr).good() &&
                   ds->canWriteXfer(EXS_LittleEndianExplicit);
        });
        if (!ok)
            fail(DCMC_ERR_UNSUPPORTED, "cannot decode transfer syntax %s (%s)", L.ts_uid.c_str(),
                 x.getXferName());
    }
    flag_lossy(ds, L.ts_uid);
    l = cipher_layout(ds); /* the decoder may have converted colour or planes */
    check_layout(l, l.samples == 1 ? "" : get_string(ds, DCM_PhotometricInterpretation));
    native_bytes(ds, l, frames, px);
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
    info->pixel_bytes = (uint64_t)px.frames * px.frame_bytes; /* no data when streamed */
}

void fill_times(dcmc_dicom_info *info, uint64_t t0, uint64_t t1, uint64_t t2, E_TransferSyntax xfer)
{
    if (!info)
        return;
    info->read_ns = t1 - t0;
    info->cipher_ns = t2 - t1;
    info->write_ns = now_ns() - t2;
    snprintf(info->output_transfer_syntax, sizeof info->output_transfer_syntax, "%s",
             DcmXfer(xfer).getXferID());
}

/* ---- what a file is ------------------------------------------------------------------------ */

void probe(const char *in, bool full, dcmc_dicom_probe_info *pi)
{
    init_once();
    Loaded L;
    /* Without `full`, values above 4 KiB stay on disk: enough to classify, and fast. With it,
     * every value is read, so a file cut short fails here. */
    load(in, L, false, full ? DCM_MaxReadLength : 4096);
    classify(L, pi);
}

void classify(Loaded &L, dcmc_dicom_probe_info *pi)
{
    DcmDataset *ds = L.ds;
    const std::string cls = get_string(L.ff.getMetaInfo(), DCM_MediaStorageSOPClassUID);
    snprintf(pi->sop_instance_uid, sizeof pi->sop_instance_uid, "%s",
             get_string(ds, DCM_SOPInstanceUID).c_str());
    if (cls == UID_MediaStorageDirectoryStorage || ds->tagExists(DCM_DirectoryRecordSequence))
        pi->kind = DCMC_DICOM_DIRECTORY;
    else if (is_marker_block(ds, find_block(ds)))
        pi->kind = DCMC_DICOM_PROTECTED;
    else if (find_block(ds) >= 0)
        pi->kind = DCMC_DICOM_ENCRYPTED;
    else if (ds->tagExists(DCM_PixelData))
        pi->kind = DCMC_DICOM_IMAGE;
    else
        pi->kind = DCMC_DICOM_NO_PIXELS;
}

} // namespace dcmci

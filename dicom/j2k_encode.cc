/*
 * j2k_encode.cc - encrypted pixels written as JPEG 2000 lossless-only (1.2.840.10008.1.2.4.90):
 * every frame one reversible J2K codestream that OpenJPEG makes in memory, one fragment per
 * frame. Only layouts whose every word JPEG 2000 gives back bit for bit are accepted.
 */
#include "j2k_encode.h"

#include "dcmtk/dcmdata/dcpixel.h"
#include "dcmtk/dcmdata/dcpixseq.h"
#include "dcmtk/dcmdata/dcpxitem.h"

#include <cstring>
#include <exception>
#include <memory>

#include "opj.h"

namespace dcmci {

namespace {

/* ---- what JPEG 2000 lossless can carry ----------------------------------------------------- */

/* The words sit in the low Bits Stored bits of 8- or 16-bit samples, 1 or 3 per pixel and
 * interleaved: JPEG 2000 components of that precision, decoded back into the same words. */
bool layout_expressible(const dcmc_layout &l)
{
    return (l.bits_allocated == 8 || l.bits_allocated == 16) &&
           (l.samples == 1 || (l.samples == 3 && l.planar == 0)) && l.bits_stored >= 1 &&
           l.bits_stored <= l.bits_allocated && l.high_bit == l.bits_stored - 1 && l.rows > 0 &&
           l.cols > 0;
}

/* PS3.5 8.2.4: without a component transform the codestream's components are the samples as
 * the Photometric Interpretation describes them; these are the ones it allows for JPEG 2000
 * (YBR_RCT and YBR_ICT name a transform we do not apply; YBR_FULL_422 is not allowed at all). */
bool photometric_allowed(DcmDataset *ds, unsigned samples)
{
    const std::string pm = get_string(ds, DCM_PhotometricInterpretation);
    if (samples == 1)
        return pm == "MONOCHROME1" || pm == "MONOCHROME2" || pm == "PALETTE COLOR";
    return pm == "RGB" || pm == "YBR_FULL";
}

inline Uint32 word_at(const Uint8 *p, unsigned bytes)
{
    return bytes == 1 ? p[0] : (Uint32)p[0] | (Uint32)p[1] << 8;
}

/* The stored value of a word (its low `bits` bits, sign-extended when `sgnd`). */
inline OPJ_INT32 stored_value(Uint32 w, unsigned bits, bool sgnd)
{
    const Uint32 low = w & ((1u << bits) - 1);
    if (!sgnd)
        return (OPJ_INT32)low;
    const Uint32 sign = 1u << (bits - 1);
    return (OPJ_INT32)(low ^ sign) - (OPJ_INT32)sign;
}

/* Every word is its stored value written in Bits Allocated bits: nothing above Bits Stored
 * but the sign extension, which the decoder writes back by itself. A word that holds more
 * would come back changed. */
bool words_fit(const Pixels &px)
{
    const dcmc_layout &l = px.layout;
    const unsigned B = l.bits_allocated / 8, bits = l.bits_stored;
    if (bits == l.bits_allocated)
        return true;
    const Uint32 word_mask = (1u << l.bits_allocated) - 1;
    const Uint8 *p = px.data.data();
    const size_t n = (size_t)px.frames * px.frame_bytes / B;
    for (size_t i = 0; i < n; i++) {
        const Uint32 w = word_at(p + i * B, B);
        if (((Uint32)stored_value(w, bits, l.is_signed != 0) & word_mask) != w)
            return false;
    }
    return true;
}

/* ---- OpenJPEG writing to memory ------------------------------------------------------------ */

/* The codestream as OpenJPEG writes it. The callbacks run inside C code, so they cannot
 * throw: running out of memory is remembered and reported once OpenJPEG has returned. */
struct OutBuffer {
    std::vector<Uint8> data;
    size_t pos = 0;
    bool nomem = false;
};

OPJ_SIZE_T out_write(void *buf, OPJ_SIZE_T n, void *user)
{
    OutBuffer *o = static_cast<OutBuffer *>(user);
    try {
        if (n > o->data.size() - o->pos)
            o->data.resize(o->pos + n); /* geometric growth: amortised O(1) per byte */
    } catch (const std::exception &) {
        o->nomem = true;
        return (OPJ_SIZE_T)-1;
    }
    memcpy(o->data.data() + o->pos, buf, n);
    o->pos += n;
    return n;
}

/* Positions past the end are allowed, as in a file: the next write fills the gap. */
OPJ_BOOL out_seek(OPJ_OFF_T n, void *user)
{
    OutBuffer *o = static_cast<OutBuffer *>(user);
    if (n < 0)
        return OPJ_FALSE;
    try {
        if ((OPJ_UINT64)n > o->data.size())
            o->data.resize((size_t)n);
    } catch (const std::exception &) {
        o->nomem = true;
        return OPJ_FALSE;
    }
    o->pos = (size_t)n;
    return OPJ_TRUE;
}

OPJ_OFF_T out_skip(OPJ_OFF_T n, void *user)
{
    OutBuffer *o = static_cast<OutBuffer *>(user);
    if (n < 0 && (OPJ_UINT64)-n > o->pos)
        return -1;
    return out_seek((OPJ_OFF_T)o->pos + n, user) ? n : -1;
}

/* OpenJPEG's first error message, for ours (a fixed buffer: nothing may throw in a callback). */
struct OpjError {
    char text[200] = "";
};

void error_cb(const char *msg, void *user)
{
    OpjError *e = static_cast<OpjError *>(user);
    if (e->text[0] || !msg)
        return;
    snprintf(e->text, sizeof e->text, "%s", msg);
    size_t n = strlen(e->text);
    while (n && (e->text[n - 1] == '\n' || e->text[n - 1] == ' '))
        e->text[--n] = '\0';
}

/* One codestream through OpenJPEG (opj.h owns its objects). */
class Encoder : public OpjSession {
public:

    /* The components of one frame (frame_bytes at `frame`, layout `l`, interleaved). */
    void set_image(const Uint8 *frame, const dcmc_layout &l);
    /* The codestream of the image set, padded to even length. */
    std::vector<Uint8> encode(const dcmc_layout &l);
};

void Encoder::set_image(const Uint8 *frame, const dcmc_layout &l)
{
    opj_image_cmptparm_t cp[3];
    memset(cp, 0, sizeof cp);
    for (unsigned c = 0; c < l.samples; c++) {
        cp[c].dx = cp[c].dy = 1;
        cp[c].w = l.cols;
        cp[c].h = l.rows;
        cp[c].prec = l.bits_stored;
        cp[c].sgnd = l.is_signed ? 1 : 0;
    }
    img_ = opj_image_create(l.samples, cp, l.samples == 3 ? OPJ_CLRSPC_SRGB : OPJ_CLRSPC_GRAY);
    if (!img_)
        fail(DCMC_ERR_NOMEM, "OpenJPEG: out of memory for a %ux%u image", l.cols, l.rows);
    img_->x0 = img_->y0 = 0;
    img_->x1 = l.cols;
    img_->y1 = l.rows;
    const size_t n = (size_t)l.rows * l.cols, S = l.samples, B = l.bits_allocated / 8;
    const bool sgnd = l.is_signed != 0;
    for (unsigned c = 0; c < S; c++) {
        OPJ_INT32 *dst = img_->comps[c].data;
        const Uint8 *src = frame + c * B;
        for (size_t i = 0; i < n; i++)
            dst[i] = stored_value(word_at(src + i * S * B, (unsigned)B), l.bits_stored, sgnd);
    }
}

std::vector<Uint8> Encoder::encode(const dcmc_layout &l)
{
    opj_cparameters_t p;
    opj_set_default_encoder_parameters(&p);
    p.irreversible = 0;  /* the 5/3 integer wavelet: the only one that is lossless */
    p.tcp_mct = 0;       /* no RCT: Photometric Interpretation stays what it is */
    p.tcp_numlayers = 1; /* one quality layer ... */
    p.tcp_rates[0] = 0;  /* ... at rate 0: every bit plane kept */
    p.cp_disto_alloc = 1;
    /* Cipher values have no spatial structure for a wavelet to find: one resolution (no
     * transform) and the arithmetic-coding bypass (a core Part 1 mode every decoder reads)
     * store them smaller and a quarter faster than OpenJPEG's defaults (measured on random
     * 12-bit 512x512 frames: 0.77 of native against 0.81). */
    p.numresolution = 1;
    p.mode = 1; /* BYPASS */
    codec_ = opj_create_compress(OPJ_CODEC_J2K); /* raw codestream: DICOM wants no JP2 box */
    stream_ = opj_stream_create(1 << 20, OPJ_FALSE);
    if (!codec_ || !stream_)
        fail(DCMC_ERR_NOMEM, "OpenJPEG: out of memory");
    OpjError err;
    opj_set_error_handler(codec_, error_cb, &err);
    opj_set_warning_handler(codec_, opj_quiet, nullptr);
    opj_set_info_handler(codec_, opj_quiet, nullptr);
    OutBuffer out;
    opj_stream_set_user_data(stream_, &out, nullptr);
    opj_stream_set_write_function(stream_, out_write);
    opj_stream_set_seek_function(stream_, out_seek);
    opj_stream_set_skip_function(stream_, out_skip);
    const bool ok = opj_setup_encoder(codec_, &p, img_) &&
                    opj_start_compress(codec_, img_, stream_) && opj_encode(codec_, stream_) &&
                    opj_end_compress(codec_, stream_);
    if (out.nomem)
        fail(DCMC_ERR_NOMEM, "out of memory for a JPEG 2000 codestream");
    if (!ok)
        fail(DCMC_ERR_INTERNAL,
             "OpenJPEG could not encode a %ux%u JPEG 2000 frame (%u sample%s, %u-bit %s): %s",
             l.cols, l.rows, l.samples, l.samples == 1 ? "" : "s", l.bits_stored,
             l.is_signed ? "signed" : "unsigned", err.text[0] ? err.text : "no reason given");
    if (out.data.size() % 2)
        out.data.push_back(0); /* DICOM fragments have even length */
    return std::move(out.data);
}

/* One codec per frame: OpenJPEG's objects are not shared between threads. */
std::vector<Uint8> encode_frame(const Uint8 *frame, const dcmc_layout &l)
{
    Encoder e;
    e.set_image(frame, l);
    return e.encode(l);
}

/* Every frame's codestream. With OpenMP, frames in parallel; an exception cannot leave a
 * parallel region, so the first one is kept and thrown after it. */
std::vector<std::vector<Uint8>> encode_frames(const Pixels &px)
{
    const long frames = (long)px.frames;
    std::vector<std::vector<Uint8>> cs((size_t)frames);
    std::vector<std::exception_ptr> err((size_t)frames);
    bool failed = false;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic)
#endif
    for (long f = 0; f < frames; f++) {
        bool stop;
#ifdef _OPENMP
#pragma omp atomic read
#endif
        stop = failed;
        if (stop)
            continue;
        try {
            cs[(size_t)f] = encode_frame(px.data.data() + (size_t)f * px.frame_bytes, px.layout);
        } catch (...) {
            err[(size_t)f] = std::current_exception();
#ifdef _OPENMP
#pragma omp atomic write
#endif
            failed = true;
        }
    }
    for (const std::exception_ptr &e : err)
        if (e)
            std::rethrow_exception(e);
    return cs;
}

/* ---- the encapsulated pixel data ----------------------------------------------------------- */

/* The Basic Offset Table: where each frame's item starts, counted from the first fragment's
 * item tag. Filled because it costs 4 bytes a frame and lets a reader go to frame N without
 * walking the fragments (DCMTK's own encoders write one too). Empty when an offset would not fit
 * its 32 bits: an empty table is always allowed (PS3.5 A.4); no Extended Offset Table is written. */
std::vector<Uint8> offset_table(const std::vector<std::vector<Uint8>> &cs)
{
    std::vector<Uint8> t;
    t.reserve(cs.size() * 4);
    uint64_t at = 0;
    for (const std::vector<Uint8> &c : cs) {
        if (at > 0xFFFFFFFFu)
            return {};
        for (int b = 0; b < 4; b++)
            t.push_back((Uint8)(at >> (8 * b)));
        at += 8 + c.size(); /* item tag and length, then the fragment */
    }
    return t;
}

/* The pixel sequence DCMTK writes for EXS_JPEG2000LosslessOnly, built apart and put into `ds`
 * last, so that a failure leaves `ds` as it was. The codestreams are freed as they are copied. */
void put_fragments(DcmDataset *ds, std::vector<std::vector<Uint8>> &cs)
{
    std::unique_ptr<DcmPixelSequence> seq(new DcmPixelSequence(DcmTag(DCM_PixelData, EVR_OB)));
    std::unique_ptr<DcmPixelItem> item(new DcmPixelItem(DcmTag(DCM_Item, EVR_OB)));
    const std::vector<Uint8> bot = offset_table(cs);
    if (!bot.empty() && item->putUint8Array(bot.data(), (Uint32)bot.size()).bad())
        fail(DCMC_ERR_NOMEM, "out of memory for the Basic Offset Table");
    if (seq->insert(item.get()).bad())
        bug("DCMTK refused the Basic Offset Table item");
    (void)item.release(); /* the sequence owns it now */
    for (std::vector<Uint8> &c : cs) {
        item.reset(new DcmPixelItem(DcmTag(DCM_Item, EVR_OB)));
        if (item->putUint8Array(c.data(), (Uint32)c.size()).bad())
            fail(DCMC_ERR_NOMEM, "out of memory for a JPEG 2000 fragment");
        if (seq->insert(item.get()).bad())
            bug("DCMTK refused a JPEG 2000 fragment");
        (void)item.release();
        std::vector<Uint8>().swap(c);
    }
    std::unique_ptr<DcmPixelData> pd(new DcmPixelData(DCM_PixelData));
    pd->putOriginalRepresentation(EXS_JPEG2000LosslessOnly, nullptr, seq.release());
    if (ds->insert(pd.get(), OFTrue /* replace the native element */).bad())
        bug("DCMTK refused the encapsulated Pixel Data");
    (void)pd.release(); /* the dataset owns it now */
}

} // namespace

bool encode_j2k_lossless(DcmDataset *ds, const Pixels &px)
{
    const dcmc_layout &l = px.layout;
    if (!layout_expressible(l) || !same_layout(l, layout_of(ds)) ||
        !photometric_allowed(ds, l.samples))
        return false;
    size_t fb = 0;
    if (dcmc_layout_frame_bytes(&l, &fb) != DCMC_OK || fb != px.frame_bytes || px.frames < 1 ||
        px.data.size() / fb < px.frames)
        bug("encode_j2k_lossless: %zu bytes of pixels for %u frames of %zu bytes", px.data.size(),
            (unsigned)px.frames, px.frame_bytes);
    if (!words_fit(px))
        return false;
    std::vector<std::vector<Uint8>> cs = encode_frames(px);
    for (const std::vector<Uint8> &c : cs)
        if (c.size() > 0xFFFFFFFEu) /* an item's length is 32 bits, all ones meaning undefined */
            return false;
    put_fragments(ds, cs);
    return true;
}

} // namespace dcmci

/*
 * j2k.cc - JPEG 2000 and HTJ2K pixel data, which free DCMTK cannot decode: frames found in the
 * fragments, decoded with OpenJPEG, every component checked against the attributes that
 * describe the pixels, and the dataset rewritten to describe native pixels as GDCM does.
 */
#include "internal.h"

#include "dcmtk/dcmdata/dcpxitem.h"

#include <cstring>

#include "opj.h"

namespace dcmci {

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

namespace {

/* ---- OpenJPEG on a codestream in memory ---------------------------------------------------- */

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

/* One codestream through OpenJPEG (opj.h owns its objects). */
class Decoder : public OpjSession {
public:

    /* The decoded image of `len` bytes at `data` (which must outlive this object). */
    const opj_image_t &decode(const Uint8 *data, size_t len)
    {
        ms_ = MemStream{data, len, 0};
        const bool jp2 = len >= 12 && memcmp(data, "\0\0\0\x0cjP  ", 8) == 0;
        codec_ = opj_create_decompress(jp2 ? OPJ_CODEC_JP2 : OPJ_CODEC_J2K);
        stream_ = opj_stream_create(1 << 16, OPJ_TRUE);
        if (!codec_ || !stream_)
            fail(DCMC_ERR_NOMEM, "OpenJPEG: out of memory");
        opj_set_error_handler(codec_, opj_quiet, nullptr);
        opj_set_warning_handler(codec_, opj_quiet, nullptr);
        opj_set_info_handler(codec_, opj_quiet, nullptr);
        opj_stream_set_user_data(stream_, &ms_, nullptr);
        opj_stream_set_user_data_length(stream_, len);
        opj_stream_set_read_function(stream_, mem_read);
        opj_stream_set_skip_function(stream_, mem_skip);
        opj_stream_set_seek_function(stream_, mem_seek);
        opj_dparameters_t p;
        opj_set_default_decoder_parameters(&p);
        if (!opj_setup_decoder(codec_, &p) || !opj_read_header(stream_, codec_, &img_) ||
            !opj_decode(codec_, stream_, img_) || !opj_end_decompress(codec_, stream_))
            fail(DCMC_ERR_UNSUPPORTED, "OpenJPEG could not decode a JPEG 2000 frame");
        return *img_;
    }

private:
    MemStream ms_{nullptr, 0, 0};
};

/* Every component must be what the attributes describe (dcm2niix checks the same): one per
 * sample, Columns x Rows without subsampling, all of one precision (it becomes Bits Stored) and
 * one signedness, the precision no more than Bits Allocated. A codestream that disagrees is
 * malformed: decoded anyway, it would not fill the frame it is meant to.
 * Two disagreements real objects carry are accepted, as before and as GDCM and pydicom read
 * them. Precision and Bits Stored, both ways (sample-data's dcm_qa_ts_9: Bits Stored 12 over
 * 16-bit components; pydicom's 693_J2KR: 16 over 14): the codestream's precision becomes Bits
 * Stored (j2k_native_attributes). Signedness and Pixel Representation (pylibjpeg's
 * J2K_pixelrep_mismatch, in the team's corpus: unsigned components, Pixel Representation 1;
 * pydicom decodes it): the decoded words are kept, and the dataset's Pixel Representation with
 * them; the cipher keeps any bits above High Bit, so the round trip stays exact. */
unsigned check_components(const opj_image_t &img, const dcmc_layout &l)
{
    if (img.numcomps != l.samples)
        fail(DCMC_ERR_FORMAT,
             "the JPEG 2000 codestream holds %u component%s, Samples per Pixel says %u",
             (unsigned)img.numcomps, img.numcomps == 1 ? "" : "s", l.samples);
    const opj_image_comp_t &k0 = img.comps[0];
    for (OPJ_UINT32 c = 0; c < img.numcomps; c++) {
        const opj_image_comp_t &k = img.comps[c];
        if (k.w != l.cols || k.h != l.rows)
            fail(DCMC_ERR_FORMAT,
                 "JPEG 2000 component %u is %ux%u pixels, Columns x Rows say %ux%u",
                 (unsigned)c, (unsigned)k.w, (unsigned)k.h, l.cols, l.rows);
        if (k.dx != 1 || k.dy != 1)
            fail(DCMC_ERR_FORMAT, "JPEG 2000 component %u is subsampled (%ux%u)", (unsigned)c,
                 (unsigned)k.dx, (unsigned)k.dy);
        if (k.prec != k0.prec || k.sgnd != k0.sgnd)
            fail(DCMC_ERR_FORMAT,
                 "JPEG 2000 component %u is %u-bit %s, component 0 %u-bit %s: one Bits Stored and "
                 "Pixel Representation cannot describe both",
                 (unsigned)c, (unsigned)k.prec, k.sgnd ? "signed" : "unsigned", (unsigned)k0.prec,
                 k0.sgnd ? "signed" : "unsigned");
    }
    if (k0.prec < 1 || k0.prec > l.bits_allocated)
        fail(DCMC_ERR_FORMAT, "JPEG 2000 precision %u does not fit Bits Allocated %u",
             (unsigned)k0.prec, l.bits_allocated);
    return k0.prec;
}

/* Decode one codestream into `out` (frame bytes of the native layout, planar 0); returns the
 * precision the codestream declares. */
unsigned j2k_decode_frame(const Uint8 *data, size_t len, const dcmc_layout &l, Uint8 *out)
{
    Decoder d;
    const opj_image_t &img = d.decode(data, len);
    const unsigned prec = check_components(img, l);
    const size_t n = (size_t)l.rows * l.cols, B = l.bits_allocated / 8;
    for (OPJ_UINT32 c = 0; c < img.numcomps; c++) {
        const OPJ_INT32 *src = img.comps[c].data;
        for (size_t i = 0; i < n; i++) {
            Uint32 v = (Uint32)src[i];
            Uint8 *dst = out + (i * l.samples + c) * B;
            for (size_t b = 0; b < B; b++)
                dst[b] = (Uint8)(v >> (8 * b));
        }
    }
    return prec;
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
        const bool ok = parsing("a JPEG 2000 fragment", [&] {
            return seq->getItem(it, i).good() && it && it->getUint8Array(p).good();
        });
        if (!ok)
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

/* ---- the native object --------------------------------------------------------------------- */

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

/* Private creators read as UN (implicit VR, unknown to DCMTK's dictionary) become LO. */
void private_creators_as_lo(DcmDataset *ds)
{
    for (DcmElement *el : elements_of(ds)) { /* each replaced at most once, by itself */
        const DcmTagKey k = el->getTag();
        if (el->getVR() != EVR_UN || k.getGroup() % 2 == 0 || k.getElement() < 0x10 ||
            k.getElement() > 0xFF)
            continue;
        Uint8 *b = nullptr;
        if (parsing("a private creator", [&] { return el->getUint8Array(b).bad(); }) || !b)
            continue;
        std::string v(reinterpret_cast<const char *>(b), el->getLength());
        while (!v.empty() && (v.back() == ' ' || v.back() == '\0'))
            v.pop_back();
        DcmLongString *lo = new DcmLongString(DcmTag(k, EVR_LO));
        lo->putString(v.c_str());
        ds->insert(lo, OFTrue);
    }
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
    flag_lossy(ds, ts);
    if (frames == 1 && ds->tagExists(DCM_NumberOfFrames) &&
        single_frame_class(get_string(ds, DCM_SOPClassUID)))
        ds->findAndDeleteElement(DCM_NumberOfFrames);
    private_creators_as_lo(ds);
}

} // namespace

unsigned decode_j2k_frames(DcmDataset *ds, const dcmc_layout &l, Uint32 frames, Pixels &px)
{
    if (l.bits_allocated != 8 && l.bits_allocated != 16)
        fail(DCMC_ERR_UNSUPPORTED, "JPEG 2000 with %u bits allocated", l.bits_allocated);
    DcmPixelSequence *seq = pixel_sequence(ds);
    if (!seq)
        fail(DCMC_ERR_FORMAT, "JPEG 2000 object without encapsulated pixel data");
    std::vector<std::vector<Uint8>> cs = j2k_frames(seq, frames);
    px.reset(l, frames);
    const size_t fb = px.frame_bytes;
    unsigned prec = l.bits_stored;
    for (Uint32 f = 0; f < frames; f++) {
        /* One Bits Stored describes every frame: their precisions must agree. */
        const unsigned p = j2k_decode_frame(cs[f].data(), cs[f].size(), l,
                                            px.data.data() + (size_t)f * fb);
        if (f > 0 && p != prec)
            fail(DCMC_ERR_FORMAT, "JPEG 2000 frame %u has precision %u, frame 1 has %u",
                 (unsigned)f + 1, p, prec);
        prec = p;
    }
    return prec;
}

void decode_j2k(Loaded &L, Pixels &px, dcmc_layout l, Uint32 frames)
{
    DcmDataset *ds = L.ds;
    check_layout(l, "");
    l.planar = 0; /* decoded samples are interleaved */
    const unsigned prec = decode_j2k_frames(ds, l, frames, px);
    j2k_native_attributes(ds, L.ts_uid, frames, prec);
    px.layout = layout_of(ds);
    px.layout.planar = 0;
    put_native(ds, px);
    L.ff.getMetaInfo()->putAndInsertString(DCM_TransferSyntaxUID,
                                           UID_LittleEndianExplicitTransferSyntax);
}

} // namespace dcmci

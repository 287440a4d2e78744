/*
 * reencoded.cc - encrypted pixels an archive re-encoded. PACS re-encode what they store (JPEG-LS,
 * JPEG lossless, RLE, JPEG 2000, deflate, big endian): the cipher values survive any lossless
 * encoding, so decryption decodes whatever syntax the object now has and lets the MAC judge
 * the values, exactly as for native data (docs/dicom.md, "Decryption"). Nothing here trusts the
 * dataset: the layout comes from the authenticated header, and the attributes an encoder may
 * legitimately change are set back to what the header says before the bound attributes are
 * checked.
 */
#include "internal.h"

#include <cstring>

#include "dcmtk/dcmdata/dccodec.h"

namespace dcmci {

void set_planar(Pixels &px, uint32_t planar)
{
    dcmc_layout &l = px.layout;
    if (l.samples != 3 || l.planar == planar)
        return;
    const size_t n = (size_t)l.rows * l.cols, B = (l.bits_allocated + 7) / 8;
    std::vector<Uint8> f(px.frame_bytes);
    for (Uint32 k = 0; k < px.frames; k++) {
        Uint8 *frame = px.data.data() + (size_t)k * px.frame_bytes;
        for (size_t i = 0; i < n; i++)
            for (size_t c = 0; c < 3; c++) {
                const size_t inter = (i * 3 + c) * B, plane = (c * n + i) * B;
                if (planar)
                    memcpy(&f[plane], frame + inter, B);
                else
                    memcpy(&f[inter], frame + plane, B);
            }
        memcpy(frame, f.data(), f.size());
    }
    l.planar = planar;
}

namespace {

/* DCMTK's decoders (JPEG, JPEG-LS, RLE; deflate and big endian are decoded while loading). */
void decode_dcmtk(Loaded &L, const dcmc_layout &want, Uint32 frames, Pixels &px)
{
    DcmDataset *ds = L.ds;
    if (DcmXfer(L.ts_uid.c_str()).isEncapsulated() || pixel_sequence(ds)) {
        const bool ok = parsing("the re-encoded pixel data", [&] {
            return ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr).good() &&
                   ds->canWriteXfer(EXS_LittleEndianExplicit);
        });
        const E_TransferSyntax from = DcmXfer(L.ts_uid.c_str()).getXfer();
        /* With a decoder for the syntax, a codestream it cannot read was damaged after
         * encryption (Orthanc 1.10's JPEG-LS encoder writes such copies); without one, the
         * data may be fine and another tool can decode it. */
        if (!ok && DcmCodecList::canChangeCoding(from, EXS_LittleEndianExplicit))
            fail(DCMC_ERR_INTEGRITY,
                 "the encrypted pixel data, re-encoded as %s, does not decode: the copy was "
                 "damaged after encryption (by the encoder that wrote it, or since)",
                 DcmXfer(L.ts_uid.c_str()).getXferName());
        if (!ok)
            fail(DCMC_ERR_UNSUPPORTED,
                 "the encrypted pixel data was re-encoded as %s, which cannot be decoded here; "
                 "decode it first (e.g. gdcmconv --raw)",
                 DcmXfer(L.ts_uid.c_str()).getXferName());
    }
    /* A decoder may deliver the other planar configuration (RLE codes colour by planes). */
    dcmc_layout got = want;
    got.planar = want.samples > 1 ? (uint32_t)get_int(ds, DCM_PlanarConfiguration, 0) : 0;
    if (got.planar > 1)
        fail(DCMC_ERR_INTEGRITY, "Planar Configuration %u is not valid", got.planar);
    native_bytes(ds, got, frames, px, DCMC_ERR_INTEGRITY);
}

} // namespace

void decode_reencoded(Loaded &L, const dcmc_layout &want, Uint32 frames, Pixels &px)
{
    DcmDataset *ds = L.ds;
    check_expansion(L, want, frames);
    /* An encoder that resampled colour (GDCM's JPEG 2000 encoder turns YBR_FULL_422 into
     * YBR_FULL) made another image of the cipher values: there is no way back. */
    const dcmc_layout seen = cipher_layout(ds);
    if (seen.samples != want.samples || seen.cols != want.cols || seen.rows != want.rows)
        fail(DCMC_ERR_INTEGRITY,
             "the encrypted pixels were re-encoded as %s with another colour layout (%s, %u "
             "samples of %ux%u; encrypted as %u of %ux%u): resampled cipher values cannot be "
             "decrypted",
             DcmXfer(L.ts_uid.c_str()).getXferName(),
             get_string(ds, DCM_PhotometricInterpretation).c_str(), seen.samples, seen.cols,
             seen.rows, want.samples, want.cols, want.rows);
    if (is_j2k(L.ts_uid) && pixel_sequence(ds)) {
        dcmc_layout got = want;
        got.planar = 0; /* OpenJPEG delivers samples interleaved */
        try {
            decode_j2k_frames(ds, got, frames, px);
        } catch (const Failure &e) {
            /* OpenJPEG reads every JPEG 2000 codestream: one it cannot was damaged. */
            if (e.status != DCMC_ERR_FORMAT && e.status != DCMC_ERR_UNSUPPORTED)
                throw;
            fail(DCMC_ERR_INTEGRITY,
                 "the encrypted pixel data, re-encoded as %s, does not decode (%s): the copy "
                 "was damaged after encryption (by the encoder that wrote it, or since)",
                 DcmXfer(L.ts_uid.c_str()).getXferName(), e.msg.c_str());
        }
        put_native(ds, px); /* the dataset now holds native pixels, as after DCMTK's decoders */
    } else {
        decode_dcmtk(L, want, frames, px);
    }
    set_planar(px, want.planar);
    if (want.samples > 1)
        ds->putAndInsertUint16(DCM_PlanarConfiguration, (Uint16)want.planar);
    /* A JPEG 2000 encoder with the reversible colour transform says YBR_RCT: decoded, the
     * samples are RGB again, as they were encrypted. (YBR_ICT is irreversible: the MAC will
     * fail, and the message says lossy.) */
    const std::string pm = get_string(ds, DCM_PhotometricInterpretation);
    if (pm == "YBR_RCT" || pm == "YBR_ICT")
        ds->putAndInsertString(DCM_PhotometricInterpretation, "RGB");
    L.ff.getMetaInfo()->putAndInsertString(DCM_TransferSyntaxUID,
                                           UID_LittleEndianExplicitTransferSyntax);
}

} // namespace dcmci

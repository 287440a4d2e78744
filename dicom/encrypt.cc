/*
 * encrypt.cc - one object encrypted: loaded and decoded; the original header kept aside; the
 * de-identification profile (when asked) and the marks applied; the originals of everything
 * that changed, with the bound attributes' digests, encrypted with the frames through the
 * cipher library; the encrypted object saved as explicit VR little endian (docs/dicom.md).
 */
#include "deid.h"
#include "internal.h"

#include "dcmcrypt/version.h"

namespace dcmci {

namespace {

/* The frames (in place) and the protected bytes through the cipher: the header and payload. */
void encrypt_pixels(std::vector<Uint8> &attrs, Pixels &px, const dcmc_key *key,
                    const dcmc_kdf *kdf, const dcmc_options *opt, dcmc_header &hdr,
                    std::vector<Uint8> &pl)
{
    uint8_t *payload = nullptr;
    size_t payload_len = 0;
    dcmc_status st = dcmc_image_encrypt(key, kdf, opt, &px.layout, px.frames, px.data.data(),
                                        px.data.size(), attrs.data(), attrs.size(), &hdr, &payload,
                                        &payload_len);
    dcmc_wipe(attrs.data(), attrs.size());
    if (st != DCMC_OK)
        fail(st, "encryption failed: %s", dcmc_status_str(st));
    pl.assign(payload, payload + payload_len);
    dcmc_free(payload, payload_len);
}

} // namespace

/* Everything encryption does to the header of `ds` (pixel data already out of it): the profile,
 * the marks and the UID map, then the Encrypted Attributes Sequence. `orig` is a copy of the
 * header before any of it. Shared by images and objects without pixels. */
void transform_header(DcmDataset *ds, DcmDataset &orig, const dcmc_layout *l,
                      const uint8_t uid_key[32], const dcmc_dicom_options *dopt,
                      const std::string &ts_uid)
{
    const bool deid = dopt && dopt->deidentify;
    const unsigned opts = deid ? dopt->deid_options : 0;
    if (deid) {
        const DeidContext ctx = deid_context(ds, uid_key, opts, "dcmcrypt " DCMC_VERSION_STRING);
        deidentify(ds, ctx);
        if (opts & DCMC_DEID_MODIFIED_DATES)
            shift_times(ds, ctx.time_shift_seconds);
    }
    if (l)
        mark_encrypted(ds, *l, uid_key, deid && (opts & DCMC_DEID_SAFE_PRIVATE));
    else
        map_instance_uids(ds, uid_key);
    if (deid || !l || (dopt && dopt->n_recipients))
        add_encrypted_attributes(ds, orig, uid_key, dopt, ts_uid);
}

void encrypt(const char *in, const char *out, const dcmc_key *key, const dcmc_kdf *kdf,
             const uint8_t uid_key[32], const dcmc_options *opt, const dcmc_dicom_options *dopt,
             dcmc_dicom_info *info)
{
    init_once();
    if (!host_little_endian())
        fail(DCMC_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    check_output_syntax(dopt ? dopt->transfer_syntax : nullptr);
    const uint64_t t0 = now_ns();
    Loaded L;
    load(in, L, true);
    if (find_block(L.ds) >= 0)
        fail(DCMC_ERR_ALREADY_ENCRYPTED, "%s is already encrypted by dcmcrypt", in);
    const std::string mark = encryption_mark(L.ds);
    if (!mark.empty())
        fail(DCMC_ERR_ALREADY_ENCRYPTED,
             "%s: its %s says it holds pixel data encrypted by dcmcrypt, whose private block "
             "was removed: these are cipher values, not an image to encrypt",
             in, mark.c_str());
    Pixels px;
    decode_pixels(L, px);
    fill_info(info, L, px);
    DcmDataset *ds = L.ds;
    /* The frames are in px now; the original header is kept aside to learn what changed. */
    ds->findAndDeleteElement(DCM_PixelData);
    DcmDataset orig(*ds);
    transform_header(ds, orig, &px.layout, uid_key, dopt, L.ts_uid);
    std::vector<Uint8> attrs = protect(orig, ds, L.ts_uid, px);
    const uint64_t t1 = now_ns();

    dcmc_header hdr;
    std::vector<Uint8> pl;
    encrypt_pixels(attrs, px, key, kdf, opt, hdr, pl);
    const uint64_t t2 = now_ns();

    put_native(ds, px);
    write_block(ds, hdr, pl);
    const E_TransferSyntax xfer =
        encrypted_xfer(ds, px, L.ts_uid, dopt ? dopt->transfer_syntax : nullptr);
    save(L.ff, out, xfer);
    if (info) {
        info->read_ns = t1 - t0;
        info->cipher_ns = t2 - t1;
        info->write_ns = now_ns() - t2;
        snprintf(info->output_transfer_syntax, sizeof info->output_transfer_syntax, "%s",
                 DcmXfer(xfer).getXferID());
    }
}

} // namespace dcmci

/*
 * encrypt.cc - one object encrypted: loaded and decoded, its frames and protected attributes
 * through the cipher library, the encrypted object built (docs/dicom.md) and saved as explicit
 * VR little endian.
 */
#include "internal.h"

namespace dcmci {

namespace {

/* The frames (in place) and the protected bytes through the cipher: the header and payload. */
void encrypt_pixels(DcmDataset *ds, const std::string &ts_uid, Pixels &px, const dcmc_key *key,
                    const dcmc_kdf *kdf, const dcmc_options *opt, dcmc_header &hdr,
                    std::vector<Uint8> &pl)
{
    std::vector<Uint8> attrs = protect(ds, ts_uid, px);
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

    dcmc_header hdr;
    std::vector<Uint8> pl;
    encrypt_pixels(ds, L.ts_uid, px, key, kdf, opt, hdr, pl);
    const uint64_t t2 = now_ns();

    mark_encrypted(ds, px.layout, hdr, uid_key);
    put_native(ds, px);
    write_block(ds, hdr, pl);
    save(L.ff, out, EXS_LittleEndianExplicit);
    if (info) {
        info->read_ns = t1 - t0;
        info->cipher_ns = t2 - t1;
        info->write_ns = now_ns() - t2;
    }
}

} // namespace dcmci

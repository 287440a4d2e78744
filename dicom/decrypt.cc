/*
 * decrypt.cc - an encrypted object read back: its header (peek), everything that can be checked
 * before the key is used, the key check and MAC (verify), and the original restored, re-encoded
 * where the original syntax allows and saved (docs/dicom.md, "Decryption").
 */
#include "internal.h"

#include <cstdio>

namespace dcmci {

namespace {

/* An encrypted object, its header, payload and encrypted pixels, checked for what can be
 * checked without the key. */
struct Encrypted {
    Loaded L;
    dcmc_header hdr;
    std::vector<Uint8> payload;
    Pixels px;
    std::string reencoded; /* the syntax an archive re-encoded the pixels to, or empty */
};

void load_encrypted(const char *in, Encrypted &E)
{
    Loaded &L = E.L;
    dcmc_header &hdr = E.hdr;
    init_once();
    if (!host_little_endian())
        fail(DCMC_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    load(in, L, false);
    DcmDataset *ds = L.ds;
    read_block(ds, hdr, &E.payload, in);
    if (!ds->tagExists(DCM_PixelData))
        fail(DCMC_ERR_INTEGRITY, "%s: the encrypted pixel data is missing", in);
    /* Re-encoded by an archive: decoded first, judged by the MAC like native pixels. */
    const bool reencoded = DcmXfer(L.ts_uid.c_str()).isEncapsulated() || pixel_sequence(ds);
    if (reencoded) {
        E.reencoded = L.ts_uid;
        try {
            decode_reencoded(L, hdr.layout, hdr.frames, E.px);
        } catch (Failure &f) {
            f.msg = std::string(in) + ": " + f.msg;
            throw;
        }
    }
    /* The header's layout is authenticated; the dataset must agree with it. */
    if (!same_layout(cipher_layout(ds), hdr.layout) || frames_of(ds) != hdr.frames)
        fail(DCMC_ERR_INTEGRITY, "%s: image attributes no longer match the encrypted pixels", in);
    if (!reencoded)
        native_bytes(ds, hdr.layout, hdr.frames, E.px, DCMC_ERR_INTEGRITY);
    /* Encryption writes the frames and at most a zero pad byte: anything else was added later. */
    if (E.px.has_tail)
        fail(DCMC_ERR_INTEGRITY, "%s: the pixel data holds more than the encrypted frames", in);
}

/* Why the key check or the MAC failed, as far as the object tells. */
[[noreturn]] void refuse(const Encrypted &E, dcmc_status st, const char *in)
{
    if (st == DCMC_ERR_WRONG_KEY)
        fail(st, "%s: wrong key or passphrase: the object was encrypted with another one (its key "
                 "check value does not match)",
             in);
    if (st != DCMC_ERR_INTEGRITY)
        fail(st, "%s: %s", in, dcmc_status_str(st));
    const std::string &ts = E.reencoded;
    if (!ts.empty() && is_lossy_syntax(ts))
        fail(st,
             "%s: lossy recompression destroyed the cipher values: the encrypted pixels were "
             "re-encoded as %s, which does not keep every value, so they can never be decrypted; "
             "decrypt a copy stored before that re-encoding (and let the archive store encrypted "
             "objects losslessly)",
             in, DcmXfer(ts.c_str()).getXferName());
    if (!ts.empty())
        fail(st,
             "%s: integrity check failed: the pixel data (re-encoded as %s) or the protected "
             "attributes were changed or damaged",
             in, DcmXfer(ts.c_str()).getXferName());
    fail(st, "%s: integrity check failed: the object was changed or damaged", in);
}

/* Decrypt frames and payload in place; the protected bytes are put back into the dataset. */
void decrypt_pixels(Encrypted &E, const dcmc_key *key, int threads, std::string &ts,
                    const char *in)
{
    uint8_t *attrs = nullptr;
    size_t alen = 0;
    dcmc_status st = dcmc_image_decrypt(key, &E.hdr, threads, E.px.data.data(), E.px.data.size(),
                                        E.payload.data(), E.payload.size(), &attrs, &alen);
    if (st != DCMC_OK)
        refuse(E, st, in);
    try {
        /* Our block first: the originals may hold a vendor block in the slot it took. */
        delete_block(E.L.ds);
        restore(E.L.ds, attrs, alen, ts, E.px, in);
    } catch (...) {
        dcmc_free(attrs, alen);
        throw;
    }
    dcmc_free(attrs, alen);
}

} // namespace

void peek(const char *in, dcmc_header *hdr)
{
    init_once();
    Loaded L;
    load(in, L, false);
    read_block(L.ds, *hdr, nullptr, in);
}

void decrypt(const char *in, const char *out, const dcmc_key *key, int threads,
             dcmc_dicom_info *info)
{
    const uint64_t t0 = now_ns();
    Encrypted E;
    load_encrypted(in, E);
    DcmDataset *ds = E.L.ds;
    Pixels &px = E.px;
    fill_info(info, E.L, px);
    const uint64_t t1 = now_ns();
    std::string ts;
    decrypt_pixels(E, key, threads, ts, in);
    put_native(ds, px, px.has_tail ? &px.tail : nullptr);
    /* Record the syntax we really write in the meta header before encoders look at it. */
    const uint64_t t2 = now_ns();
    E_TransferSyntax xfer = output_xfer(ds, ts);
    save(E.L.ff, out, xfer);
    if (info) {
        info->read_ns = t1 - t0;
        info->cipher_ns = t2 - t1;
        info->write_ns = now_ns() - t2;
        snprintf(info->output_transfer_syntax, sizeof info->output_transfer_syntax, "%s",
                 DcmXfer(xfer).getXferID());
    }
}

void verify(const char *in, const dcmc_key *key, char sop_uid[65])
{
    Encrypted E;
    load_encrypted(in, E);
    uint8_t *attrs = nullptr;
    size_t alen = 0;
    dcmc_status st = dcmc_image_open_attrs(key, &E.hdr, E.px.data.data(), E.px.data.size(),
                                           E.payload.data(), E.payload.size(), &attrs, &alen);
    if (st != DCMC_OK)
        refuse(E, st, in);
    try {
        check_bound(E.L.ds, attrs, alen, in);
    } catch (...) {
        dcmc_free(attrs, alen);
        throw;
    }
    dcmc_free(attrs, alen);
    if (sop_uid)
        snprintf(sop_uid, 65, "%s", get_string(E.L.ds, DCM_SOPInstanceUID).c_str());
}

} // namespace dcmci

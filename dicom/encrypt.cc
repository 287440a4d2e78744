/*
 * encrypt.cc - one object encrypted: loaded and decoded; the original header kept aside; the
 * de-identification profile (when asked) and the marks applied; the originals of everything
 * that changed, with the bound attributes' digests, encrypted with the frames through the
 * cipher library; the encrypted object saved as explicit VR little endian (docs/dicom.md).
 * Large native objects go through the cipher a few frames at a time, never whole in memory
 * (docs/dicom.md, "Streaming").
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

/* The first pass of a streamed encryption: whether every word of every frame is canonical. A
 * residue (bits outside the stored field) travels in the payload, which is as large as the
 * frames and goes into the MAC ahead of them: such objects are encrypted whole. */
bool all_canonical(PixelReader &rd, const Pixels &px)
{
    bool canonical = true;
    for_frames(rd, px, stream_batch(1, px.frame_bytes, px.frames), [&](Uint8 *buf, Uint32 n) {
        for (Uint32 i = 0; i < n && canonical; i++)
            canonical = dcmc_frame_is_canonical(&px.layout, buf + (size_t)i * px.frame_bytes,
                                                px.frame_bytes) != 0;
    });
    return canonical;
}

/* The frames from rd through a cipher stream into tmp (then a pad byte where needed), the
 * protected bytes with them: the header and payload, as encrypt_pixels gives them. */
void stream_frames(PixelReader &rd, FrameFile &tmp, const Pixels &px, std::vector<Uint8> &attrs,
                   const dcmc_key *key, const dcmc_kdf *kdf, const dcmc_options *opt,
                   dcmc_header &hdr, std::vector<Uint8> &pl)
{
    dcmc_image_stream *raw = nullptr;
    dcmc_status st = dcmc_image_stream_encrypt_new(&raw, key, kdf, opt, &px.layout, px.frames,
                                                   attrs.data(), attrs.size());
    StreamPtr s(raw);
    dcmc_wipe(attrs.data(), attrs.size());
    if (st != DCMC_OK)
        fail(st, "encryption failed: %s", dcmc_status_str(st));
    const Uint32 per = stream_batch(dcmc_image_stream_batch(s.get()), px.frame_bytes, px.frames);
    for_frames(rd, px, per, [&](Uint8 *buf, Uint32 n) {
        if ((st = dcmc_image_stream_encrypt(s.get(), buf, n)) != DCMC_OK)
            fail(st, "encryption failed: %s",
                 st == DCMC_ERR_UNSUPPORTED ? "the pixel data changed while it was read"
                                            : dcmc_status_str(st));
        tmp.write(buf, (size_t)n * px.frame_bytes);
    });
    tmp.pad_even();
    uint8_t *payload = nullptr;
    size_t payload_len = 0;
    if ((st = dcmc_image_stream_encrypt_final(s.get(), &hdr, &payload, &payload_len)) != DCMC_OK)
        fail(st, "encryption failed: %s", dcmc_status_str(st));
    pl.assign(payload, payload + payload_len);
    dcmc_free(payload, payload_len);
}

/* A large native object written as explicit VR little endian, streamed: the frames stay in the
 * input file, go through the cipher a batch at a time into a temporary file beside `out`, and
 * DCMTK copies them from there when it saves. Everything else is what encrypt() does. False,
 * with nothing changed, when streaming does not apply: the object is then encrypted whole. */
bool encrypt_streamed(Loaded &L, const char *out, const dcmc_key *key, const dcmc_kdf *kdf,
                      const uint8_t uid_key[32], const dcmc_options *opt,
                      const dcmc_dicom_options *dopt, dcmc_dicom_info *info, uint64_t t0)
{
    DcmDataset *ds = L.ds;
    if (!stream_allowed() || !streamable_input(L) ||
        !encrypted_native(L.ts_uid, dopt ? dopt->transfer_syntax : nullptr))
        return false;
    /* What decode_pixels checks, in its order and with its messages. */
    const Uint32 frames = frames_of(ds);
    const dcmc_layout l = cipher_layout(ds);
    check_layout(l, l.samples == 1 ? "" : get_string(ds, DCM_PhotometricInterpretation));
    if (l.bits_allocated == 1 || !stream_worth(image_bytes(l, frames)))
        return false;
    DcmElement *el = native_element(ds, l, frames, DCMC_ERR_TRUNCATED);
    Pixels px;
    px.describe(l, frames);
    PixelReader rd(el);
    FrameFile tmp;
    if (!all_canonical(rd, px) || !tmp.open_near(out))
        return false;
    stream_tail(rd, el->getLength(), px, true);
    fill_info(info, L, px);
    /* Out of the dataset, still read from the input file. */
    std::unique_ptr<DcmElement> cipher_input(ds->remove(el));
    DcmDataset orig(*ds);
    transform_header(ds, orig, &px.layout, uid_key, dopt, L.ts_uid);
    std::vector<Uint8> attrs = protect(orig, ds, L.ts_uid, px);
    const uint64_t t1 = now_ns();
    dcmc_header hdr;
    std::vector<Uint8> pl;
    stream_frames(rd, tmp, px, attrs, key, kdf, opt, hdr, pl);
    const uint64_t t2 = now_ns();
    tmp.insert_pixel_data(ds, px.layout);
    write_block(ds, hdr, pl);
    save(L.ff, out, EXS_LittleEndianExplicit);
    tmp.check_written(ds);
    note_streamed(true);
    fill_times(info, t0, t1, t2, EXS_LittleEndianExplicit);
    return true;
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
             dcmc_dicom_info *info, std::unique_ptr<Loaded> pre)
{
    init_once();
    note_streamed(false);
    if (!host_little_endian())
        fail(DCMC_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    check_output_syntax(dopt ? dopt->transfer_syntax : nullptr);
    const uint64_t t0 = now_ns();
    std::unique_ptr<Loaded> own = std::move(pre);
    if (own) {
        require_pixels(*own, in);
    } else {
        own = std::make_unique<Loaded>();
        load(in, *own, true);
    }
    Loaded &L = *own;
    if (find_block(L.ds) >= 0)
        fail(DCMC_ERR_ALREADY_ENCRYPTED, "%s is already encrypted by dcmcrypt", in);
    const std::string mark = encryption_mark(L.ds);
    if (!mark.empty())
        fail(DCMC_ERR_ALREADY_ENCRYPTED,
             "%s: its %s says it holds pixel data encrypted by dcmcrypt, whose private block "
             "was removed: these are cipher values, not an image to encrypt",
             in, mark.c_str());
    if (encrypt_streamed(L, out, key, kdf, uid_key, opt, dopt, info, t0))
        return;
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
    fill_times(info, t0, t1, t2, xfer);
}

} // namespace dcmci

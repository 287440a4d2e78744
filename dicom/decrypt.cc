/*
 * decrypt.cc - an encrypted object read back: its header (peek), everything that can be checked
 * before the key is used, the key check and MAC (verify), and the original restored, re-encoded
 * where the original syntax allows and saved (docs/dicom.md, "Decryption"). Large native objects
 * are authenticated, then decrypted, a few frames at a time (docs/dicom.md, "Streaming").
 */
#include "internal.h"

#include <cstdio>

namespace dcmci {

namespace {

/* An encrypted object, its header, payload and encrypted pixels, checked for what can be
 * checked without the key. */
struct Encrypted {
    std::unique_ptr<Loaded> owned; /* the parse: the caller's (dcmc_dicom_open), or load_encrypted's */
    Loaded &L() const { return *owned; }
    dcmc_header hdr;
    std::vector<Uint8> payload;
    Pixels px;
    std::string reencoded; /* the syntax an archive re-encoded the pixels to, or empty */
    /* Streamed: the pixel data element, whose frames stay in the input file (px: no data). */
    DcmElement *pixels = nullptr;
};

/* A large native object whose frames can be read a few at a time (may_stream: the caller can). */
bool stream_this(const Encrypted &E, bool may_stream)
{
    const dcmc_layout &l = E.hdr.layout;
    return may_stream && stream_allowed() && E.reencoded.empty() && streamable_input(E.L()) &&
           l.bits_allocated != 1 && stream_worth(image_bytes(l, E.hdr.frames));
}

void load_encrypted(const char *in, Encrypted &E, bool may_stream)
{
    dcmc_header &hdr = E.hdr;
    init_once();
    if (!host_little_endian())
        fail(DCMC_ERR_UNSUPPORTED, "big-endian hosts are not supported");
    if (!E.owned) {
        E.owned = std::make_unique<Loaded>();
        load(in, *E.owned, false);
    }
    Loaded &L = E.L();
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
    if (stream_this(E, may_stream)) {
        /* The checks native_bytes makes, without reading the frames. */
        E.pixels = native_element(ds, hdr.layout, hdr.frames, DCMC_ERR_INTEGRITY);
        E.px.describe(hdr.layout, hdr.frames);
        PixelReader rd(E.pixels);
        stream_tail(rd, E.pixels->getLength(), E.px, false);
    } else if (!reencoded) {
        native_bytes(ds, hdr.layout, hdr.frames, E.px, DCMC_ERR_INTEGRITY);
    }
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
        delete_block(E.L().ds);
        restore(E.L().ds, attrs, alen, ts, E.px, in);
    } catch (...) {
        dcmc_free(attrs, alen);
        throw;
    }
    dcmc_free(attrs, alen);
}

/* The first pass over the cipher frames of a streamed object: key check value, then the MAC
 * over every frame, before anything is decrypted. Returns the stream, ready for the second pass,
 * and the protected bytes (*attrs, dcmc_free). */
StreamPtr verify_streamed(Encrypted &E, const dcmc_key *key, int threads, uint8_t **attrs,
                          size_t *alen, const char *in)
{
    dcmc_image_stream *raw = nullptr;
    dcmc_status st = dcmc_image_stream_decrypt_new(&raw, key, &E.hdr, threads, E.payload.data(),
                                                   E.payload.size());
    StreamPtr s(raw);
    if (st != DCMC_OK)
        refuse(E, st, in);
    PixelReader rd(E.pixels);
    const Uint32 per =
        stream_batch(dcmc_image_stream_batch(s.get()), E.px.frame_bytes, E.px.frames);
    for_frames(rd, E.px, per, [&](Uint8 *buf, Uint32 n) {
        if ((st = dcmc_image_stream_verify(s.get(), buf, n)) != DCMC_OK)
            refuse(E, st, in);
    });
    if ((st = dcmc_image_stream_verify_final(s.get(), attrs, alen)) != DCMC_OK)
        refuse(E, st, in);
    return s;
}

/* The second pass: every frame fed to the MAC again and decrypted into tmp, then the original
 * tail (px.tail, from the protected bytes) and a pad byte where needed; whatever changed in the
 * input since the first pass fails here, before tmp can become the output's pixel data. */
void decrypt_streamed_frames(Encrypted &E, dcmc_image_stream *s, FrameFile &tmp, const char *in)
{
    PixelReader rd(E.pixels);
    const Uint32 per = stream_batch(dcmc_image_stream_batch(s), E.px.frame_bytes, E.px.frames);
    dcmc_status st = DCMC_OK;
    for_frames(rd, E.px, per, [&](Uint8 *buf, Uint32 n) {
        if ((st = dcmc_image_stream_decrypt(s, buf, n)) != DCMC_OK)
            refuse(E, st, in);
        tmp.write(buf, (size_t)n * E.px.frame_bytes);
    });
    if ((st = dcmc_image_stream_decrypt_final(s)) != DCMC_OK)
        refuse(E, st, in);
    if (E.px.has_tail) /* Bits Allocated 8 and above: the tail starts after the last frame */
        tmp.write(E.px.tail.data(), E.px.tail.size());
    tmp.pad_even();
}

/* decrypt() for a streamed object: verified, restored, decrypted a batch at a time into a
 * temporary file beside `out`, which DCMTK copies when it saves. False, with nothing written,
 * when no temporary can be made there or the original's syntax needs a pixel encoder (those
 * need the pixels in memory): the caller then decrypts the object whole. */
bool decrypt_streamed(Encrypted &E, const char *out, const dcmc_key *key, int threads,
                      dcmc_dicom_info *info, uint64_t t0, const char *in)
{
    DcmDataset *ds = E.L().ds;
    FrameFile tmp;
    if (!tmp.open_near(out))
        return false;
    const uint64_t t1 = now_ns();
    uint8_t *attrs = nullptr;
    size_t alen = 0;
    StreamPtr s = verify_streamed(E, key, threads, &attrs, &alen, in);
    std::string ts;
    try {
        /* Our block first: the originals may hold a vendor block in the slot it took. */
        delete_block(ds);
        restore(ds, attrs, alen, ts, E.px, in);
    } catch (...) {
        dcmc_free(attrs, alen);
        throw;
    }
    dcmc_free(attrs, alen);
    if (!output_native(ds, ts))
        return false;
    decrypt_streamed_frames(E, s.get(), tmp, in);
    tmp.insert_pixel_data(ds, E.px.layout); /* the encrypted element goes */
    E.pixels = nullptr;
    const uint64_t t2 = now_ns();
    const E_TransferSyntax xfer = output_xfer(ds, ts);
    save(E.L().ff, out, xfer);
    tmp.check_written(ds);
    note_streamed(true);
    fill_times(info, t0, t1, t2, xfer);
    return true;
}

} // namespace

void peek(const char *in, dcmc_header *hdr, Loaded *pre)
{
    init_once();
    Loaded own;
    Loaded &L = pre ? *pre : own;
    if (!pre)
        load(in, L, false);
    read_block(L.ds, *hdr, nullptr, in);
}

void decrypt(const char *in, const char *out, const dcmc_key *key, int threads,
             dcmc_dicom_info *info, std::unique_ptr<Loaded> pre)
{
    const uint64_t t0 = now_ns();
    note_streamed(false);
    /* One load: an object too small to stream, or not streamable, arrives with its frames. */
    auto loaded = std::make_unique<Encrypted>();
    loaded->owned = std::move(pre);
    load_encrypted(in, *loaded, true);
    fill_info(info, loaded->L(), loaded->px);
    if (loaded->pixels) {
        if (decrypt_streamed(*loaded, out, key, threads, info, t0, in))
            return;
        /* Declined after all (the original's syntax needs a pixel encoder, or no temporary
         * file can be made beside `out`), maybe with the header already restored: the frames
         * are needed in memory, so the object is read again, whole. */
        loaded = std::make_unique<Encrypted>();
        load_encrypted(in, *loaded, false);
        fill_info(info, loaded->L(), loaded->px);
    }
    Encrypted &E = *loaded;
    DcmDataset *ds = E.L().ds;
    Pixels &px = E.px;
    const uint64_t t1 = now_ns();
    std::string ts;
    decrypt_pixels(E, key, threads, ts, in);
    put_native(ds, px, px.has_tail ? &px.tail : nullptr);
    /* Record the syntax we really write in the meta header before encoders look at it. */
    const uint64_t t2 = now_ns();
    E_TransferSyntax xfer = output_xfer(ds, ts);
    save(E.L().ff, out, xfer);
    fill_times(info, t0, t1, t2, xfer);
}

void verify(const char *in, const dcmc_key *key, char sop_uid[65])
{
    Encrypted E;
    note_streamed(false);
    load_encrypted(in, E, true);
    uint8_t *attrs = nullptr;
    size_t alen = 0;
    if (E.pixels) {
        verify_streamed(E, key, 0, &attrs, &alen, in);
        note_streamed(true);
    } else {
        dcmc_status st = dcmc_image_open_attrs(key, &E.hdr, E.px.data.data(), E.px.data.size(),
                                               E.payload.data(), E.payload.size(), &attrs, &alen);
        if (st != DCMC_OK)
            refuse(E, st, in);
    }
    try {
        check_bound(E.L().ds, attrs, alen, in);
    } catch (...) {
        dcmc_free(attrs, alen);
        throw;
    }
    dcmc_free(attrs, alen);
    if (sop_uid)
        snprintf(sop_uid, 65, "%s", get_string(E.L().ds, DCM_SOPInstanceUID).c_str());
}

} // namespace dcmci

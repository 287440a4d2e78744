/*
 * internal.h - what the files of the DCMTK adapter share (namespace dcmci): the typed failure
 * every file throws and the parse boundary (errors.cc), the loaded object and its pixels
 * (load.cc, pixels.cc, j2k.cc), the private block (block.cc), the protected attributes
 * (protect.cc), writing (save.cc), the operations (encrypt.cc, decrypt.cc, dicomdir.cc). Only
 * api.cc turns them into the C API of include/dcmcrypt/dicom.h; no exception leaves it.
 */
#ifndef DCMCRYPT_DICOM_INTERNAL_H
#define DCMCRYPT_DICOM_INTERNAL_H

#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/dcmdata/dcfcache.h"

#include <chrono>
#include <cstdio>
#include <algorithm>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/dicom.h"

namespace dcmci {

/* ---- failures (errors.cc) -------------------------------------------------------------------- */

/* What the adapter throws when it refuses something: the status says whose fault it is. */
struct Failure {
    dcmc_status status;
    std::string msg;
};

/* Refuse with a status and a message (printf format). */
[[noreturn, gnu::format(printf, 2, 3)]] void fail(dcmc_status st, const char *fmt, ...);
/* A broken invariant of our own: DCMC_ERR_INTERNAL, with a message saying it is a bug. */
[[noreturn, gnu::format(printf, 1, 2)]] void bug(const char *fmt, ...);

/* The status and message for the exception being handled (call only inside a catch block):
 * Failure as thrown, std::bad_alloc DCMC_ERR_NOMEM, anything else DCMC_ERR_INTERNAL. Exceptions
 * that untrusted input may cause have already become Failures at the parse boundary. */
dcmc_status status_of_current_exception(std::string &msg);

/* Run `f` (an operation of the API) and return its status, with the message in `msg`: no
 * exception leaves this function. */
template <class F> dcmc_status guard(char *msg, size_t msg_len, F &&f)
{
    if (msg && msg_len)
        msg[0] = '\0';
    std::string m;
    dcmc_status st;
    try {
        f();
        return DCMC_OK;
    } catch (...) {
        st = status_of_current_exception(m);
    }
    if (msg && msg_len)
        snprintf(msg, msg_len, "%s", m.c_str());
    return st;
}

/* An exception out of DCMTK while it reads untrusted bytes: malformed input (DCMC_ERR_FORMAT). */
[[noreturn]] void parse_failed(const char *what, const char *why);

/* The parse boundary (errors.cc says where it lies): run `f`, a DCMTK call that reads the
 * untrusted input, and turn whatever it throws, other than our own Failures and std::bad_alloc,
 * into a Failure with DCMC_ERR_FORMAT. Wrap DCMTK calls only, never our own code: a
 * std::logic_error of ours must stay a bug (DCMC_ERR_INTERNAL). */
template <class F> auto parsing(const char *what, F &&f) -> decltype(f())
{
    try {
        return f();
    } catch (const Failure &) {
        throw;
    } catch (const std::bad_alloc &) {
        throw;
    } catch (const std::exception &e) {
        parse_failed(what, e.what());
    } catch (...) {
        parse_failed(what, nullptr);
    }
}

/* ---- the loaded object (load.cc) ------------------------------------------------------------- */

void init_once();

inline uint64_t now_ns()
{
    return (uint64_t)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool host_little_endian();

/* The elements of an item, first to last. DCMTK 3.6.7's DcmItem::getElement(i) walks the
 * element list from an end on every call, so a loop over i is quadratic in the attributes
 * (DcmList::seek was 11 % of the CPU converting a tree of 128x128 CT slices); this is one walk.
 * A snapshot: the caller may remove (and delete) the elements it holds while it goes. */
std::vector<DcmElement *> elements_of(DcmItem *item);

/* Attribute values of the input (inside the parse boundary: DCMTK may load them lazily). */
std::string get_string(DcmItem *ds, const DcmTagKey &key);
long get_int(DcmItem *ds, const DcmTagKey &key, long dflt);

struct Loaded {
    DcmFileFormat ff;
    DcmDataset *ds = nullptr;
    std::string ts_uid;
    uint64_t file_bytes = 0; /* size on disk, the yardstick of what decoding may expand to */
};

/* Refuse files DCMTK cannot parse safely (nesting, DICOMDIR record types) before it sees them. */
void check_nesting(const char *path);
/* max_read: values longer than this stay on disk until used (DCMTK's lazy loading). */
void load(const char *path, Loaded &L, bool need_pixels, Uint32 max_read = DCM_MaxReadLength);
/* DCMC_ERR_NOT_IMAGE (or UNSUPPORTED for float pixels) unless L has pixel data. */
void require_pixels(const Loaded &L, const char *path);

void set_max_expansion(unsigned ratio);
/* Compressed pixel data decodes to `frames` frames of `l`: refuse that before any decoder runs
 * when it is far more than the file holds (a decompression bomb). */
void check_expansion(const Loaded &L, const dcmc_layout &l, Uint32 frames);
/* After decoding a lossy syntax: Lossy Image Compression "01" and, where the header did not say
 * so already, the method (once lossy, always flagged: PS3.3 C.7.6.1.1.5). */
void flag_lossy(DcmDataset *ds, const std::string &ts);
/* A syntax whose encoding may lose values (DCMTK's list, and HTJ2K 4.203, which DCMTK 3.6.7 does
 * not know). */
bool is_lossy_syntax(const std::string &ts);

dcmc_layout layout_of(DcmItem *ds);
/* The layout the cipher sees (native YBR_*_422 as gray twice as wide). */
dcmc_layout cipher_layout(DcmItem *ds);
bool same_layout(const dcmc_layout &a, const dcmc_layout &b);
Uint32 frames_of(DcmItem *ds);
void check_layout(const dcmc_layout &l, const std::string &photometric);

/* ---- pixels (pixels.cc) ---------------------------------------------------------------------- */

/* Bytes that `n` frames of layout `l` occupy once unpacked, or a failure when that does not fit
 * in memory at all. */
size_t image_bytes(const dcmc_layout &l, Uint32 n);

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

    /* Zeroed room for `n` frames of layout `l`: callers have checked the size (image_bytes)
     * against what the object really holds before asking for it. */
    void reset(const dcmc_layout &l, Uint32 n);
    /* Layout, frames and frame size only, no room: the frames of a streamed object stay in
     * files. */
    void describe(const dcmc_layout &l, Uint32 n);
};

/* The pixel data element of the (already decoded) dataset, checked to hold `frames` frames of
 * `l` (too short: `short_status`) without reading them. */
DcmElement *native_element(DcmDataset *ds, const dcmc_layout &l, Uint32 frames,
                           dcmc_status short_status);
/* Native pixel bytes of the (already decoded) dataset; too short: `short_status`. */
void native_bytes(DcmDataset *ds, const dcmc_layout &l, Uint32 frames, Pixels &px,
                  dcmc_status short_status = DCMC_ERR_TRUNCATED);
/* Replace the pixel data element with the frames, then `tail` or a pad byte. */
void put_native(DcmDataset *ds, const Pixels &px, const std::vector<Uint8> *tail = nullptr);
/* Decode whatever the object holds to native bytes (DCMTK's codecs, or OpenJPEG). */
void decode_pixels(Loaded &L, Pixels &px);
void fill_info(dcmc_dicom_info *info, const Loaded &L, const Pixels &px);
/* A conversion's times (read: t0-t1, cipher: t1-t2, write: t2-now) and the syntax it wrote. */
void fill_times(dcmc_dicom_info *info, uint64_t t0, uint64_t t1, uint64_t t2, E_TransferSyntax xfer);

/* ---- streaming: large native objects a few frames at a time (pixels.cc, save.cc) ------------ */

/* Whether an object with `bytes` bytes of frames is worth streaming, and whether streaming is
 * allowed at all (the tests' switch, dcmci_dicom_stream_mode); note_streamed records what the
 * last operation of this thread did, for dcmci_dicom_streamed. */
bool stream_allowed();
bool stream_worth(uint64_t bytes);
void note_streamed(bool streamed);
/* Native little-endian pixel data (explicit or implicit VR), which DCMTK leaves on disk and
 * hands out a range at a time; deflate and big endian are decoded in memory while loading. */
bool streamable_input(const Loaded &L);

/* A native pixel data element read a range at a time, straight from the input file where DCMTK
 * left its value (inside the parse boundary; unreadable: DCMC_ERR_FORMAT). */
class PixelReader {
public:
    explicit PixelReader(DcmElement *el) : el_(el) {}
    void read(size_t offset, size_t n, Uint8 *out);

private:
    DcmElement *el_;
    DcmFileCache cache_;
};
/* Frames per read of a streamed object: a multiple of `workers` (dcmc_image_stream_batch),
 * about 16 MiB, at most `frames`. */
Uint32 stream_batch(uint32_t workers, size_t frame_bytes, Uint32 frames);
/* Every frame of px (layout and frames set) from rd, `per` at a time, through fn(buf, n): n
 * frames back to back in buf, which fn may change. */
template <class F> void for_frames(PixelReader &rd, const Pixels &px, Uint32 per, F &&fn)
{
    const size_t fb = px.frame_bytes;
    std::vector<Uint8> buf((size_t)per * fb);
    for (Uint32 f = 0; f < px.frames; f += per) {
        const Uint32 n = std::min(per, px.frames - f);
        rd.read((size_t)f * fb, (size_t)n * fb, buf.data());
        fn(buf.data(), n);
    }
}
struct StreamFree {
    void operator()(dcmc_image_stream *s) const { dcmc_image_stream_free(s); }
};
using StreamPtr = std::unique_ptr<dcmc_image_stream, StreamFree>;
/* The tail of px (layout and frames set; Bits Allocated 8 and more), read from the element of
 * `len` bytes as native_bytes keeps it; without need_bytes, only whether there is one. */
void stream_tail(PixelReader &rd, Uint32 len, Pixels &px, bool need_bytes);

/* Where the frames of a streamed object wait until the dataset is saved: an unnamed temporary
 * file (O_TMPFILE) in the output's directory, which DCMTK reads back through /proc/self/fd/N as
 * the value of the Pixel Data element it writes; nothing of it survives, whatever happens.
 * Where the file system has no O_TMPFILE, a named file there, unlinked as soon as it is open
 * (or, without /proc, when this object goes). */
class FrameFile {
public:
    FrameFile() = default;
    FrameFile(const FrameFile &) = delete;
    FrameFile &operator=(const FrameFile &) = delete;
    ~FrameFile();
    /* False when no temporary can be made beside `out`: the caller keeps the frames in memory. */
    bool open_near(const char *out);
    void write(const Uint8 *p, size_t n);
    /* A zero byte when the value is odd: DICOM values have even lengths. */
    void pad_even();
    uint64_t size() const { return size_; }
    /* A Pixel Data element (OB for Bits Allocated up to 8, OW above, as put_native makes it)
     * whose value is this file, for `ds`; saveFile copies it a buffer at a time. */
    void insert_pixel_data(DcmDataset *ds, const dcmc_layout &l);
    /* After saving: DCMTK writes an empty value when it cannot read the file back, and that
     * file is complete too: refuse it. */
    void check_written(DcmDataset *ds) const;

private:
    bool open_in(const std::string &dir);
    int fd_ = -1;
    std::string path_, name_, out_;
    uint64_t size_ = 0;
};

/* ---- JPEG 2000 (j2k.cc) ---------------------------------------------------------------------- */

bool is_j2k(const std::string &ts);
/* The encapsulated pixel sequence of the dataset, or null. */
DcmPixelSequence *pixel_sequence(DcmDataset *ds);
/* Decode a JPEG 2000 or HTJ2K object with OpenJPEG; the dataset then describes native pixels. */
void decode_j2k(Loaded &L, Pixels &px, dcmc_layout l, Uint32 frames);
/* The frames of a JPEG 2000 or HTJ2K pixel sequence into px (layout `l`, planar 0), the
 * dataset's attributes untouched; returns the codestreams' precision. */
unsigned decode_j2k_frames(DcmDataset *ds, const dcmc_layout &l, Uint32 frames, Pixels &px);

/* ---- encrypted pixels an archive re-encoded (reencoded.cc) ----------------------------------- */

/* Decode the encrypted pixels of an object some archive re-encoded (any syntax DCMTK or
 * OpenJPEG decodes) into px, as the authenticated header describes them (`l`, `frames`); the
 * attributes a lossless re-encoding may change (Planar Configuration, Photometric YBR_RCT) are
 * set back. Whether the values are still the cipher's is for the MAC to say. */
void decode_reencoded(Loaded &L, const dcmc_layout &l, Uint32 frames, Pixels &px);
/* Samples of px (3 per pixel) rearranged to Planar Configuration `planar`. */
void set_planar(Pixels &px, uint32_t planar);

/* ---- the private block (block.cc) ------------------------------------------------------------ */

/* Block number (0x10..0xFF) of our creator in group 0011, or -1. */
int find_block(DcmItem *ds);
/* The header and, if `payload` is given, the payload (both untrusted until the MAC is checked). */
void read_block(DcmDataset *ds, dcmc_header &hdr, std::vector<Uint8> *payload, const char *in);
/* Add a block with the header and payload at the first free slot. */
void write_block(DcmDataset *ds, const dcmc_header &hdr, const std::vector<Uint8> &payload);
/* The block of an object without pixels whose header alone was protected: creator and one
 * element (0011,xx05) that says so; it has no cipher header. */
void write_marker_block(DcmDataset *ds);
bool is_marker_block(DcmItem *ds, int block);
/* The marks mark_encrypted leaves where people and archives look (Image Type, Series
 * Description, comments, window explanation): the object says it holds cipher values, with or
 * without our block. Empty when it says nothing, else the mark found. */
std::string encryption_mark(DcmItem *ds);
/* Delete our block, creator included. */
void delete_block(DcmDataset *ds);

/* Overlay Data (60xx,3000), xx even: an overlay's bitmap, which may show the original image. */
inline bool is_overlay_data(const DcmTagKey &k)
{
    return k.getGroup() >= 0x6000 && k.getGroup() <= 0x601E && k.getGroup() % 2 == 0 &&
           k.getElement() == 0x3000;
}

/* ---- canonical form (canon.cc) --------------------------------------------------------------- */

/* SHA-256 of an attribute's canonical form (tag and values as DCMTK holds them, whatever the
 * transfer syntax): equal digests, equal attributes. */
void element_digest(DcmElement *el, Uint8 out[32]);

/* ---- what the encrypted object shows (mark.cc) ----------------------------------------------- */

/* Every instance UID at every depth of `item` through the keyed map (dcmc_uid_map). */
void map_instance_uids(DcmItem *item, const uint8_t uid_key[32]);
/* What the encrypted object changes: removed, blanked and added attributes, windows, vendor
 * private elements (kept when keep_private: the de-identification profile chose them), markers,
 * every instance UID mapped. */
void mark_encrypted(DcmDataset *ds, const dcmc_layout &l, const uint8_t uid_key[32],
                    bool keep_private);

/* ---- protected attributes (protect.cc) ------------------------------------------------------- */

/* The protected bytes (version 3): transfer syntax, pixel data tail, the digests of the bound
 * attributes of `ds` (the encrypted object), the top-level attributes that differ between
 * `orig` (the original without its pixel data; consumed) and `ds`, and their original values. */
std::vector<Uint8> protect(DcmDataset &orig, DcmDataset *ds, const std::string &ts_uid,
                           const Pixels &px);
/* Top-level attributes whose canonical form differs between `a` and `b`, or that only one of
 * them has (pixel data and group lengths aside). */
std::vector<DcmTagKey> changed_tags(DcmDataset &a, DcmDataset *b);
/* A dataset as explicit VR little endian without meta header, appended to `buf`; and read back
 * (inside the parse boundary; malformed: DCMC_ERR_FORMAT). `what` names it in messages. */
void append_dataset(DcmDataset &ds, std::vector<Uint8> &buf, const char *what);
void parse_dataset(const Uint8 *p, size_t n, DcmDataset &ds, const char *what);
/* The bound attributes of `ds` as they were encrypted, or DCMC_ERR_INTEGRITY naming the first
 * that changed (any version: versions 1 and 2 bind none). */
void check_bound(DcmDataset *ds, const Uint8 *p, size_t n, const char *in);
/* check_bound, then the originals put back; `px` gets the pixel data tail. */
void restore(DcmDataset *ds, const Uint8 *p, size_t n, std::string &ts_uid, Pixels &px,
             const char *in);

/* ---- the Encrypted Attributes Sequence (eas.cc) ---------------------------------------------- */

/* Add an item to (0400,0500) holding, CMS-enveloped for the key's KEK and dopt's password and
 * certificates, the original value (from `orig`) of every top-level attribute that differs in
 * `ds`, except what describes the original pixels. */
void add_encrypted_attributes(DcmDataset *ds, DcmDataset &orig, const uint8_t uid_key[32],
                              const dcmc_dicom_options *dopt, const std::string &ts_uid);
/* Put back what `content` (an opened item of our own, index `at` of the sequence) holds: the
 * Modified Attributes Sequence's values, attributes the protection added deleted, the item
 * itself removed; `ts_uid` gets the original transfer syntax. */
void restore_encrypted_attributes(DcmDataset *ds, DcmDataset &content, int at,
                                  std::string &ts_uid);

/* ---- writing (save.cc) ----------------------------------------------------------------------- */

void save(DcmFileFormat &ff, const char *out, E_TransferSyntax xfer);
/* Re-encode to the original syntax where that is lossless and DCMTK can; what is written. */
E_TransferSyntax output_xfer(DcmDataset *ds, const std::string &ts_uid);
/* How the encrypted object is written (dcmc_dicom_options.transfer_syntax says how `want`
 * chooses), its pixel data (px, native in ds) encoded to match; explicit VR little endian
 * wherever a pixel encoding cannot be used or would not decode to exactly px. */
/* DCMC_ERR_ARG unless `want` is null, empty or a syntax encrypted_xfer can write. */
void check_output_syntax(const char *want);
E_TransferSyntax encrypted_xfer(DcmDataset *ds, const Pixels &px, const std::string &orig_ts,
                                const char *want);
/* encrypted_xfer would write explicit VR little endian without trying an encoder. */
bool encrypted_native(const std::string &orig_ts, const char *want);
/* output_xfer would write `ts` (or explicit VR little endian) without a pixel encoder, from
 * pixel data that may stay in a file. */
bool output_native(DcmDataset *ds, const std::string &ts_uid);

/* ---- the operations (encrypt.cc, decrypt.cc, dicomdir.cc) ------------------------------------ */

/* Every operation on a file either parses it (load) or takes the parse of dcmc_dicom_open
 * (`pre`, consumed: the conversion changes it). */
void encrypt(const char *in, const char *out, const dcmc_key *key, const dcmc_kdf *kdf,
             const uint8_t uid_key[32], const dcmc_options *opt, const dcmc_dicom_options *dopt,
             dcmc_dicom_info *info, std::unique_ptr<Loaded> pre = nullptr);
/* What encryption does to a header whose pixel data is out of it (l: the image's layout, or
 * null for an object without pixels); `orig` is a copy of it from before. */
void transform_header(DcmDataset *ds, DcmDataset &orig, const dcmc_layout *l,
                      const uint8_t uid_key[32], const dcmc_dicom_options *dopt,
                      const std::string &ts_uid);
/* Objects without pixel data (header.cc). */
void protect_header(const char *in, const char *out, const uint8_t uid_key[32],
                    const dcmc_dicom_options *dopt);
void restore_header(const char *in, const char *out, const uint8_t uid_key[32]);
void peek(const char *in, dcmc_header *hdr, Loaded *pre = nullptr);
void decrypt(const char *in, const char *out, const dcmc_key *key, int threads,
             dcmc_dicom_info *info, std::unique_ptr<Loaded> pre = nullptr);
void verify(const char *in, const dcmc_key *key, char sop_uid[65]);
void probe(const char *in, bool full, dcmc_dicom_probe_info *pi);
/* What a parsed object is (probe's answer). */
void classify(Loaded &L, dcmc_dicom_probe_info *pi);
/* Every Referenced File ID of a DICOMDIR, '/'-separated, relative to its directory. */
void dicomdir_refs(const char *in, std::vector<std::string> &refs);
void dicomdir_write(const char *in, const char *out, const char *root, const char *const *files,
                    size_t n);

} // namespace dcmci

#endif

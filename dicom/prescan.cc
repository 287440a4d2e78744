/*
 * prescan.cc - the nesting depth of a DICOM file, read from its raw bytes before DCMTK parses it
 * (prescan.h). DCMTK 3.6.7 recurses once per sequence and once per item and has no limit, so
 * this scan has to see at least every level DCMTK's reader would enter, on any input.
 *
 * How DCMTK reads a file, and so how this scan walks it (dcfilefo.cc, dcmetinf.cc, dcdatset.cc,
 * dcitem.cc, dcsequen.cc, dcpixel.cc, dcistrmz.cc of DCMTK 3.6.7, default global flags):
 *   - a preamble when bytes 128..131 are "DICM"; then a meta group if the next tag is group 2
 *     (in either byte order); the meta group is an ordinary item to DCMTK, sequences included;
 *     it ends at its group length (32-bit arithmetic, as DCMTK), or, without one, at the first
 *     tag outside group 2, or at an item delimiter;
 *   - the data set in the transfer syntax that (0002,0010) names (the first one DCMTK's search
 *     finds; every one the meta group holds is scanned); deflated syntaxes are raw deflate,
 *     inflated here and discarded to skip, with DCMTK's extra zero byte at the end of the file;
 *     an absent or unknown UID makes DCMTK guess from the first 6 bytes: explicit VR when bytes
 *     4..5 are a standard VR, the byte order from its dictionary, which we do not have: both
 *     byte orders are scanned;
 *   - sequences: VR SQ; VR UN (or an unknown upper-case VR) with undefined length, whose items
 *     DCMTK reads as implicit VR little endian (CP-246); undefined-length Pixel Data (VR OB/OW)
 *     is a pixel sequence of fragments that never nest. In implicit VR, undefined length is a
 *     sequence and a defined-length value is one when DCMTK's dictionary says SQ. A sequence
 *     with a defined length ends at its length or at a sequence delimiter, an item at its length
 *     or an item delimiter; values with undefined length inside them are read to their end even
 *     past the container's length, and the container then ends there (DCMTK does the same).
 *
 * Where DCMTK's choice depends on its dictionary (or on flags an application may set), the scan
 * does not guess: it follows each reading.
 *   - A defined-length value in implicit VR (or UN in explicit VR, for dcmEnableUnknownVRConversion)
 *     whose first tag is an item or a sequence delimiter is read as a sequence, and the "plain
 *     value" reading is kept as the frame's alternative (`alt`): if the sequence reading fails
 *     (DCMTK would stop with an error there) the scan resumes after the value; if it succeeds but
 *     ends elsewhere than the value's end, both continuations are scanned (a fork). An empty
 *     value may be an empty sequence: it counts as a level.
 *   - Items of a sequence that might really be a pixel sequence (undefined-length OB/OW that is
 *     not Pixel Data, or any undefined length in implicit VR: a private dictionary may say
 *     "pixel sequence") keep "skip this fragment" as their alternative in the same way.
 *   - In implicit VR big endian, an undefined-length value is read in big endian (an SQ of the
 *     dictionary) and, as a fork, in little endian (an unknown tag, CP-246).
 * A fork copies the stack without its alternatives (the branch that forks covers them), so the
 * readings grow with the number of divergences, not exponentially. Bounds for crafted files:
 * 256 forks, 4 restarts of an inflation, headers parsed at most 16 times the data reached (plus
 * 64 K); a file that exceeds one is reported as too deep. Legitimate files need none of it.
 *
 * Nothing recurses: one explicit stack of frames per reading; depth is counted when a sequence
 * frame is pushed, and the scan stops as soon as it exceeds `stop_at`.
 */
#include "prescan.h"

#include <sys/types.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <zlib.h>

namespace {

constexpr uint64_t kOpen = UINT64_MAX; /* Frame::end of an undefined-length frame */
constexpr uint64_t kNone = UINT64_MAX; /* Frame::alt / Branch::zbase: none */
constexpr uint32_t kUndefined = 0xFFFFFFFFu;

/* Encodings: explicit/implicit VR and byte order, as bits. */
enum : uint8_t { kExplicit = 1, kBig = 2 };
constexpr uint8_t kImplLE = 0, kImplBE = kBig, kExplLE = kExplicit, kExplBE = kExplicit | kBig;

/* Transfer syntaxes the meta group named, as bits (a crafted meta group may name several). */
enum : uint8_t {
    kTsImplLE = 1,
    kTsExplLE = 2,
    kTsExplBE = 4,
    kTsDeflate = 8,
    kTsGuess = 16,
    kTsImplBE = 32
};

/* Bounds on the work a crafted file can cause (legitimate files need none of it: they have no
 * divergent readings, and every reading passes over the file once). With them a file of 64 KB
 * costs well under a second whatever it holds. */
constexpr unsigned kMaxForks = 256;              /* divergent readings followed */
constexpr size_t kMaxPendingFrames = 1u << 20;    /* frames of the readings waiting (40 MB) */
constexpr unsigned kMaxRestarts = 4;   /* inflations restarted from the start to go back */
constexpr uint64_t kWorkPerByte8 = 16; /* headers parsed per 8 bytes of data reached: 16 passes */
constexpr uint64_t kWorkSlack = 65536;

constexpr size_t kChunk = 65536;
constexpr size_t kSmallChunk = 4096; /* after a jump: one page is enough for a header */

uint16_t get16(const uint8_t *p, bool big)
{
    return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

uint32_t get32(const uint8_t *p, bool big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

uint64_t add_sat(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

/* ---- bytes: the raw file, or the inflated data set of a deflated file ---------------------- */

/* Positions are file offsets in raw mode, offsets in the inflated stream in deflate mode. Reads
 * are short at the end of the data (or of what inflates); a real I/O error sets error(). Going
 * back in a deflate stream restarts the inflation (counted: restarts()). */
class Source {
public:
    explicit Source(FILE *f) : f_(f) {}
    ~Source()
    {
        if (z_ready_)
            inflateEnd(&z_);
    }
    Source(const Source &) = delete;
    Source &operator=(const Source &) = delete;

    /* zbase: kNone for the raw file, else the file offset where the deflate stream starts. */
    void set_mode(uint64_t zbase)
    {
        /* Same stream: positions stay valid; going back restarts the inflation in read_z. */
        if (zbase == zbase_)
            return;
        zbase_ = zbase;
        buf_len_ = 0;
        if (zbase != kNone)
            z_restart();
        pos_ = 0;
    }
    uint64_t zbase() const { return zbase_; }
    uint64_t pos() const { return pos_; }
    void seek(uint64_t p) { pos_ = p; }
    void skip(uint64_t n) { pos_ = add_sat(pos_, n); }
    int error() const { return err_; }
    unsigned restarts() const { return restarts_; }
    /* Highest offsets reached in both modes: the measure of the work allowed. */
    uint64_t reached() const { return add_sat(hi_raw_, hi_z_); }

    size_t read(uint8_t *dst, size_t n)
    {
        size_t got = zbase_ == kNone ? read_raw(dst, n) : read_z(dst, n);
        uint64_t &hi = zbase_ == kNone ? hi_raw_ : hi_z_;
        if (got > 0 && pos_ > hi)
            hi = pos_;
        return got;
    }

private:
    /* Copy what a window (`len` bytes of the stream from `off`, in `win`) holds at pos_ into
     * dst[got..n), advancing both; false if pos_ is not inside the window. */
    bool take_from(const uint8_t *win, uint64_t off, uint64_t len, uint8_t *dst, size_t n,
                   size_t &got)
    {
        if (pos_ < off || pos_ - off >= len)
            return false;
        const size_t have = (size_t)(len - (pos_ - off));
        const size_t take = have < n - got ? have : n - got;
        memcpy(dst + got, win + (pos_ - off), take);
        got += take;
        pos_ += take;
        return true;
    }

    size_t read_raw(uint8_t *dst, size_t n)
    {
        size_t got = 0;
        while (got < n) {
            if (take_from(buf_, buf_off_, buf_len_, dst, n, got))
                continue;
            if (pos_ > (uint64_t)INT64_MAX || err_)
                break;
            /* Sequential reading gets big chunks; after a jump over a value, one page. */
            size_t want = pos_ == buf_off_ + buf_len_ ? kChunk : kSmallChunk;
            if (fseeko(f_, (off_t)pos_, SEEK_SET) != 0) {
                err_ = errno ? errno : EIO;
                break;
            }
            size_t r = fread(buf_, 1, want, f_);
            if (r == 0 && ferror(f_))
                err_ = errno ? errno : EIO;
            buf_off_ = pos_;
            buf_len_ = r;
            if (r == 0)
                break;
        }
        return got;
    }

    void z_restart()
    {
        if (z_ready_)
            restarts_++; /* each one may inflate the whole stream again: bounded by the caller */
        int rc = z_ready_ ? inflateReset(&z_) : inflateInit2(&z_, -MAX_WBITS);
        if (rc != Z_OK) {
            err_ = ENOMEM;
            z_ended_ = true;
            return;
        }
        z_ready_ = true;
        z_.next_in = nullptr;
        z_.avail_in = 0;
        z_ended_ = false;
        z_padded_ = false;
        out_off_ = 0;
        out_len_ = 0;
        if (fseeko(f_, (off_t)zbase_, SEEK_SET) != 0) {
            err_ = errno ? errno : EIO;
            z_ended_ = true;
        }
    }

    /* Inflates the next chunk after the current one into out_. false at the end of the stream
     * (or at truncation or corrupt data: DCMTK's stream ends there too). */
    bool z_more()
    {
        if (z_ended_)
            return false;
        out_off_ += out_len_;
        out_len_ = 0;
        z_.next_out = out_;
        z_.avail_out = (uInt)kChunk;
        while (z_.avail_out > 0 && !z_ended_) {
            if (z_.avail_in == 0) {
                size_t r = fread(in_, 1, kChunk, f_);
                if (r == 0 && !ferror(f_) && !z_padded_) {
                    /* DCMTK's zlib filter feeds one zero byte after the end of the file (to
                     * end streams without a zlib header); in a cut stream it may inflate to
                     * a few more bytes, which DCMTK parses. So do we. */
                    in_[0] = 0;
                    r = 1;
                    z_padded_ = true;
                }
                if (r == 0) {
                    if (ferror(f_))
                        err_ = errno ? errno : EIO;
                    z_ended_ = true;
                    break;
                }
                z_.next_in = in_;
                z_.avail_in = (uInt)r;
            }
            int rc = inflate(&z_, Z_NO_FLUSH);
            if (rc == Z_STREAM_END) {
                z_ended_ = true;
            } else if (rc == Z_MEM_ERROR) {
                err_ = ENOMEM;
                z_ended_ = true;
            } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && z_.avail_in == 0)) {
                z_ended_ = true; /* Z_DATA_ERROR, Z_NEED_DICT: corrupt stream */
            }
        }
        out_len_ = kChunk - z_.avail_out;
        return out_len_ > 0;
    }

    size_t read_z(uint8_t *dst, size_t n)
    {
        size_t got = 0;
        while (got < n && !err_) {
            if (pos_ < out_off_) { /* behind what is inflated: start again */
                z_restart();
                continue;
            }
            if (take_from(out_, out_off_, out_len_, dst, n, got))
                continue;
            if (!z_more()) /* skipping forward inflates and discards, chunk by chunk */
                break;
        }
        return got;
    }

    FILE *f_;
    uint64_t pos_ = 0;
    uint64_t zbase_ = kNone;
    int err_ = 0;
    uint64_t hi_raw_ = 0, hi_z_ = 0;
    /* raw mode */
    uint8_t buf_[kChunk];
    uint64_t buf_off_ = 0;
    size_t buf_len_ = 0;
    /* deflate mode */
    z_stream z_{};
    bool z_ready_ = false, z_ended_ = false, z_padded_ = false;
    unsigned restarts_ = 0;
    uint8_t in_[kChunk];
    uint8_t out_[kChunk];
    uint64_t out_off_ = 0;
    size_t out_len_ = 0;
};

/* ---- VRs ---------------------------------------------------------------------------------- */

/* What an explicit VR means for the length field and for nesting, as DCMTK's DcmVR reads the
 * two bytes (dcvr.cc): the standard names, DCMTK's lower-case internal names, unknown
 * upper-case names ("future" VRs: 4-byte length, read like UN), anything else (2-byte length). */
enum class Vr : uint8_t {
    Short,   /* 2-byte length, never a sequence */
    SQ,      /* a sequence */
    UN,      /* undefined length: a sequence of implicit VR LE items; defined: maybe (see Peek) */
    Future,  /* unknown upper-case VR: like UN with undefined length, a plain value otherwise */
    OBOW,    /* OB, OW, ox: undefined length is a pixel sequence (Pixel Data) or maybe one */
    PX,      /* DCMTK's "px": undefined length is always a pixel sequence */
    Long     /* other 4-byte-length VRs (OD, OF, UT...): never a sequence to DCMTK */
};

bool vr_is(uint8_t c1, uint8_t c2, const char *const *names)
{
    for (; *names; names++)
        if ((*names)[0] == (char)c1 && (*names)[1] == (char)c2)
            return true;
    return false;
}

const char *const kStandardVrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD",
                                    "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
                                    "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC",
                                    "UI", "UL", "UN", "UR", "US", "UT", "UV", nullptr};

Vr classify_vr(uint8_t c1, uint8_t c2, bool pixel_data)
{
    static const char *const obow[] = {"OB", "OW", "ox", nullptr};
    static const char *const longs[] = {"OD", "OF", "OL", "OV", "SV", "UC",
                                        "UR", "UT", "UV", "lt", nullptr};
    static const char *const shorts[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD",
                                         "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM",
                                         "UI", "UL", "US", "xs", "na", "up", "pi", nullptr};
    if (c1 == 'S' && c2 == 'Q')
        return Vr::SQ;
    if (c1 == 'U' && c2 == 'N')
        return Vr::UN;
    if (c1 == 'p' && c2 == 'x')
        return Vr::PX;
    if (vr_is(c1, c2, obow))
        return Vr::OBOW;
    if (vr_is(c1, c2, longs))
        return Vr::Long;
    if (vr_is(c1, c2, shorts))
        return Vr::Short;
    if (c1 >= 'A' && c1 <= 'Z' && c2 >= 'A' && c2 <= 'Z')
        /* DCMTK turns the known misspelling "OX" of Pixel Data into OW. */
        return pixel_data && c1 == 'O' && c2 == 'X' ? Vr::OBOW : Vr::Future;
    return Vr::Short; /* "??", lower case, digits...: DCMTK assumes a 2-byte length */
}

/* DcmItem::foundVR: the transfer syntax guess calls a data set explicit when bytes 4..5 of
 * its first element are a standard VR name. */
bool standard_vr(uint8_t c1, uint8_t c2)
{
    return vr_is(c1, c2, kStandardVrs);
}

/* ---- transfer syntaxes -------------------------------------------------------------------- */

/* Every transfer syntax DCMTK 3.6.7 knows (dcxfer.cc) besides the four special ones below:
 * all explicit VR little endian. A UID not in this list makes DCMTK guess the encoding. */
const char *const kExplicitLittleSyntaxes[] = {
    "1.2.840.10008.1.2.1",     "1.2.840.10008.1.2.4.50",  "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.52",  "1.2.840.10008.1.2.4.53",  "1.2.840.10008.1.2.4.54",
    "1.2.840.10008.1.2.4.55",  "1.2.840.10008.1.2.4.56",  "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.58",  "1.2.840.10008.1.2.4.59",  "1.2.840.10008.1.2.4.60",
    "1.2.840.10008.1.2.4.61",  "1.2.840.10008.1.2.4.62",  "1.2.840.10008.1.2.4.63",
    "1.2.840.10008.1.2.4.64",  "1.2.840.10008.1.2.4.65",  "1.2.840.10008.1.2.4.66",
    "1.2.840.10008.1.2.4.70",  "1.2.840.10008.1.2.5",     "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",  "1.2.840.10008.1.2.4.90",  "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",  "1.2.840.10008.1.2.4.93",  "1.2.840.10008.1.2.4.94",
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
    "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
    "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108",
    nullptr};

uint8_t syntax_bits(const std::string &uid)
{
    if (uid.empty()) /* DCMTK's "Virtual Big Endian Implicit" has the UID "" (dcxfer.cc) */
        return kTsImplBE | kTsGuess;
    if (uid == "1.2.840.10008.1.2" || uid == "1.2.840.113619.5.2") /* GE private: implicit LE */
        return kTsImplLE;
    if (uid == "1.2.840.10008.1.2.2")
        return kTsExplBE;
    if (uid == "1.2.840.10008.1.2.1.99" || uid == "1.2.840.10008.1.2.4.95") /* JPIP deflate */
        return kTsDeflate;
    for (const char *const *u = kExplicitLittleSyntaxes; *u; u++)
        if (uid == *u)
            return kTsExplLE;
    return kTsGuess;
}

/* The UID as DCMTK compares it: a C string (up to the first NUL) with white space removed
 * (dcvrui.cc), so that padding alone selects implicit VR big endian; also as other VRs would
 * keep it (a crafted meta group may give it another VR): unchanged, or without trailing spaces.
 * Every reading counts. */
uint8_t syntax_bits_of_value(const uint8_t *v, size_t n)
{
    std::string raw((const char *)v, strnlen((const char *)v, n));
    std::string nows, trimmed = raw;
    for (char c : raw)
        if (!(c == ' ' || (c >= '\t' && c <= '\r')))
            nows += c;
    while (!trimmed.empty() && trimmed.back() == ' ')
        trimmed.pop_back();
    return (uint8_t)(syntax_bits(nows) | syntax_bits(trimmed) | syntax_bits(raw));
}

/* ---- the scan ----------------------------------------------------------------------------- */

enum class Kind : uint8_t {
    Dataset, /* the data set: elements until the end of the data */
    Meta,    /* the meta group: elements until its group length, or while tags are group 2 */
    Item,    /* an item of a sequence: elements until its length or an item delimiter */
    Seq,     /* a sequence: items until its length or a sequence delimiter */
    PixSeq   /* a pixel sequence: fragments, skipped */
};

struct Frame {
    uint64_t end = kOpen; /* first offset after a defined-length value, or kOpen */
    uint64_t alt = kNone; /* the other reading: resume the parent here (see file comment) */
    uint64_t start = 0;   /* Meta: its first byte (the group length counts from there) */
    unsigned depth = 0;   /* Seq: its level; others: the level of what contains them */
    Kind kind = Kind::Dataset;
    uint8_t enc = kExplLE; /* of the elements (or item headers) inside */
    bool frag = false;     /* Seq: its items may be pixel fragments */
    bool first = false;    /* Meta: the next element is read as the group length */
};

/* One reading of the file, waiting to be scanned (a fork) or being scanned. */
struct Branch {
    std::vector<Frame> stack;
    uint64_t pos = 0;
    uint64_t zbase = kNone;
    uint8_t ts = 0; /* transfer syntaxes named in the meta group read so far */
};

class Scanner {
public:
    Scanner(FILE *f, unsigned stop_at) : src_(f), stop_at_(stop_at) {}

    /* 0 and *depth, or -1 with errno. */
    int run(unsigned *depth)
    {
        start();
        while (!src_.error()) {
            if (max_ > stop_at_ || gave_up_)
                break;
            if (stack_.empty()) {
                if (pending_.empty())
                    break;
                resume(pending_.back());
                pending_.pop_back();
                continue;
            }
            if (work_ > kWorkPerByte8 * (src_.reached() / 8 + 1) + kWorkSlack ||
                src_.restarts() > kMaxRestarts) {
                gave_up_ = true;
                break;
            }
            step();
        }
        if (src_.error()) {
            errno = src_.error();
            return -1;
        }
        if (max_ > stop_at_ || gave_up_)
            *depth = stop_at_ == UINT32_MAX ? stop_at_ : stop_at_ + 1;
        else
            *depth = max_;
        return 0;
    }

private:
    /* Where DCMTK starts: preamble or not, meta group or not, and its encoding. */
    void start()
    {
        uint8_t pre[132];
        size_t n = src_.read(pre, sizeof pre);
        uint64_t at = n == sizeof pre && memcmp(pre + 128, "DICM", 4) == 0 ? 132 : 0;
        uint8_t b[6];
        src_.seek(at);
        size_t m = src_.read(b, sizeof b);
        src_.seek(at);
        /* DcmMetaInfo::nextTagIsMeta: group 0002 in either byte order. */
        if (m >= 2 && ((b[0] == 2 && b[1] == 0) || (b[0] == 0 && b[1] == 2))) {
            /* checkTransferSyntax: explicit when a standard VR follows the tag (or when fewer
             * than 6 bytes remain); "02 00" is little endian to DCMTK's dictionary, "00 02"
             * may be read either way. */
            uint8_t vr = m < 6 || standard_vr(b[4], b[5]) ? kExplicit : 0;
            Frame meta;
            meta.kind = Kind::Meta;
            meta.start = at;
            meta.first = true;
            meta.enc = vr;
            if (b[0] == 0) {
                Branch be;
                meta.enc = (uint8_t)(vr | kBig);
                be.stack.push_back(meta);
                be.pos = at;
                pending_frames_ += 1;
                pending_.push_back(std::move(be));
                meta.enc = vr;
            }
            stack_.push_back(meta);
        } else {
            start_dataset(at, kTsGuess);
        }
    }

    /* The data set from `at` in each encoding `ts` allows: the first in this branch, the
     * others as pending branches. */
    void start_dataset(uint64_t at, uint8_t ts)
    {
        if (ts == 0)
            ts = kTsGuess; /* no (0002,0010): DCMTK guesses */
        uint8_t encs = 0;  /* bit per encoding, raw */
        if (ts & kTsImplLE)
            encs |= 1u << kImplLE;
        if (ts & kTsImplBE)
            encs |= 1u << kImplBE;
        if (ts & kTsExplLE)
            encs |= 1u << kExplLE;
        if (ts & kTsExplBE)
            encs |= 1u << kExplBE;
        if (ts & kTsGuess) {
            /* DcmItem::checkTransferSyntax: VR from the bytes, byte order from the dictionary. */
            uint8_t b[6];
            src_.seek(at);
            size_t m = src_.read(b, sizeof b);
            if (m < 6)
                encs |= 1u << kExplLE;
            else if (standard_vr(b[4], b[5]))
                encs |= 1u << kExplLE | 1u << kExplBE;
            else
                encs |= 1u << kImplLE | 1u << kImplBE;
        }
        bool first = true;
        auto add = [&](uint8_t enc, uint64_t zbase) {
            Frame ds;
            ds.kind = Kind::Dataset;
            ds.enc = enc;
            if (first) {
                first = false;
                stack_.clear();
                stack_.push_back(ds);
                src_.set_mode(zbase);
                src_.seek(zbase == kNone ? at : 0);
                return;
            }
            Branch b;
            b.stack.push_back(ds);
            b.pos = zbase == kNone ? at : 0;
            b.zbase = zbase;
            b.ts = ts_;
            pending_frames_ += 1;
            pending_.push_back(std::move(b));
        };
        if (ts & kTsDeflate) /* deflated explicit VR little endian */
            add(kExplLE, at);
        for (uint8_t enc = 0; enc < 4; enc++)
            if (encs & (1u << enc))
                add(enc, kNone);
    }

    void resume(Branch &b)
    {
        pending_frames_ -= b.stack.size();
        stack_ = std::move(b.stack);
        ts_ = b.ts;
        src_.set_mode(b.zbase);
        src_.seek(b.pos);
    }

    /* Scan the other reading later: the current stack (without the frame just finished) from
     * `pos`. The copied frames lose their alternatives: this branch, which keeps them, covers
     * them (it resumes an alternative when it fails inside the frame, forks it when the frame
     * ends elsewhere, and is on it when the frame ends there), so the fork need not, and the
     * readings stay linear in the number of divergences instead of exponential. */
    void fork(uint64_t pos, const Frame *extra = nullptr)
    {
        const size_t frames = stack_.size() + (extra ? 1 : 0);
        if (forks_ >= kMaxForks || pending_frames_ + frames > kMaxPendingFrames) {
            gave_up_ = true;
            return;
        }
        forks_++;
        pending_frames_ += frames;
        Branch b;
        /* Copied by construction: GCC 12 at -O3 warns (wrongly) about a null memmove in the
         * copy assignment of an empty vector. */
        b.stack = std::vector<Frame>(stack_.begin(), stack_.end());
        for (Frame &f : b.stack)
            f.alt = kNone;
        if (extra)
            b.stack.push_back(*extra);
        b.pos = pos;
        b.zbase = src_.zbase();
        b.ts = ts_;
        pending_.push_back(std::move(b));
    }

    /* The top frame ended the way DCMTK ends it (length reached or delimiter read). */
    void complete()
    {
        Frame fr = stack_.back();
        stack_.pop_back();
        if (fr.kind == Kind::Meta) {
            start_dataset(src_.pos(), ts_);
            return;
        }
        if (fr.alt != kNone && src_.pos() != fr.alt)
            fork(fr.alt);
    }

    /* DCMTK would stop here with an error (or the data ended): this reading is over, unless a
     * frame on the way down has another reading; resume that one. */
    void fail()
    {
        while (!stack_.empty()) {
            Frame fr = stack_.back();
            stack_.pop_back();
            if (fr.alt != kNone) {
                src_.seek(fr.alt);
                return;
            }
        }
    }

    /* A sequence inside a data set of level `parent_depth`: returns its level. */
    unsigned note_level(unsigned parent_depth)
    {
        unsigned d = parent_depth == UINT32_MAX ? parent_depth : parent_depth + 1;
        if (d > max_)
            max_ = d;
        return d;
    }

    void push_seq(unsigned parent_depth, uint8_t enc, uint64_t end, bool frag, uint64_t alt)
    {
        Frame sq;
        sq.kind = Kind::Seq;
        sq.enc = enc;
        sq.end = end;
        sq.frag = frag;
        sq.alt = alt;
        sq.depth = note_level(parent_depth);
        stack_.push_back(sq);
    }

    void step()
    {
        Frame &fr = stack_.back();
        switch (fr.kind) {
        case Kind::Seq:
            seq_step();
            return;
        case Kind::PixSeq:
            pixseq_step();
            return;
        case Kind::Item:
            if (fr.end != kOpen && src_.pos() >= fr.end)
                complete();
            else
                element();
            return;
        case Kind::Meta:
            if (!fr.first) {
                if (fr.end != kOpen) {
                    if (src_.pos() >= fr.end) {
                        complete();
                        return;
                    }
                } else {
                    uint64_t at = src_.pos();
                    uint8_t b[2];
                    size_t m = src_.read(b, 2);
                    src_.seek(at);
                    if (m < 2 || !((b[0] == 2 && b[1] == 0) || (b[0] == 0 && b[1] == 2))) {
                        complete();
                        return;
                    }
                }
            }
            element();
            return;
        case Kind::Dataset:
            element();
            return;
        }
    }

    /* Items of a sequence (DcmSequenceOfItems::read, readSubItem). */
    void seq_step()
    {
        const Frame fr = stack_.back();
        if (fr.end != kOpen && src_.pos() >= fr.end) {
            complete();
            return;
        }
        uint8_t h[8];
        if (src_.read(h, 8) < 8) {
            fail();
            return;
        }
        work_++;
        const bool big = fr.enc & kBig;
        uint16_t g = get16(h, big), e = get16(h + 2, big);
        uint32_t len = get32(h + 4, big);
        if (g == 0xFFFE && e == 0xE000) {
            Frame it;
            it.kind = Kind::Item;
            it.enc = fr.enc;
            it.depth = fr.depth;
            const uint64_t s = src_.pos();
            it.end = len == kUndefined ? kOpen : s + len;
            it.alt = fr.frag && len != kUndefined ? s + len : kNone;
            stack_.push_back(it);
        } else if (g == 0xFFFE && e == 0xE0DD) {
            complete();
        } else {
            fail(); /* an item delimiter or an element where an item belongs */
        }
    }

    /* Fragments of encapsulated pixel data (DcmPixelSequence): never nested, skipped. */
    void pixseq_step()
    {
        const bool big = stack_.back().enc & kBig;
        uint8_t h[8];
        if (src_.read(h, 8) < 8) {
            fail();
            return;
        }
        work_++;
        uint16_t g = get16(h, big), e = get16(h + 2, big);
        uint32_t len = get32(h + 4, big);
        if (g == 0xFFFE && e == 0xE000 && len != kUndefined)
            src_.skip(len);
        else if (g == 0xFFFE && e == 0xE0DD)
            complete();
        else
            fail();
    }

    /* One element of a data set, item or meta group (DcmItem::readTagAndLength, readSubElement,
     * newDicomElement). */
    void element()
    {
        Frame &fr = stack_.back();
        const uint8_t enc = fr.enc;
        const bool big = enc & kBig;
        const unsigned depth = fr.depth;
        uint8_t h[8];
        if (src_.read(h, 4) < 4) {
            fail();
            return;
        }
        work_++;
        const uint16_t g = get16(h, big), e = get16(h + 2, big);
        if (g == 0xFFFE && (e == 0xE000 || e == 0xE00D || e == 0xE0DD)) {
            /* Delimiters have no VR, even in explicit VR. */
            if (src_.read(h, 4) < 4) {
                fail();
                return;
            }
            if (e == 0xE00D)
                complete(); /* ends the item; also the meta group, or DCMTK's data set */
            else
                fail(); /* an item or sequence delimiter where an element belongs */
            return;
        }
        Vr vr = Vr::Short;
        uint32_t len;
        if (enc & kExplicit) {
            if (src_.read(h, 2) < 2) {
                fail();
                return;
            }
            vr = classify_vr(h[0], h[1], g == 0x7FE0 && e == 0x0010);
            if (vr == Vr::Short) {
                if (src_.read(h, 2) < 2) {
                    fail();
                    return;
                }
                len = get16(h, big);
            } else {
                if (src_.read(h, 6) < 6) { /* 2 reserved bytes, 32-bit length */
                    fail();
                    return;
                }
                len = get32(h + 2, big);
            }
        } else {
            if (src_.read(h, 4) < 4) {
                fail();
                return;
            }
            len = get32(h, big);
        }
        const uint64_t s = src_.pos();
        const uint64_t end = len == kUndefined ? kOpen : s + len;
        const bool pixel_data = g == 0x7FE0 && e == 0x0010;

        if (fr.kind == Kind::Meta && fr.first) {
            /* DcmMetaInfo::readGroupLength: a first element (0002,0000) with a value gives the
             * group's length, counted from the group's start in 32 bits as DCMTK does; any
             * other first element leaves the group open-ended (tags in group 2). */
            fr.first = false;
            if (g == 2 && e == 0 && len != kUndefined && len >= 4 && vr != Vr::SQ) {
                uint8_t v[4];
                if (src_.read(v, 4) < 4) {
                    fail();
                    return;
                }
                uint32_t total = get32(v, big) + (uint32_t)(s - fr.start) + len;
                fr.end = total == kUndefined ? kOpen : fr.start + total;
                src_.seek(end);
                return;
            }
        }
        if (g == 0x0004 && e == 0x1430 && len != kUndefined && len > 4096) {
            bad_record_type_ = true; /* far beyond any record type: see below */
        } else if (g == 0x0004 && e == 0x1430 && len != kUndefined) {
            /* Directory Record Type: DCMTK 3.6.7 "verifies" it while it reads a DICOMDIR record
             * (DcmDirectoryRecord::lookForRecordType -> DcmByteString::verify), and when its last
             * component is longer than a CS value (16) the correction steps an end marker back
             * from npos, erases at a wrapped position and throws std::out_of_range out of the
             * parser, leaking the records it had built. No defined record type is longer than
             * 16 characters: a file with a longer component is refused before DCMTK. */
            uint8_t v[4096];
            size_t got = src_.read(v, len);
            unsigned run = 0, long_parts = 0;
            for (size_t i = 0; i <= got; i++) { /* NULs too: DCMTK verifies all `len` bytes */
                if (i == got || v[i] == '\\') {
                    long_parts += run > 16;
                    run = 0;
                } else {
                    run++;
                }
            }
            if (long_parts >= 1)
                bad_record_type_ = true;
            src_.seek(s);
        }
        if (g == 2 && e == 0x10 && stack_.front().kind == Kind::Meta) {
            /* Transfer Syntax UID, wherever it is in the meta group (DCMTK searches the whole
             * group, sequences included, for the first one; every one found counts). */
            if (len <= 256) {
                uint8_t v[256];
                size_t got = src_.read(v, len);
                ts_ |= syntax_bits_of_value(v, got);
                src_.seek(s);
            } else {
                ts_ |= kTsGuess;
            }
            if (len == kUndefined || vr == Vr::SQ)
                ts_ |= kTsGuess; /* not a string to DCMTK */
        }

        if (!(enc & kExplicit)) {
            /* Implicit VR: DCMTK's dictionary gives the VR. */
            if (len == kUndefined) {
                if (pixel_data) {
                    push_pixseq(enc);
                } else {
                    /* A sequence (SQ in the dictionary; unknown tags are read as UN, CP-246:
                     * implicit VR little endian, which differs in a big endian data set), or a
                     * private pixel sequence: items may be fragments. */
                    if (enc & kBig) {
                        Frame le;
                        le.kind = Kind::Seq;
                        le.enc = kImplLE;
                        le.frag = true;
                        le.depth = depth + 1;
                        fork(s, &le);
                    }
                    push_seq(depth, enc, kOpen, true, kNone);
                }
            } else {
                peek(depth, enc, s, len);
            }
            return;
        }
        switch (vr) {
        case Vr::SQ:
            push_seq(depth, enc, end, false, kNone);
            return;
        case Vr::UN:
            if (len == kUndefined)
                push_seq(depth, kImplLE, kOpen, false, kNone);
            else
                peek(depth, kImplLE, s, len); /* dcmEnableUnknownVRConversion: SQ if the
                                                 dictionary says so, read as implicit LE */
            return;
        case Vr::Future:
            if (len == kUndefined)
                push_seq(depth, kImplLE, kOpen, false, kNone);
            else
                src_.seek(end);
            return;
        case Vr::OBOW:
            if (len == kUndefined) {
                if (pixel_data)
                    push_pixseq(enc);
                else /* an error to DCMTK, or a private pixel sequence, or (with
                        dcmConvertUndefinedLengthOBOWtoSQ) a sequence */
                    push_seq(depth, enc, kOpen, true, kNone);
            } else {
                src_.seek(end);
            }
            return;
        case Vr::PX:
            if (len == kUndefined)
                push_pixseq(enc);
            else
                src_.seek(end);
            return;
        case Vr::Long:
            if (len == kUndefined) /* not a sequence to DCMTK: counting it costs nothing */
                push_seq(depth, enc, kOpen, true, kNone);
            else
                src_.seek(end);
            return;
        case Vr::Short:
            src_.seek(end);
            return;
        }
    }

    void push_pixseq(uint8_t enc)
    {
        Frame px;
        px.kind = Kind::PixSeq;
        px.enc = enc;
        px.depth = stack_.back().depth;
        stack_.push_back(px);
    }

    /* A defined-length value that is a sequence only if DCMTK's dictionary says so: read it as
     * one when its first tag allows it (an item, or a sequence delimiter, which DCMTK accepts
     * as an early end), keeping "a plain value" as the alternative. An empty value may be an
     * empty sequence, which is a level too (common in implicit VR: such files may count one
     * level more than their deepest non-empty sequence); so may a value that starts at the end
     * of the file (DCMTK keeps a sequence that meets the end of the data). A value whose first
     * tag is anything else is not counted: as a sequence DCMTK would stop there with an error. */
    void peek(unsigned depth, uint8_t enc, uint64_t s, uint32_t len)
    {
        const uint64_t end = s + len;
        if (len == 0) {
            note_level(depth);
        } else {
            uint8_t p[4];
            size_t m = src_.read(p, 4);
            src_.seek(s);
            const bool big = enc & kBig;
            if (m == 4 && get16(p, big) == 0xFFFE &&
                (get16(p + 2, big) == 0xE000 || get16(p + 2, big) == 0xE0DD)) {
                push_seq(depth, enc, end, false, end);
                return;
            }
            if (m == 0)
                note_level(depth);
        }
        src_.seek(end);
    }

    Source src_;
    const unsigned stop_at_;
    std::vector<Frame> stack_;
    std::vector<Branch> pending_;
    uint8_t ts_ = 0;
    unsigned max_ = 0;
    unsigned forks_ = 0;
    size_t pending_frames_ = 0;
    uint64_t work_ = 0;
    bool gave_up_ = false;

public:
    bool bad_record_type_ = false; /* see element() */
};

} // namespace

extern "C" int dcmci_prescan_depth(const char *path, unsigned stop_at, unsigned *depth)
{
    dcmci_prescan_result r;
    int rc = dcmci_prescan(path, stop_at, &r);
    if (depth)
        *depth = r.depth;
    return rc;
}

extern "C" int dcmci_prescan(const char *path, unsigned stop_at, dcmci_prescan_result *result)
{
    if (result)
        memset(result, 0, sizeof *result);
    if (path == nullptr || result == nullptr) {
        errno = EINVAL;
        return -1;
    }
    unsigned *depth = &result->depth;
    FILE *f = fopen(path, "rb");
    if (f == nullptr)
        return -1;
    /* The scanner buffers itself; stdio's buffer would only be thrown away at every seek. */
    setvbuf(f, nullptr, _IONBF, 0);
    int rc;
    try {
        Scanner *sc = new Scanner(f, stop_at); /* ~200 KB of buffers: not on the stack */
        rc = sc->run(depth);
        result->bad_record_type = sc->bad_record_type_;
        int saved = errno;
        delete sc;
        errno = saved;
    } catch (const std::bad_alloc &) {
        errno = ENOMEM;
        rc = -1;
    } catch (...) {
        errno = EIO;
        rc = -1;
    }
    int saved = errno;
    fclose(f);
    errno = saved;
    if (rc != 0)
        *depth = 0;
    return rc;
}

/*
 * prescan_scan.h - the prescan's walker (prescan.cc, prescan_element.cc) and what it knows of
 * VRs and transfer syntaxes (prescan_syntax.cc): one explicit stack of frames per reading of the
 * file, the readings waiting to be scanned, and the bounds on the work a crafted file can cause.
 */
#ifndef DCMCRYPT_PRESCAN_SCAN_H
#define DCMCRYPT_PRESCAN_SCAN_H

#include <string>
#include <vector>

#include "prescan_stream.h"

namespace dcmci {
namespace prescan {

constexpr uint64_t kOpen = UINT64_MAX; /* Frame::end of an undefined-length frame */
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

Vr classify_vr(uint8_t c1, uint8_t c2, bool pixel_data);
/* DcmItem::foundVR: a standard VR name (the transfer syntax guess). */
bool standard_vr(uint8_t c1, uint8_t c2);
/* The transfer syntaxes (kTs* bits) a Transfer Syntax UID value of `n` bytes selects. */
uint8_t syntax_bits_of_value(const uint8_t *v, size_t n);

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

/* One element's header, as element() reads it. */
struct Element {
    uint16_t g = 0, e = 0;
    Vr vr = Vr::Short;
    uint32_t len = 0;
    uint64_t s = 0;        /* first byte of the value */
    uint64_t end = kOpen;  /* after the value, or kOpen */
    bool pixel_data = false;
};

class Scanner {
public:
    Scanner(FILE *f, unsigned stop_at) : src_(f), stop_at_(stop_at) {}

    /* 0 and *depth, or -1 with errno. */
    int run(unsigned *depth);

    bool bad_record_type_ = false; /* see check_record_type() */
    uint64_t inflated() const { return src_.inflated(); }

private:
    /* prescan.cc: the readings and their frames */
    void start();
    void start_dataset(uint64_t at, uint8_t ts);
    void resume(Branch &b);
    void fork(uint64_t pos, const Frame *extra = nullptr);
    void complete();
    void fail();
    unsigned note_level(unsigned parent_depth);
    void push_seq(unsigned parent_depth, uint8_t enc, uint64_t end, bool frag, uint64_t alt);
    void push_pixseq(uint8_t enc);
    void step();
    void seq_step();
    void pixseq_step();
    void peek(unsigned depth, uint8_t enc, uint64_t s, uint32_t len);
    /* prescan_element.cc: one element of a data set, item or meta group */
    void element();
    bool read_element(uint8_t enc, Element &el);
    bool meta_group_length(Frame &fr, const Element &el, bool big);
    void check_record_type(const Element &el);
    void note_transfer_syntax(const Element &el);
    void open_implicit(uint8_t enc, unsigned depth, const Element &el);
    void open_explicit(uint8_t enc, unsigned depth, const Element &el);

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
};

} // namespace prescan
} // namespace dcmci

#endif

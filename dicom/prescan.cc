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
 *
 * This file holds the readings and their frames; prescan_element.cc reads one element,
 * prescan_stream.cc the bytes (raw or inflated), prescan_syntax.cc VRs and transfer syntaxes.
 */
#include "prescan.h"
#include "prescan_scan.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>

namespace dcmci {
namespace prescan {

/* 0 and *depth, or -1 with errno. */
int Scanner::run(unsigned *depth)
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

/* Where DCMTK starts: preamble or not, meta group or not, and its encoding. */
void Scanner::start()
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
void Scanner::start_dataset(uint64_t at, uint8_t ts)
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

void Scanner::resume(Branch &b)
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
void Scanner::fork(uint64_t pos, const Frame *extra)
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
void Scanner::complete()
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
void Scanner::fail()
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
unsigned Scanner::note_level(unsigned parent_depth)
{
    unsigned d = parent_depth == UINT32_MAX ? parent_depth : parent_depth + 1;
    if (d > max_)
        max_ = d;
    return d;
}

void Scanner::push_seq(unsigned parent_depth, uint8_t enc, uint64_t end, bool frag, uint64_t alt)
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

void Scanner::step()
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
void Scanner::seq_step()
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
void Scanner::pixseq_step()
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

void Scanner::push_pixseq(uint8_t enc)
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
void Scanner::peek(unsigned depth, uint8_t enc, uint64_t s, uint32_t len)
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

} // namespace prescan
} // namespace dcmci

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
        dcmci::prescan::Scanner *sc = new dcmci::prescan::Scanner(f, stop_at); /* ~200 KB of buffers: not on the stack */
        rc = sc->run(depth);
        result->bad_record_type = sc->bad_record_type_;
        result->inflated = sc->inflated();
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

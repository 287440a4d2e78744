/*
 * prescan_element.cc - one element of a data set, item or meta group, read as DCMTK 3.6.7 reads
 * it (DcmItem::readTagAndLength, readSubElement, newDicomElement): its tag, VR and length, what
 * the scan notes on the way (the meta group's length, the Transfer Syntax UID, DICOMDIR record
 * types DCMTK cannot parse), and what it opens (a sequence, a pixel sequence, or nothing).
 */
#include "prescan_scan.h"

namespace dcmci {
namespace prescan {

void Scanner::element()
{
    Frame &fr = stack_.back();
    const uint8_t enc = fr.enc;
    const unsigned depth = fr.depth;
    Element el;
    if (!read_element(enc, el))
        return;
    if (fr.kind == Kind::Meta && fr.first && meta_group_length(fr, el, enc & kBig))
        return;
    check_record_type(el);
    note_transfer_syntax(el);
    if (!(enc & kExplicit))
        open_implicit(enc, depth, el);
    else
        open_explicit(enc, depth, el);
}

/* Tag, VR and length; false when there is no element to go on with (a delimiter ended the
 * frame, or this reading failed). */
bool Scanner::read_element(uint8_t enc, Element &el)
{
    const bool big = enc & kBig;
    uint8_t h[8];
    if (src_.read(h, 4) < 4) {
        fail();
        return false;
    }
    work_++;
    el.g = get16(h, big);
    el.e = get16(h + 2, big);
    if (el.g == 0xFFFE && (el.e == 0xE000 || el.e == 0xE00D || el.e == 0xE0DD)) {
        /* Delimiters have no VR, even in explicit VR. */
        /* Cut short, or an item or sequence delimiter where an element belongs: fail. */
        if (src_.read(h, 4) == 4 && el.e == 0xE00D)
            complete(); /* ends the item; also the meta group, or DCMTK's data set */
        else
            fail();
        return false;
    }
    el.pixel_data = el.g == 0x7FE0 && el.e == 0x0010;
    if (enc & kExplicit) {
        if (src_.read(h, 2) < 2) {
            fail();
            return false;
        }
        el.vr = classify_vr(h[0], h[1], el.pixel_data);
        const size_t n = el.vr == Vr::Short ? 2 : 6; /* else 2 reserved bytes, 32-bit length */
        if (src_.read(h, n) < n) {
            fail();
            return false;
        }
        el.len = n == 2 ? get16(h, big) : get32(h + 2, big);
    } else {
        if (src_.read(h, 4) < 4) {
            fail();
            return false;
        }
        el.len = get32(h, big);
    }
    el.s = src_.pos();
    el.end = el.len == kUndefined ? kOpen : el.s + el.len;
    return true;
}

/* DcmMetaInfo::readGroupLength: a first element (0002,0000) with a value gives the group's
 * length, counted from the group's start in 32 bits as DCMTK does; any other first element
 * leaves the group open-ended (tags in group 2). True when the element has been consumed. */
bool Scanner::meta_group_length(Frame &fr, const Element &el, bool big)
{
    fr.first = false;
    if (!(el.g == 2 && el.e == 0 && el.len != kUndefined && el.len >= 4 && el.vr != Vr::SQ))
        return false;
    uint8_t v[4];
    if (src_.read(v, 4) < 4) {
        fail();
        return true;
    }
    uint32_t total = get32(v, big) + (uint32_t)(el.s - fr.start) + el.len;
    fr.end = total == kUndefined ? kOpen : fr.start + total;
    src_.seek(el.end);
    return true;
}

void Scanner::check_record_type(const Element &el)
{
    if (!(el.g == 0x0004 && el.e == 0x1430 && el.len != kUndefined))
        return;
    if (el.len > 4096) {
        bad_record_type_ = true; /* far beyond any record type: see below */
        return;
    }
    /* Directory Record Type: DCMTK 3.6.7 "verifies" it while it reads a DICOMDIR record
     * (DcmDirectoryRecord::lookForRecordType -> DcmByteString::verify), and when its last
     * component is longer than a CS value (16) the correction steps an end marker back from
     * npos, erases at a wrapped position and throws std::out_of_range out of the parser, leaking
     * the records it had built. No defined record type is longer than 16 characters: a file
     * with a longer component is refused before DCMTK. */
    uint8_t v[4096];
    size_t got = src_.read(v, el.len);
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
    src_.seek(el.s);
}

/* Transfer Syntax UID, wherever it is in the meta group (DCMTK searches the whole group,
 * sequences included, for the first one; every one found counts). */
void Scanner::note_transfer_syntax(const Element &el)
{
    if (!(el.g == 2 && el.e == 0x10 && stack_.front().kind == Kind::Meta))
        return;
    if (el.len <= 256) {
        uint8_t v[256];
        size_t got = src_.read(v, el.len);
        ts_ |= syntax_bits_of_value(v, got);
        src_.seek(el.s);
    } else {
        ts_ |= kTsGuess;
    }
    if (el.len == kUndefined || el.vr == Vr::SQ)
        ts_ |= kTsGuess; /* not a string to DCMTK */
}

/* Implicit VR: DCMTK's dictionary gives the VR. */
void Scanner::open_implicit(uint8_t enc, unsigned depth, const Element &el)
{
    if (el.len != kUndefined) {
        peek(depth, enc, el.s, el.len);
        return;
    }
    if (el.pixel_data) {
        push_pixseq(enc);
        return;
    }
    /* A sequence (SQ in the dictionary; unknown tags are read as UN, CP-246: implicit VR little
     * endian, which differs in a big endian data set), or a private pixel sequence: items may be
     * fragments. */
    if (enc & kBig) {
        Frame le;
        le.kind = Kind::Seq;
        le.enc = kImplLE;
        le.frag = true;
        le.depth = depth + 1;
        fork(el.s, &le);
    }
    push_seq(depth, enc, kOpen, true, kNone);
}

void Scanner::open_explicit(uint8_t enc, unsigned depth, const Element &el)
{
    const bool undefined = el.len == kUndefined;
    switch (el.vr) {
    case Vr::SQ:
        push_seq(depth, enc, el.end, false, kNone);
        return;
    case Vr::UN:
        if (undefined)
            push_seq(depth, kImplLE, kOpen, false, kNone);
        else
            peek(depth, kImplLE, el.s, el.len); /* dcmEnableUnknownVRConversion: SQ if the
                                                   dictionary says so, read as implicit LE */
        return;
    case Vr::Future:
        if (undefined)
            push_seq(depth, kImplLE, kOpen, false, kNone);
        else
            src_.seek(el.end);
        return;
    case Vr::OBOW:
        if (!undefined)
            src_.seek(el.end);
        else if (el.pixel_data)
            push_pixseq(enc);
        else /* an error to DCMTK, or a private pixel sequence, or (with
                dcmConvertUndefinedLengthOBOWtoSQ) a sequence */
            push_seq(depth, enc, kOpen, true, kNone);
        return;
    case Vr::PX:
        if (undefined)
            push_pixseq(enc);
        else
            src_.seek(el.end);
        return;
    case Vr::Long:
        if (undefined) /* not a sequence to DCMTK: counting it costs nothing */
            push_seq(depth, enc, kOpen, true, kNone);
        else
            src_.seek(el.end);
        return;
    case Vr::Short:
        src_.seek(el.end);
        return;
    }
}

} // namespace prescan
} // namespace dcmci

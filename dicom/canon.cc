/*
 * canon.cc - the canonical form of an attribute, hashed: what the protected bytes compare to
 * tell which attributes encryption changed, and what binds the attributes left in clear to the
 * MAC (docs/dicom.md, "Bound attributes").
 *
 * The form is built from values as DCMTK holds them after reading, not from the bytes of the
 * file, so that it does not depend on the transfer syntax, the VR a writer chose between OB and
 * OW or UN and the dictionary's, or the padding of a string: an archive that re-encodes an
 * object losslessly changes none of it. Tag, then for a leaf element its values as DCMTK's
 * normalised string form (numbers in decimal, strings without padding), for OB, OW, OF, OD, OL,
 * OV and UN the value's bytes in little-endian order, for a sequence its number of items
 * and, for each item, the number of elements and each element's form.
 */
#include "internal.h"

#include <openssl/evp.h>

#include <memory>

namespace dcmci {

namespace {

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

void feed(EVP_MD_CTX *c, const void *p, size_t n)
{
    if (n && EVP_DigestUpdate(c, p, n) != 1)
        bug("SHA-256 update failed");
}

void feed_u32(EVP_MD_CTX *c, Uint32 v)
{
    const Uint8 b[4] = {(Uint8)v, (Uint8)(v >> 8), (Uint8)(v >> 16), (Uint8)(v >> 24)};
    feed(c, b, 4);
}

bool is_binary(DcmEVR vr)
{
    switch (vr) {
    case EVR_OB: case EVR_OW: case EVR_OF: case EVR_OD: case EVR_OL: case EVR_OV: case EVR_UN:
    case EVR_ox: case EVR_px: case EVR_lt:
        return true;
    default:
        return false;
    }
}

void feed_element(EVP_MD_CTX *c, DcmElement *el);

/* The value's bytes, little endian whatever the VR's word size (OB, OW, OF, OD, OL, OV, UN). */
void feed_bytes(EVP_MD_CTX *c, DcmElement *el)
{
    const Uint32 n = el->getLength();
    std::vector<Uint8> buf(n);
    if (n && el->getPartialValue(buf.data(), 0, n, nullptr, EBO_LittleEndian).bad())
        fail(DCMC_ERR_FORMAT, "cannot read the value of (%04x,%04x)", el->getTag().getGroup(),
             el->getTag().getElement());
    feed_u32(c, n);
    feed(c, buf.data(), n);
}

/* NOLINTNEXTLINE(misc-no-recursion): one level per sequence; the pre-scan bounds nesting at 64 */
void feed_item(EVP_MD_CTX *c, DcmItem *item)
{
    feed_u32(c, (Uint32)item->card());
    for (DcmElement *el : elements_of(item))
        feed_element(c, el);
}

/* NOLINTNEXTLINE(misc-no-recursion): one level per sequence; the pre-scan bounds nesting at 64 */
void feed_element(EVP_MD_CTX *c, DcmElement *el)
{
    const DcmTag &t = el->getTag();
    feed_u32(c, (Uint32)t.getGroup() << 16 | t.getElement());
    if (el->ident() == EVR_SQ) {
        auto *sq = OFstatic_cast(DcmSequenceOfItems *, el);
        feed_u32(c, 0xFFFFFFFEu); /* a sequence, whatever its items */
        feed_u32(c, (Uint32)sq->card());
        for (unsigned long i = 0; i < sq->card(); i++)
            feed_item(c, sq->getItem(i));
        return;
    }
    if (is_binary(el->ident())) {
        feed_bytes(c, el);
        return;
    }
    OFString v;
    if (el->getOFStringArray(v, OFTrue).bad())
        v.clear(); /* nothing DCMTK can render: only the tag counts */
    feed_u32(c, (Uint32)v.size());
    feed(c, v.data(), v.size());
}

} // namespace

void element_digest(DcmElement *el, Uint8 out[32])
{
    MdCtx c(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    if (!c || EVP_DigestInit_ex(c.get(), EVP_sha256(), nullptr) != 1)
        fail(DCMC_ERR_NOMEM, "cannot start SHA-256");
    parsing("an attribute's value", [&] { feed_element(c.get(), el); });
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(c.get(), out, &n) != 1 || n != 32)
        bug("SHA-256 final failed");
}

} // namespace dcmci

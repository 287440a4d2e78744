/*
 * pixels.cc - native pixel data to and from the cipher's frame buffers: sizes checked against
 * the bytes really there before anything is allocated, 1-bit frames unpacked and packed, and
 * whatever the element holds after the frames kept as the tail (docs/dicom.md).
 */
#include "internal.h"

#include <algorithm>
#include <cstring>

namespace dcmci {

size_t image_bytes(const dcmc_layout &l, Uint32 n)
{
    size_t fb = 0, total = 0;
    if (dcmc_layout_frame_bytes(&l, &fb) != DCMC_OK || fb == 0 ||
        __builtin_mul_overflow(fb, (size_t)n, &total))
        fail(DCMC_ERR_UNSUPPORTED, "%u frames of %ux%u pixels do not fit in memory", (unsigned)n,
             l.cols, l.rows);
    return total;
}

void Pixels::reset(const dcmc_layout &l, Uint32 n)
{
    layout = l;
    frames = n;
    dcmc_layout_frame_bytes(&l, &frame_bytes);
    data.assign(image_bytes(l, n), 0);
    tail.clear();
    has_tail = false;
}

namespace {

/* Where the tail of `frames` frames of layout `l` starts, and how long the pixel data element is
 * when it holds nothing else (frames, then zero bits to a byte boundary, then a pad byte to an
 * even length). */
void tail_geometry(const dcmc_layout &l, Uint32 frames, size_t fb, size_t *start, size_t *plain_len)
{
    size_t packed;
    if (l.bits_allocated == 1) {
        const unsigned long long bits = (unsigned long long)l.rows * l.cols * l.samples * frames;
        *start = (size_t)(bits / 8);
        packed = (size_t)((bits + 7) / 8);
    } else {
        *start = packed = (size_t)frames * fb;
    }
    *plain_len = packed + (packed % 2);
}

/* The declared geometry is checked against the bytes really there before any room is made for
 * it: a small file must not cost gigabytes. */
void check_length(Uint32 len, const dcmc_layout &l, Uint32 frames, dcmc_status short_status)
{
    if (l.bits_allocated == 1) {
        const unsigned long long need_bits =
            (unsigned long long)l.rows * l.cols * l.samples * frames;
        if ((unsigned long long)len * 8 < need_bits)
            fail(short_status, "pixel data holds %u bytes, the image needs %llu bits", len,
                 need_bits);
    } else {
        const size_t need = image_bytes(l, frames);
        if ((unsigned long long)len < (unsigned long long)need)
            fail(short_status, "pixel data holds %u bytes, %u frames need %llu", len,
                 (unsigned)frames, (unsigned long long)need);
    }
}

/* The value of the pixel data element: only now is it read (DCMTK loads large values lazily,
 * sized by their length), inside the parse boundary. */
const Uint8 *pixel_value(DcmElement *el, Uint32 len)
{
    const Uint8 *bytes = nullptr;
    const bool ok = parsing("the pixel data", [&] {
        if (el->getVR() == EVR_OW) {
            Uint16 *w = nullptr;
            if (el->getUint16Array(w).bad() || (!w && len))
                return false;
            bytes = reinterpret_cast<const Uint8 *>(w);
            return true;
        }
        Uint8 *b = nullptr;
        if (el->getUint8Array(b).bad() || (!b && len))
            return false;
        bytes = b;
        return true;
    });
    if (!ok)
        fail(DCMC_ERR_FORMAT, "pixel data cannot be read");
    return bytes;
}

/* Keep what follows the frames as the tail unless it is what DICOM's rules put there. */
void keep_tail(const Uint8 *bytes, Uint32 len, Pixels &px)
{
    const dcmc_layout &l = px.layout;
    const size_t L = (size_t)l.rows * l.cols * l.samples;
    size_t start, plain_len;
    tail_geometry(l, px.frames, px.frame_bytes, &start, &plain_len);
    std::vector<Uint8> tail(bytes + start, bytes + len);
    if (l.bits_allocated == 1 && !tail.empty()) /* the last frame's own bits are not tail */
        tail[0] &= (Uint8)(0xFFu << ((L * (unsigned long long)px.frames) % 8));
    const bool plain = len == plain_len &&
                       std::all_of(tail.begin(), tail.end(), [](Uint8 v) { return v == 0; });
    if (!plain) {
        px.tail.swap(tail);
        px.has_tail = true;
    }
}

} // namespace

/* Native pixel bytes of the (already decoded) dataset, frames byte-aligned. Pixel data shorter
 * than the frames need fails with `short_status` (truncated input; an integrity failure for an
 * encrypted object, whose header the geometry comes from), before any room is allocated. */
void native_bytes(DcmDataset *ds, const dcmc_layout &l, Uint32 frames, Pixels &px,
                  dcmc_status short_status)
{
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el)
        fail(DCMC_ERR_FORMAT, "pixel data cannot be read");
    const Uint32 len = el->getLength();
    const size_t L = (size_t)l.rows * l.cols * l.samples;
    if (dcmc_layout_check(&l) != DCMC_OK)
        fail(DCMC_ERR_UNSUPPORTED, "unsupported pixel layout");
    check_length(len, l, frames, short_status);
    const Uint8 *bytes = pixel_value(el, len);
    px.reset(l, frames);
    const size_t fb = px.frame_bytes;
    if (l.bits_allocated == 1) {
        /* Frames of a 1-bit object follow each other bit after bit (PS3.5 8.1.1). */
        for (Uint32 f = 0; f < frames; f++)
            for (size_t j = 0; j < L; j++) {
                unsigned long long bit = (unsigned long long)f * L + j;
                if ((bytes[bit / 8] >> (bit % 8)) & 1)
                    px.data[f * fb + j / 8] |= (Uint8)(1u << (j % 8));
            }
    } else {
        memcpy(px.data.data(), bytes, (size_t)frames * fb);
    }
    keep_tail(bytes, len, px);
}

/* Replace the pixel data element with native bytes (frames packed as the layout says), then
 * `tail` (the original's, on decryption) or, without one, a zero pad byte to an even length. */
void put_native(DcmDataset *ds, const Pixels &px, const std::vector<Uint8> *tail)
{
    const dcmc_layout &l = px.layout;
    std::vector<Uint8> out;
    if (l.bits_allocated == 1) {
        const size_t L = (size_t)l.rows * l.cols * l.samples;
        out.assign(((unsigned long long)L * px.frames + 7) / 8, 0);
        for (Uint32 f = 0; f < px.frames; f++)
            for (size_t j = 0; j < L; j++)
                if ((px.data[f * px.frame_bytes + j / 8] >> (j % 8)) & 1) {
                    unsigned long long bit = (unsigned long long)f * L + j;
                    out[bit / 8] |= (Uint8)(1u << (bit % 8));
                }
    } else {
        out = px.data;
    }
    if (tail) {
        size_t start, plain_len;
        tail_geometry(l, px.frames, px.frame_bytes, &start, &plain_len);
        if (out.size() < start + tail->size())
            out.resize(start + tail->size(), 0);
        for (size_t i = 0; i < tail->size(); i++)
            out[start + i] |= (*tail)[i];
    }
    if (out.size() % 2)
        out.push_back(0); /* DICOM values have even length */
    OFCondition c;
    ds->findAndDeleteElement(DCM_PixelData);
    if (l.bits_allocated <= 8)
        c = ds->putAndInsertUint8Array(DCM_PixelData, out.data(), (unsigned long)out.size());
    else
        c = ds->putAndInsertUint16Array(DCM_PixelData, reinterpret_cast<const Uint16 *>(out.data()),
                                        (unsigned long)(out.size() / 2));
    if (c.bad())
        fail(DCMC_ERR_NOMEM, "cannot store pixel data: %s", c.text());
}

} // namespace dcmci

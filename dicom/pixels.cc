/*
 * pixels.cc - native pixel data to and from the cipher's frame buffers: sizes checked against
 * the bytes really there before anything is allocated, 1-bit frames unpacked and packed, and
 * whatever the element holds after the frames kept as the tail (docs/dicom.md); and for large
 * objects, the same pixel data read a few frames at a time (streaming).
 */
#include "internal.h"

#include <algorithm>
#include <atomic>
#include <cstring>

namespace dcmci {

namespace {

/* Below this many bytes of frames an object is held in memory whole: streaming costs a second
 * read of the input (encryption) or of the cipher frames (decryption) and a temporary file,
 * which only pays where the memory would hurt. */
const uint64_t kStreamMin = 32u << 20;

/* The tests' switch (dcmci_dicom_stream_mode): 0 by size, 1 never, 2 whenever possible. */
std::atomic<int> g_stream_mode{0};
/* Whether the last operation of this thread streamed, for the tests. */
thread_local bool t_streamed = false;

} // namespace

bool stream_allowed()
{
    return g_stream_mode.load(std::memory_order_relaxed) != 1;
}

bool stream_worth(uint64_t bytes)
{
    const int mode = g_stream_mode.load(std::memory_order_relaxed);
    return mode == 2 || (mode == 0 && bytes >= kStreamMin);
}

void note_streamed(bool streamed)
{
    t_streamed = streamed;
}

bool streamable_input(const Loaded &L)
{
    const E_TransferSyntax t = DcmXfer(L.ts_uid.c_str()).getXfer();
    const E_TransferSyntax read = L.ds->getOriginalXfer();
    auto le = [](E_TransferSyntax x) {
        return x == EXS_LittleEndianExplicit || x == EXS_LittleEndianImplicit;
    };
    return le(t) && le(read) && !pixel_sequence(L.ds);
}

size_t image_bytes(const dcmc_layout &l, Uint32 n)
{
    size_t fb = 0, total = 0;
    if (dcmc_layout_frame_bytes(&l, &fb) != DCMC_OK || fb == 0 ||
        __builtin_mul_overflow(fb, (size_t)n, &total))
        fail(DCMC_ERR_UNSUPPORTED, "%u frames of %ux%u pixels do not fit in memory", (unsigned)n,
             l.cols, l.rows);
    return total;
}

void Pixels::describe(const dcmc_layout &l, Uint32 n)
{
    layout = l;
    frames = n;
    dcmc_layout_frame_bytes(&l, &frame_bytes);
    data.clear();
    tail.clear();
    has_tail = false;
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

/* Keep what follows the frames (`tail`, from the start tail_geometry gives; the element is
 * `len` bytes long) as the tail unless it is what DICOM's rules put there. */
void keep_tail(std::vector<Uint8> tail, Uint32 len, Pixels &px)
{
    const dcmc_layout &l = px.layout;
    const size_t L = (size_t)l.rows * l.cols * l.samples;
    size_t start, plain_len;
    tail_geometry(l, px.frames, px.frame_bytes, &start, &plain_len);
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

/* The pixel data element, whose length must cover the frames: shorter fails with `short_status`
 * (truncated input; an integrity failure for an encrypted object, whose header the geometry
 * comes from), before any room is allocated or any byte read. */
DcmElement *native_element(DcmDataset *ds, const dcmc_layout &l, Uint32 frames,
                           dcmc_status short_status)
{
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el)
        fail(DCMC_ERR_FORMAT, "pixel data cannot be read");
    if (dcmc_layout_check(&l) != DCMC_OK)
        fail(DCMC_ERR_UNSUPPORTED, "unsupported pixel layout");
    check_length(el->getLength(), l, frames, short_status);
    return el;
}

void native_bytes(DcmDataset *ds, const dcmc_layout &l, Uint32 frames, Pixels &px,
                  dcmc_status short_status)
{
    DcmElement *el = native_element(ds, l, frames, short_status);
    const Uint32 len = el->getLength();
    const size_t L = (size_t)l.rows * l.cols * l.samples;
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
    size_t start, plain_len;
    tail_geometry(l, frames, fb, &start, &plain_len);
    keep_tail(std::vector<Uint8>(bytes + start, bytes + len), len, px);
}

/* ---- the same, a few frames at a time ------------------------------------------------------ */

void PixelReader::read(size_t offset, size_t n, Uint8 *out)
{
    /* DCMTK reads the range straight from the input file when it left the value there, and
     * keeps the file open in cache_ from one range to the next. */
    const bool ok = n == 0 || parsing("the pixel data", [&] {
        return offset <= el_->getLength() && n <= el_->getLength() - offset &&
               el_->getPartialValue(out, (Uint32)offset, (Uint32)n, &cache_, EBO_LittleEndian)
                   .good();
    });
    if (!ok)
        fail(DCMC_ERR_FORMAT, "pixel data cannot be read");
}

Uint32 stream_batch(uint32_t workers, size_t frame_bytes, Uint32 frames)
{
    const size_t target = (size_t)16 << 20;
    const size_t w = workers ? workers : 1;
    const size_t per =
        frame_bytes >= target ? w : w * std::max<size_t>(1, target / frame_bytes / w);
    return (Uint32)std::min<size_t>(per, frames);
}

void stream_tail(PixelReader &rd, Uint32 len, Pixels &px, bool need_bytes)
{
    size_t start, plain_len;
    tail_geometry(px.layout, px.frames, px.frame_bytes, &start, &plain_len);
    if (!need_bytes && len != plain_len) {
        px.has_tail = true; /* more than a pad byte: no need to read what */
        return;
    }
    std::vector<Uint8> tail(len - start);
    rd.read(start, tail.size(), tail.data());
    keep_tail(std::move(tail), len, px);
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

/* The tests' switch and probe (tests/test_dicom.c): internal, not exported. */
extern "C" void dcmci_dicom_stream_mode(int mode)
{
    dcmci::g_stream_mode.store(mode, std::memory_order_relaxed);
}

extern "C" int dcmci_dicom_streamed(void)
{
    return dcmci::t_streamed ? 1 : 0;
}

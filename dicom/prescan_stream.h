/*
 * prescan_stream.h - the bytes the prescan (prescan.cc) walks: the raw file, or the inflated
 * data set of a deflated file, behind one reader that seeks forward and back in either, with
 * the work it has done measured so that crafted files cannot make it unbounded.
 */
#ifndef DCMCRYPT_PRESCAN_STREAM_H
#define DCMCRYPT_PRESCAN_STREAM_H

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>

#include <zlib.h>

namespace dcmci {
namespace prescan {

constexpr uint64_t kNone = UINT64_MAX; /* Frame::alt / Branch::zbase: none */

constexpr size_t kChunk = 65536;
constexpr size_t kSmallChunk = 4096; /* after a jump: one page is enough for a header */

inline uint16_t get16(const uint8_t *p, bool big)
{
    return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

inline uint32_t get32(const uint8_t *p, bool big)
{
    return big ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
               : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

inline uint64_t add_sat(uint64_t a, uint64_t b)
{
    return b > UINT64_MAX - a ? UINT64_MAX : a + b;
}

/* Positions are file offsets in raw mode, offsets in the inflated stream in deflate mode. Reads
 * are short at the end of the data (or of what inflates); a real I/O error sets error(). Going
 * back in a deflate stream restarts the inflation (counted: restarts()). */
class Source {
public:
    explicit Source(FILE *f) : f_(f) {}
    ~Source();
    Source(const Source &) = delete;
    Source &operator=(const Source &) = delete;

    /* zbase: kNone for the raw file, else the file offset where the deflate stream starts. */
    void set_mode(uint64_t zbase);
    uint64_t zbase() const { return zbase_; }
    uint64_t pos() const { return pos_; }
    void seek(uint64_t p) { pos_ = p; }
    void skip(uint64_t n) { pos_ = add_sat(pos_, n); }
    int error() const { return err_; }
    unsigned restarts() const { return restarts_; }
    /* Highest offsets reached in both modes: the measure of the work allowed. */
    uint64_t reached() const { return add_sat(hi_raw_, hi_z_); }
    /* Highest offset reached in a deflated data set: about its inflated size once scanned. */
    uint64_t inflated() const { return hi_z_; }

    size_t read(uint8_t *dst, size_t n);

private:
    bool take_from(const uint8_t *win, uint64_t off, uint64_t len, uint8_t *dst, size_t n,
                   size_t &got);
    size_t read_raw(uint8_t *dst, size_t n);
    void z_restart();
    bool z_more();
    size_t read_z(uint8_t *dst, size_t n);

    FILE *f_;
    uint64_t pos_ = 0;
    uint64_t zbase_ = kNone;
    int err_ = 0;
    uint64_t hi_raw_ = 0, hi_z_ = 0;
    /* raw mode */
    /* Zeroed once (192 KB per pre-scan, microseconds) so no byte is ever read uninitialised. */
    uint8_t buf_[kChunk] = {};
    uint64_t buf_off_ = 0;
    size_t buf_len_ = 0;
    /* deflate mode */
    z_stream z_{};
    bool z_ready_ = false, z_ended_ = false, z_padded_ = false;
    unsigned restarts_ = 0;
    uint8_t in_[kChunk] = {};
    uint8_t out_[kChunk] = {};
    uint64_t out_off_ = 0;
    size_t out_len_ = 0;
};

} // namespace prescan
} // namespace dcmci

#endif

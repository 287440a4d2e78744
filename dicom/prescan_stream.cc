/*
 * prescan_stream.cc - the bytes the prescan walks (prescan_stream.h): the raw file read in
 * chunks, or the inflated data set of a deflated file, inflated and discarded to skip forward
 * and restarted to go back.
 */
#include "prescan_stream.h"

#include <cerrno>
#include <cstring>

namespace dcmci {
namespace prescan {

Source::~Source()
{
    if (z_ready_)
        inflateEnd(&z_);
}

/* zbase: kNone for the raw file, else the file offset where the deflate stream starts. */
void Source::set_mode(uint64_t zbase)
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

size_t Source::read(uint8_t *dst, size_t n)
{
    size_t got = zbase_ == kNone ? read_raw(dst, n) : read_z(dst, n);
    uint64_t &hi = zbase_ == kNone ? hi_raw_ : hi_z_;
    if (got > 0 && pos_ > hi)
        hi = pos_;
    return got;
}

/* Copy what a window (`len` bytes of the stream from `off`, in `win`) holds at pos_ into
 * dst[got..n), advancing both; false if pos_ is not inside the window. */
bool Source::take_from(const uint8_t *win, uint64_t off, uint64_t len, uint8_t *dst, size_t n,
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

size_t Source::read_raw(uint8_t *dst, size_t n)
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

void Source::z_restart()
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
bool Source::z_more()
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
        /* The stream ends at its end, on a memory error, or corrupt (Z_DATA_ERROR,
         * Z_NEED_DICT); Z_BUF_ERROR with no input left only asks for more. */
        if (rc == Z_MEM_ERROR)
            err_ = ENOMEM;
        if (rc != Z_OK && !(rc == Z_BUF_ERROR && z_.avail_in == 0))
            z_ended_ = true;
    }
    out_len_ = kChunk - z_.avail_out;
    return out_len_ > 0;
}

size_t Source::read_z(uint8_t *dst, size_t n)
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

} // namespace prescan
} // namespace dcmci

/*
 * opj.h - OpenJPEG's objects for one codestream, shared by the decoder (j2k.cc) and the encoder
 * (j2k_encode.cc): codec, stream and image, released however the owner leaves (a Failure thrown
 * halfway included).
 */
#ifndef DCMCRYPT_DICOM_OPJ_H
#define DCMCRYPT_DICOM_OPJ_H

#include <openjpeg.h>

namespace dcmci {

class OpjSession {
public:
    OpjSession() = default;
    ~OpjSession()
    {
        if (img_)
            opj_image_destroy(img_);
        if (stream_)
            opj_stream_destroy(stream_);
        if (codec_)
            opj_destroy_codec(codec_);
    }
    OpjSession(const OpjSession &) = delete;
    OpjSession &operator=(const OpjSession &) = delete;

protected:
    opj_codec_t *codec_ = nullptr;
    opj_stream_t *stream_ = nullptr;
    opj_image_t *img_ = nullptr;
};

/* OpenJPEG's message handler for what nobody reads: library code never prints. */
inline void opj_quiet(const char *, void *) {}

} // namespace dcmci

#endif

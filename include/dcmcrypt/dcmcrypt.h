/*
 * dcmcrypt.h - the dcmcrypt cipher library: AT-ResNet-CM pixel encryption, exact round trip.
 *
 * This header is the manual. A frame of pixels is described by a dcmc_layout (any DICOM pixel
 * layout: 1/8/16/32 bits allocated, any bits stored, signed or not, 1 or 3 samples, planar 0/1).
 * dcmc_image_encrypt() encrypts every frame of an image in place, fills a dcmc_header (the
 * container-neutral metadata a container such as DICOM must store) and returns an encrypted,
 * authenticated payload (the caller's protected bytes plus any bits above High Bit).
 * dcmc_image_decrypt() checks the key, then the MAC, and only then writes plaintext. The
 * dcmc_image_stream_* functions do the same a few frames at a time, for large images.
 *
 * Rules: every function returns a dcmc_status and never prints or exits; outputs are set to safe
 * values on entry; sizes are size_t and overflow-checked; anything that held a key is wiped.
 * The cipher itself is specified in docs/format.md.
 *
 * API and ABI: the installed headers are dcmcrypt.h (cipher, keys, images), io.h (PNG/TIFF),
 * metrics.h and dicom.h; nothing else is public (research baselines and test hooks live in the
 * in-tree research.h and internal headers, with the prefix dcmci_). Within one soname version
 * (DCMC_SOVERSION, libdcmcrypt.so.N) functions are only added, enum values only appended and
 * status values never renumbered. Public structs (dcmc_layout, dcmc_key, dcmc_kdf, dcmc_preset,
 * dcmc_header, dcmc_options, dcmc_frame_timing, dcmc_raster, dcmc_dicom_*) are plain data the
 * caller allocates: any change to their size or fields bumps the soname, so a program built
 * against one soname never passes a struct of the wrong size. dcmc_frame_cipher is opaque.
 * Before 1.0 the soname is 0.MINOR: every minor release may change the ABI (CHANGELOG.md
 * says what changed). The encrypted format is versioned separately (DCMC_FORMAT_VERSION):
 * every release reads every format version any release wrote.
 */
#ifndef DCMCRYPT_H
#define DCMCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include "dcmcrypt/export.h"
#include "dcmcrypt/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DCMC_FORMAT_VERSION 1u

/* Append-only: values are stable and may appear in logs and reports. */
typedef enum dcmc_status {
    DCMC_OK = 0,
    DCMC_ERR_ARG = 1,            /* a NULL pointer or an out-of-range argument */
    DCMC_ERR_NOMEM = 2,          /* allocation failed */
    DCMC_ERR_OVERFLOW = 3,       /* a size computation would overflow */
    DCMC_ERR_LAYOUT = 4,         /* the pixel layout is inconsistent or unsupported */
    DCMC_ERR_IO = 5,             /* a file could not be read or written */
    DCMC_ERR_FORMAT = 6,         /* malformed input (image file, header, key file) */
    DCMC_ERR_UNSUPPORTED = 7,    /* well-formed but not supported (format version, image type) */
    DCMC_ERR_KEY = 8,            /* malformed key material or empty passphrase */
    DCMC_ERR_WRONG_KEY = 9,      /* the key check value does not match: wrong key or passphrase */
    DCMC_ERR_INTEGRITY = 10,     /* the MAC does not match: data tampered or damaged */
    DCMC_ERR_CRYPTO = 11,        /* the crypto library failed */
    DCMC_ERR_PRESET = 12,        /* unknown preset name or id */
    DCMC_ERR_TRUNCATED = 13,     /* input shorter than its description says */
    DCMC_ERR_WRITE = 14,         /* the output could not be written (full disk, permissions...) */
    DCMC_ERR_NOT_IMAGE = 15,     /* a valid object without pixel data (SR, presentation state...) */
    DCMC_ERR_NOT_ENCRYPTED = 16, /* asked to decrypt an object dcmcrypt did not encrypt */
    DCMC_ERR_ALREADY_ENCRYPTED = 17, /* asked to encrypt an object that is already encrypted */
    DCMC_ERR_KDF_COST = 18, /* legal scrypt parameters whose cost exceeds the caller's limit */
    DCMC_ERR_INTERNAL = 19, /* a bug in dcmcrypt itself (never caused by input): please report */
} dcmc_status;

/* A short English description of a status; never NULL. */
DCMC_API const char *dcmc_status_str(dcmc_status s);

/* ---- Pixel layout --------------------------------------------------------------------------- */

/*
 * One frame is rows*cols*samples pixel words, little-endian, stored as DICOM stores them:
 * planar 0 = R1G1B1R2G2B2..., planar 1 = RRR..GGG..BBB.... With bits_allocated 1 the words are
 * single bits packed LSB first (bit k of the frame is bit k%8 of byte k/8). The stored value of a
 * word occupies bits [high_bit-bits_stored+1, high_bit].
 */
typedef struct dcmc_layout {
    uint32_t rows;
    uint32_t cols;
    uint32_t samples;        /* 1 or 3 */
    uint32_t planar;         /* 0 or 1 (only meaningful with 3 samples) */
    uint32_t bits_allocated; /* 1, 8, 16 or 32 */
    uint32_t bits_stored;    /* 1..bits_allocated */
    uint32_t high_bit;       /* bits_stored-1..bits_allocated-1 */
    uint32_t is_signed;      /* 0 or 1 (pixel representation) */
} dcmc_layout;

/* DCMC_OK if the layout is one this library handles; DCMC_ERR_LAYOUT or DCMC_ERR_OVERFLOW if not. */
DCMC_API DCMC_NONNULL(1) dcmc_status dcmc_layout_check(const dcmc_layout *layout);
/* Bytes of one frame (bits_allocated 1: rounded up to whole bytes). */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status
    dcmc_layout_frame_bytes(const dcmc_layout *layout, size_t *bytes);

/* ---- Keys ----------------------------------------------------------------------------------- */

#define DCMC_KEY_BYTES 32u
#define DCMC_SALT_BYTES 16u
#define DCMC_NONCE_BYTES 16u
#define DCMC_KCV_BYTES 8u
#define DCMC_MAC_BYTES 32u

typedef struct dcmc_key {
    uint8_t bytes[DCMC_KEY_BYTES];
} dcmc_key;

typedef enum dcmc_kdf_id { DCMC_KDF_NONE = 0, DCMC_KDF_SCRYPT = 1 } dcmc_kdf_id;

/* How the master key was obtained; recorded in every encrypted object. */
typedef struct dcmc_kdf {
    uint8_t id;     /* dcmc_kdf_id */
    uint8_t log2_n; /* scrypt N = 2^log2_n */
    uint8_t r, p;   /* scrypt r and p */
    uint8_t salt[DCMC_SALT_BYTES];
} dcmc_kdf;

#define DCMC_SCRYPT_LOG2N_DEFAULT 17u
#define DCMC_SCRYPT_R_DEFAULT 8u
#define DCMC_SCRYPT_P_DEFAULT 1u
/* The header's scrypt parameters are not authenticated until the key is known, so a reader bounds
 * their cost before deriving: 128*r*N*p bytes (scrypt's memory times its sequential lanes, so it
 * bounds time too). The defaults cost 128 MiB; the default limit is twice that. */
#define DCMC_SCRYPT_MAX_MIB_DEFAULT 256u

/* Wipe a key (or any secret) in a way the compiler cannot remove. */
DCMC_API void dcmc_wipe(void *p, size_t n);
/* Parse a key: exactly 32 raw bytes, or 64 hex characters optionally followed by whitespace. */
DCMC_API DCMC_NODISCARD dcmc_status dcmc_key_parse(const uint8_t *data, size_t len, dcmc_key *key);
/* Read a key file (see dcmc_key_parse). */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 2) dcmc_status
    dcmc_key_read_file(const char *path, dcmc_key *key);
/* Fresh random key from the OS CSPRNG. */
DCMC_API DCMC_NONNULL(1) dcmc_status dcmc_key_generate(dcmc_key *key);
/* Write key as 64 hex characters and a newline, file mode 0600, refusing to overwrite. */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status dcmc_key_write_file(const char *path, const dcmc_key *key);
/* Fill kdf with scrypt defaults and a fresh random salt. */
DCMC_API DCMC_NONNULL(1) dcmc_status dcmc_kdf_new_scrypt(dcmc_kdf *kdf);
/* Derive the master key from a passphrase with the recorded KDF (scrypt). Empty passphrase:
 * DCMC_ERR_KEY; a cost above DCMC_SCRYPT_MAX_MIB_DEFAULT: DCMC_ERR_KDF_COST, before any work. */
DCMC_API DCMC_NODISCARD dcmc_status dcmc_key_from_passphrase(const char *pass, size_t pass_len,
                                                             const dcmc_kdf *kdf, dcmc_key *key);
/* The same with the caller's cost limit in MiB (see DCMC_SCRYPT_MAX_MIB_DEFAULT). */
DCMC_API DCMC_NODISCARD dcmc_status dcmc_key_from_passphrase_max(const char *pass, size_t pass_len,
                                                                 const dcmc_kdf *kdf,
                                                                 uint64_t max_mib, dcmc_key *key);
/* The cost of deriving a key with kdf, in MiB (rounded up): 128*r*N*p bytes; 0 for a key file. */
DCMC_API uint64_t dcmc_kdf_cost_mib(const dcmc_kdf *kdf);

/* ---- Presets -------------------------------------------------------------------------------- */

typedef enum dcmc_preset_id {
    DCMC_PRESET_AT_RESNET_CM = 1, /* ResNet with channel and spatial attention (default) */
    DCMC_PRESET_RESNET_CM = 2,    /* the same network without attention */
} dcmc_preset_id;

/* Everything that defines the network and the coupling; recorded in the header. */
typedef struct dcmc_preset {
    uint8_t id;           /* dcmc_preset_id */
    uint8_t channels;     /* feature channels (16) */
    uint8_t blocks;       /* residual blocks per network (2) */
    uint8_t rounds;       /* coupling rounds; each runs two networks (2) */
    uint8_t attention;    /* 1 = channel + spatial attention in every block */
    uint8_t ca_reduction; /* channel-attention MLP reduction (4) */
    uint8_t sa_kernel;    /* spatial-attention kernel size (7) */
    uint8_t shift_stem;   /* requantisation shifts, see docs/format.md */
    uint8_t shift_conv;
    uint8_t shift_ca;
    uint8_t shift_sa;
} dcmc_preset;

DCMC_API dcmc_status dcmc_preset_by_name(const char *name, dcmc_preset *out);
DCMC_API dcmc_status dcmc_preset_by_id(uint8_t id, dcmc_preset *out);
DCMC_API const char *dcmc_preset_name(uint8_t id); /* "at-resnet-cm", "resnet-cm" or "unknown" */
/* Validate recorded preset parameters (they come from untrusted files). */
DCMC_API dcmc_status dcmc_preset_check(const dcmc_preset *p);

/* ---- Header: the container-neutral metadata ------------------------------------------------- */

#define DCMC_FLAG_STANDARD_LAYER 0x01u /* ChaCha20 combined with the chaos keystream (default) */

typedef struct dcmc_header {
    uint32_t version; /* DCMC_FORMAT_VERSION */
    uint32_t flags;   /* DCMC_FLAG_* */
    dcmc_preset preset;
    dcmc_kdf kdf;
    uint8_t nonce[DCMC_NONCE_BYTES];
    uint8_t kcv[DCMC_KCV_BYTES];
    dcmc_layout layout;
    uint32_t frames;
    uint64_t payload_bytes; /* length of the encrypted payload */
    uint8_t mac[DCMC_MAC_BYTES];
} dcmc_header;

#define DCMC_HEADER_BYTES 128u

/* Serialise to exactly DCMC_HEADER_BYTES bytes (docs/format.md, "Header"). */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status
    dcmc_header_write(const dcmc_header *h, uint8_t out[DCMC_HEADER_BYTES]);
/* Parse and validate untrusted bytes. */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 3) dcmc_status
    dcmc_header_read(const uint8_t *in, size_t len, dcmc_header *h);

/* ---- Options -------------------------------------------------------------------------------- */

typedef struct dcmc_options {
    dcmc_preset preset;   /* from dcmc_preset_by_name(); zeroed = default preset */
    uint32_t flags;       /* DCMC_FLAG_*; dcmc_options_default() sets DCMC_FLAG_STANDARD_LAYER */
    int threads;          /* 0 = OpenMP default (all cores, OMP_NUM_THREADS respected) */
    const uint8_t *nonce; /* NULL = fresh random nonce (always, except known-answer tests) */
} dcmc_options;

DCMC_API DCMC_NONNULL(1) void dcmc_options_default(dcmc_options *opt);

/* ---- Frame-level cipher --------------------------------------------------------------------- */

/*
 * A frame cipher holds the per-file key schedule and the network plan (all buffers) for one
 * layout; create it once per image, use it for every frame. Not thread-safe: one frame at a time
 * (each call is itself parallel over `threads`).
 */
typedef struct dcmc_frame_cipher dcmc_frame_cipher;

DCMC_API DCMC_NONNULL(1, 2, 3) dcmc_status
    dcmc_frame_cipher_new(dcmc_frame_cipher **out, const dcmc_key *key, const dcmc_header *hdr,
                          int threads);
DCMC_API void dcmc_frame_cipher_free(dcmc_frame_cipher *fc);
/* Encrypt/decrypt one frame of hdr->layout; in and out may be the same buffer. Bits outside the
 * stored field are written in canonical form (zero, or the sign extension for signed pixels). */
DCMC_API dcmc_status dcmc_frame_encrypt(dcmc_frame_cipher *fc, uint32_t index, const uint8_t *in,
                                        uint8_t *out, size_t bytes);
DCMC_API DCMC_NODISCARD dcmc_status dcmc_frame_decrypt(dcmc_frame_cipher *fc, uint32_t index,
                                                       const uint8_t *in, uint8_t *out,
                                                       size_t bytes);

/* Timings of the last frame call, nanoseconds, for the benchmark. */
typedef struct dcmc_frame_timing {
    uint64_t network_ns, keystream_ns, diffusion_ns;
} dcmc_frame_timing;
DCMC_API void dcmc_frame_cipher_timing(const dcmc_frame_cipher *fc, dcmc_frame_timing *t);

/* ---- Image-level cipher --------------------------------------------------------------------- */

/*
 * Encrypt `frames` frames in place (pixels holds frames * frame_bytes bytes). attrs (may be NULL
 * when attrs_len is 0) are the caller's protected bytes (e.g. original DICOM attributes); they
 * travel encrypted, together with any non-canonical bits outside the stored field, in *payload
 * (allocated here, release with dcmc_free). hdr receives everything a container must store.
 * kdf: how key was made (NULL = raw key).
 */
DCMC_API dcmc_status dcmc_image_encrypt(const dcmc_key *key, const dcmc_kdf *kdf,
                                        const dcmc_options *opt, const dcmc_layout *layout,
                                        uint32_t frames, uint8_t *pixels, size_t pixels_len,
                                        const uint8_t *attrs, size_t attrs_len, dcmc_header *hdr,
                                        uint8_t **payload, size_t *payload_len);

/* Check the key (DCMC_ERR_WRONG_KEY), then the MAC (DCMC_ERR_INTEGRITY), then decrypt in place.
 * On any error pixels are untouched. *attrs (allocated here, dcmc_free) gets the protected bytes. */
DCMC_API DCMC_NODISCARD dcmc_status dcmc_image_decrypt(const dcmc_key *key, const dcmc_header *hdr,
                                                       int threads, uint8_t *pixels,
                                                       size_t pixels_len, const uint8_t *payload,
                                                       size_t payload_len, uint8_t **attrs,
                                                       size_t *attrs_len);

/* Only the checks of dcmc_image_decrypt (key check value, then MAC over the encrypted pixels and
 * payload), without decrypting: DCMC_OK when the encrypted image is intact and the key is right.
 * Costs one HMAC pass over the data, for verifying finished outputs. */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 2) dcmc_status
    dcmc_image_verify(const dcmc_key *key, const dcmc_header *hdr, const uint8_t *pixels,
                      size_t pixels_len, const uint8_t *payload, size_t payload_len);

/* The checks of dcmc_image_verify, then only the payload decrypted: *attrs (allocated here,
 * dcmc_free) gets the protected bytes, the pixels stay encrypted. For containers that keep
 * authenticated facts in their protected bytes (the DICOM layer's bound attributes) and must
 * check them without paying for the pixels. */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 2) dcmc_status
    dcmc_image_open_attrs(const dcmc_key *key, const dcmc_header *hdr, const uint8_t *pixels,
                          size_t pixels_len, const uint8_t *payload, size_t payload_len,
                          uint8_t **attrs, size_t *attrs_len);

/* ---- Image-level cipher, frame after frame (streaming) ------------------------------------- */

/*
 * The image cipher above for images that should not be held in memory at once: the frames go
 * through a stream a few at a time, in order, and the result is exactly what dcmc_image_encrypt
 * and dcmc_image_decrypt give (same header, payload, cipher frames and MAC; either side may be
 * streamed). Each call runs its frames on the stream's workers (frames apart, as the whole-image
 * functions do): pass a multiple of dcmc_image_stream_batch() frames per call to keep them all
 * busy (the last call may pass fewer). Any failure ends the stream: later calls return
 * DCMC_ERR_ARG, as do calls out of order. Free it with dcmc_image_stream_free (wiped).
 *
 * Encryption: _encrypt_new (header, key check value, payload), _encrypt for every frame (in
 * place), _encrypt_final (MAC; hdr and *payload as dcmc_image_encrypt returns them). The payload
 * is fixed before the frames arrive, so it cannot carry a residue: a frame with a word that is
 * not canonical (dcmc_frame_is_canonical) is refused with DCMC_ERR_UNSUPPORTED, untouched; such
 * images need dcmc_image_encrypt.
 *
 * Decryption, in two passes over the cipher frames, so that no plaintext exists before the MAC
 * has passed: _decrypt_new (sizes, preset, payload length, key check value: DCMC_ERR_WRONG_KEY),
 * _verify for every frame (only fed to the MAC), _verify_final (MAC: DCMC_ERR_INTEGRITY; then
 * *attrs as dcmc_image_decrypt returns them); then _decrypt for every frame again (in place;
 * each frame is fed to the MAC once more before it is decrypted) and _decrypt_final, which
 * fails with DCMC_ERR_INTEGRITY when the frames of the second pass were not those of the first:
 * the caller must not release what it decrypted before _decrypt_final returned DCMC_OK.
 * A verification without decryption stops after _verify_final.
 */
typedef struct dcmc_image_stream dcmc_image_stream;

DCMC_API DCMC_NODISCARD dcmc_status
    dcmc_image_stream_encrypt_new(dcmc_image_stream **s, const dcmc_key *key, const dcmc_kdf *kdf,
                                  const dcmc_options *opt, const dcmc_layout *layout,
                                  uint32_t frames, const uint8_t *attrs, size_t attrs_len);
/* The next `count` frames (count * frame_bytes bytes, back to back), encrypted in place. */
DCMC_API DCMC_NODISCARD dcmc_status dcmc_image_stream_encrypt(dcmc_image_stream *s,
                                                              uint8_t *frames, uint32_t count);
DCMC_API DCMC_NODISCARD dcmc_status
    dcmc_image_stream_encrypt_final(dcmc_image_stream *s, dcmc_header *hdr, uint8_t **payload,
                                    size_t *payload_len);

DCMC_API DCMC_NODISCARD dcmc_status
    dcmc_image_stream_decrypt_new(dcmc_image_stream **s, const dcmc_key *key,
                                  const dcmc_header *hdr, int threads, const uint8_t *payload,
                                  size_t payload_len);
DCMC_API DCMC_NODISCARD dcmc_status
    dcmc_image_stream_verify(dcmc_image_stream *s, const uint8_t *frames, uint32_t count);
DCMC_API DCMC_NODISCARD dcmc_status
    dcmc_image_stream_verify_final(dcmc_image_stream *s, uint8_t **attrs, size_t *attrs_len);
DCMC_API DCMC_NODISCARD dcmc_status dcmc_image_stream_decrypt(dcmc_image_stream *s,
                                                              uint8_t *frames, uint32_t count);
DCMC_API DCMC_NODISCARD dcmc_status dcmc_image_stream_decrypt_final(dcmc_image_stream *s);

/* Frames per call that keep every worker of the stream busy (at least 1; 0 for NULL). */
DCMC_API uint32_t dcmc_image_stream_batch(const dcmc_image_stream *s);
DCMC_API void dcmc_image_stream_free(dcmc_image_stream *s);

/* 1 when every word of the frame (`bytes` = the layout's frame bytes) is canonical: bits outside
 * the stored field zero or the sign extension, and for bits_allocated 1 the unused bits of the
 * last byte zero; 0 otherwise or on bad arguments. An image whose frames are all canonical
 * needs no residue in its payload (docs/format.md section 10) and can be streamed. */
DCMC_API int dcmc_frame_is_canonical(const dcmc_layout *layout, const uint8_t *frame,
                                     size_t bytes);

/* New UID for an original one: "2.25." and the decimal value of the first 128 bits of
 * HMAC-SHA256(uid_key, uid), so one key maps a study the same way in every file and run.
 * out must hold 65 bytes. */
DCMC_API DCMC_NONNULL(1, 2, 3) dcmc_status
    dcmc_uid_map(const uint8_t uid_key[32], const char *uid, char out[65]);
/* The UID key of a master key (key files): HKDF(K, salt "dcmcrypt/1/uid"). */
DCMC_API DCMC_NONNULL(1, 2) dcmc_status
    dcmc_uid_key_from_key(const dcmc_key *key, uint8_t uid_key[32]);
/* The UID key of a passphrase: scrypt with a fixed, public salt, so that the mapping does not
 * depend on the per-file random salt (same passphrase, same mapping). */
DCMC_API dcmc_status dcmc_uid_key_from_passphrase(const char *pass, size_t pass_len,
                                                  uint8_t uid_key[32]);

/* Only the key check: DCMC_OK or DCMC_ERR_WRONG_KEY. Cheap. */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 2) dcmc_status
    dcmc_key_check(const dcmc_key *key, const dcmc_header *hdr);

/* Release memory returned by the library (wiped first); NULL is a no-op. */
DCMC_API void dcmc_free(void *p, size_t n);

/* ---- Build and run-time facts ---------------------------------------------------------------- */

/* The SIMD path the network uses on this CPU: "avx512-vnni", "avx2" or "scalar". */
DCMC_API const char *dcmc_simd_path(void);
/* Library versions linked in, one line (OpenSSL, OpenMP). */
DCMC_API const char *dcmc_build_info(void);

#ifdef __cplusplus
}
#endif

#endif

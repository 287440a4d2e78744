/*
 * dcmcrypt_dicom.h - DICOM objects in and out (the DCMTK adapter in dicom/, the project's only
 * C++). Loads every transfer syntax DCMTK or OpenJPEG decodes, encrypts every frame with the
 * cipher library, and writes a valid encrypted object; decryption restores the original object.
 *
 * Functions write the path they are given (the tools write a temporary file and rename it); an
 * object of 32 MiB of frames or more is streamed, its frames staged in an unnamed temporary file
 * (O_TMPFILE; where the file system has none, a named one unlinked at once) in the output's
 * directory, which needs room for them. On failure the output file may exist and the caller
 * removes it. `msg` (may be NULL)
 * receives a one-line reason on failure. Nothing here prints or exits; C++ exceptions never
 * cross this header.
 */
#ifndef DCMCRYPT_DICOM_H
#define DCMCRYPT_DICOM_H

#include "dcmcrypt/dcmcrypt.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DCMC_DICOM_MSG 512u

/* What an operation saw, for verbose output and batch reports. */
typedef struct dcmc_dicom_info {
    char transfer_syntax[65];        /* of the input */
    char output_transfer_syntax[65]; /* of what was written */
    char sop_class[65];
    dcmc_layout layout;
    uint32_t frames;
    uint64_t pixel_bytes;
    uint64_t read_ns, cipher_ns, write_ns; /* load + decode, cipher, encode + save */
} dcmc_dicom_info;

/* Options of the PS3.15 Annex E profile (docs/deidentification.md), as bits of
 * dcmc_dicom_options.deid_options. */
#define DCMC_DEID_SAFE_PRIVATE 0x001u          /* Retain Safe Private (113111) */
#define DCMC_DEID_DEVICE 0x004u                /* Retain Device Identity (113109) */
#define DCMC_DEID_INSTITUTION 0x008u           /* Retain Institution Identity (113112) */
#define DCMC_DEID_PATIENT_CHARS 0x010u         /* Retain Patient Characteristics (113108) */
#define DCMC_DEID_FULL_DATES 0x020u            /* Retain Longitudinal Full Dates (113106) */
#define DCMC_DEID_MODIFIED_DATES 0x040u        /* ... with Modified Dates (113107) */
#define DCMC_DEID_CLEAN_DESCRIPTORS 0x080u     /* Clean Descriptors (113105) */
#define DCMC_DEID_CLEAN_STRUCTURED 0x100u      /* Clean Structured Content (113104) */
#define DCMC_DEID_CLEAN_GRAPHICS 0x200u        /* Clean Graphics (113103) */
/* What --deidentify uses unless told otherwise. */
#define DCMC_DEID_DEFAULTS                                                                         \
    (DCMC_DEID_MODIFIED_DATES | DCMC_DEID_PATIENT_CHARS | DCMC_DEID_SAFE_PRIVATE |                  \
     DCMC_DEID_CLEAN_DESCRIPTORS)

/* What the DICOM layer does besides the pixels (zeroed = the default: no de-identification). */
typedef struct dcmc_dicom_options {
    int deidentify;         /* apply PS3.15 Annex E with deid_options */
    unsigned deid_options;  /* DCMC_DEID_* */
    /* X.509 certificates (PEM files) that also receive the Encrypted Attributes Sequence. */
    const char *const *recipients;
    size_t n_recipients;
    /* A passphrase for a CMS password recipient (PBKDF2) of that sequence; NULL: none. */
    const char *password;
    size_t password_len;
    /* How the encrypted object is written (docs/dicom.md, "Transfer syntax of the encrypted
     * object"). NULL or "": explicit VR little endian, which every reader decodes without a
     * pixel codec. "keep": the original's lossless family (RLE, JPEG lossless, JPEG-LS, JPEG 2000,
     * deflate) where that is smaller than native. Or one of the UIDs 1.2.840.10008.1.2.1,
     * .1.2.1.99, .1.2.5, .1.2.4.70, .1.2.4.80, .1.2.4.90, wherever the pixels can be encoded so
     * exactly. Anything else: DCMC_ERR_ARG. Every encoding is decoded again and compared before
     * it is written; where it cannot be used, explicit VR little endian is. */
    const char *transfer_syntax;
} dcmc_dicom_options;

/* Encrypt `in` to `out`. kdf: how key was made (NULL = key file). uid_key: see dcmc_uid_map;
 * it also keys the pseudonyms, the date shift and the Encrypted Attributes Sequence's key.
 * dopt: NULL = no de-identification. */
DCMC_API DCMC_NONNULL(1, 2, 3) dcmc_status
    dcmc_dicom_encrypt(const char *in, const char *out, const dcmc_key *key, const dcmc_kdf *kdf,
                       const uint8_t uid_key[32], const dcmc_options *opt,
                       const dcmc_dicom_options *dopt, dcmc_dicom_info *info, char *msg,
                       size_t msg_len);

/* Read the cipher header of an encrypted object without decrypting (e.g. to learn its KDF salt
 * before asking for a passphrase). DCMC_ERR_NOT_ENCRYPTED if it is not one of ours. */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 2) dcmc_status
    dcmc_dicom_peek(const char *in, dcmc_header *hdr, char *msg, size_t msg_len);

/* Decrypt `in` to `out`: key check, then MAC, then the original object (original transfer
 * syntax re-encoded where lossless and DCMTK can encode it, else explicit VR little endian).
 * Nothing is written before both checks pass. */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 2, 3) dcmc_status
    dcmc_dicom_decrypt(const char *in, const char *out, const dcmc_key *key, int threads,
                       dcmc_dicom_info *info, char *msg, size_t msg_len);

/* Decode an object's pixel data as the encryptor sees it: *pixels (malloc'd, release with
 * dcmc_free) gets info->frames frames of info->layout, frames byte-aligned. For the evaluation
 * suite and the tests. */
DCMC_API dcmc_status dcmc_dicom_read_pixels(const char *in, dcmc_dicom_info *info, uint8_t **pixels,
                                            size_t *len, char *msg, size_t msg_len);

/* What a file is, for batch conversion. */
enum {
    DCMC_DICOM_IMAGE = 1,     /* has pixel data, not encrypted by dcmcrypt */
    DCMC_DICOM_ENCRYPTED = 2, /* carries the dcmcrypt private block */
    DCMC_DICOM_NO_PIXELS = 3, /* a DICOM object without pixel data (SR, presentation state...) */
    DCMC_DICOM_DIRECTORY = 4, /* a DICOMDIR (Media Storage Directory) */
    DCMC_DICOM_PROTECTED = 5  /* no pixel data; header protected by dcmc_dicom_protect_header */
};
typedef struct dcmc_dicom_probe_info {
    int kind;                  /* DCMC_DICOM_* */
    char sop_instance_uid[65]; /* empty if none */
} dcmc_dicom_probe_info;

/* Classify a file DCMTK can parse. full = 0 reads only what classifying needs (large values
 * stay on disk); full = 1 reads every value, so a truncated object fails. DCMC_ERR_FORMAT when
 * DCMTK cannot parse it. */
DCMC_API dcmc_status dcmc_dicom_probe(const char *in, int full, dcmc_dicom_probe_info *info,
                                      char *msg, size_t msg_len);

/* One parse per file: an object parsed once and kept (values above 4 KiB stay on disk until
 * used, so the file must stay as it is until the object is closed), then asked what it is,
 * for its dcmcrypt header, and converted, without reading its header again. A conversion uses
 * the parse up: afterwards the object can only be closed (other calls: DCMC_ERR_ARG). Batch
 * conversion (--recurse) parses every file once this way. */
typedef struct dcmc_dicom_object dcmc_dicom_object;
/* dcmc_dicom_probe(in, 0, info) that keeps the parse in *obj (close it with dcmc_dicom_close,
 * also after an error: *obj is NULL then). */
DCMC_API DCMC_NODISCARD dcmc_status dcmc_dicom_open(const char *in, dcmc_dicom_object **obj,
                                                    dcmc_dicom_probe_info *info, char *msg,
                                                    size_t msg_len);
/* dcmc_dicom_peek, dcmc_dicom_encrypt and dcmc_dicom_decrypt of the object's file. */
DCMC_API dcmc_status dcmc_dicom_object_peek(dcmc_dicom_object *obj, dcmc_header *hdr, char *msg,
                                            size_t msg_len);
DCMC_API dcmc_status dcmc_dicom_object_encrypt(dcmc_dicom_object *obj, const char *out,
                                               const dcmc_key *key, const dcmc_kdf *kdf,
                                               const uint8_t uid_key[32], const dcmc_options *opt,
                                               const dcmc_dicom_options *dopt,
                                               dcmc_dicom_info *info, char *msg, size_t msg_len);
DCMC_API dcmc_status dcmc_dicom_object_decrypt(dcmc_dicom_object *obj, const char *out,
                                               const dcmc_key *key, int threads,
                                               dcmc_dicom_info *info, char *msg, size_t msg_len);
DCMC_API void dcmc_dicom_close(dcmc_dicom_object *obj);

/* An object without pixel data (SR, key object selection, presentation state, RT structure
 * set...) in an encrypted tree: every instance UID through the same keyed map as the images, so
 * its references still resolve, and with dopt->deidentify the same profile; the originals in an
 * Encrypted Attributes Sequence (KEK from uid_key, and dopt's password and certificates), and a
 * marker block (0011,xx05). An object with pixel data: DCMC_ERR_UNSUPPORTED. */
DCMC_API DCMC_NONNULL(1, 2, 3) dcmc_status
    dcmc_dicom_protect_header(const char *in, const char *out, const uint8_t uid_key[32],
                              const dcmc_dicom_options *dopt, char *msg, size_t msg_len);

/* The way back: the sequence item the UID key opens gives the original values; everything the
 * protection added goes. No such item: DCMC_ERR_WRONG_KEY; not protected: DCMC_ERR_NOT_ENCRYPTED. */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 2, 3) dcmc_status
    dcmc_dicom_restore_header(const char *in, const char *out, const uint8_t uid_key[32],
                              char *msg, size_t msg_len);

/* Check an encrypted object without decrypting or writing anything: header, layout, key check
 * value, MAC and bound attributes (DCMC_ERR_WRONG_KEY, DCMC_ERR_INTEGRITY). sop_uid (may be NULL, 65 bytes) gets
 * the object's SOP Instance UID. */
DCMC_API DCMC_NODISCARD DCMC_NONNULL(1, 2) dcmc_status
    dcmc_dicom_verify(const char *in, const dcmc_key *key, char sop_uid[65], char *msg,
                      size_t msg_len);

/* The Referenced File IDs of a DICOMDIR, each once, in record order, with '/' separators and
 * relative to the DICOMDIR's directory; IDs that leave the file-set are an error. Free with
 * dcmc_dicomdir_refs_free. */
DCMC_API dcmc_status dcmc_dicomdir_refs(const char *in, char ***refs, size_t *n, char *msg,
                                        size_t msg_len);
DCMC_API void dcmc_dicomdir_refs_free(char **refs, size_t n);

/* Write a new DICOMDIR (General Purpose profile, DCMTK's DicomDirInterface) to `out`, with the
 * File-set ID of the DICOMDIR `in` and records for `files` (relative to `root`, the directory
 * the DICOMDIR will live in), read from those files as they are now. */
DCMC_API dcmc_status dcmc_dicomdir_write(const char *in, const char *out, const char *root,
                                         const char *const *files, size_t n, char *msg,
                                         size_t msg_len);

/* Versions of DCMTK and OpenJPEG in use, one line. */
DCMC_API const char *dcmc_dicom_versions(void);

/* Compressed pixel data (encapsulated or deflated) may declare a decoded size of at most this
 * many times the file's size, or 4 MiB, whichever is larger; beyond it the object is refused
 * (DCMC_ERR_UNSUPPORTED) before any decoder allocates anything. Process-wide; 0 restores the
 * default. Lossless clinical data compresses 2-5x, lossy 10-50x. */
#define DCMC_DICOM_MAX_EXPANSION_DEFAULT 64u
DCMC_API void dcmc_dicom_set_max_expansion(unsigned ratio);

#ifdef __cplusplus
}
#endif

#endif

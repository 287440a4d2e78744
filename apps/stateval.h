/*
 * stateval.h - one evaluation of dcmcryptstat: an image's first sample plane, a scheme run on it
 * (encryption, decryption, a one-pixel and a one-key-bit change), and the statistics measured.
 */
#ifndef DCMCRYPT_STATEVAL_H
#define DCMCRYPT_STATEVAL_H

#include <stddef.h>
#include <stdint.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/research.h"

typedef struct scheme {
    const char *name;
    int preset;   /* 0: a baseline */
    int standard; /* ChaCha20 layer */
    dcmc_baseline baseline;
} scheme;

typedef struct image {
    char name[256];
    dcmc_layout l; /* one sample plane: samples 1 */
    size_t bytes;
    uint8_t *px;
} image;

typedef struct result {
    double entropy, chi2, corr[4], corr_s[4], lse, npcr, uaci, npcr_key, uaci_key, psnr, ssim, ms;
    double corr_abs; /* mean |corr| over the four directions, as papers tabulate it */
    double max_err;  /* the largest |decrypted - original| in levels: 0 for an exact scheme */
} result;

/* The first frame's first sample plane of a DICOM, PNG or TIFF file as a one-sample image of
 * the same word size: 0, or -1 with the reason in msg. free(im->px) when done. */
int stat_load_image(const char *path, image *im, char *msg, size_t mlen);

/* Evaluate one scheme on one image; with fig_base, also write fig_base.{triplet,hist,scatter}
 * .png and .svg (statfig.h). model: the paper's trained networks for a paper-* scheme (its
 * published system, lossy), else NULL. The status of the cipher or of the figures; r->psnr is
 * NaN when the cipher failed. */
dcmc_status stat_evaluate(const scheme *s, const dcmc_paper_model *model, const image *im,
                          const dcmc_key *key0, const uint8_t nonce[16], size_t pairs,
                          const char *fig_base, result *r);

#endif

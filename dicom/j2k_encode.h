/*
 * j2k_encode.h - encrypted pixels written as JPEG 2000 Image Compression (Lossless Only),
 * 1.2.840.10008.1.2.4.90, with OpenJPEG (j2k_encode.cc): for archives that take compressed
 * objects only, while every cipher word survives exactly.
 */
#ifndef DCMCRYPT_DICOM_J2K_ENCODE_H
#define DCMCRYPT_DICOM_J2K_ENCODE_H

#include "internal.h"

namespace dcmci {

/* Replace the native pixel data of `ds` (its frames are px.data: px.frames frames of
 * px.frame_bytes bytes, layout px.layout) with an encapsulated JPEG 2000 lossless-only pixel
 * sequence: a Basic Offset Table (filled unless an offset exceeds 32 bits, then empty), one
 * fragment per frame, each a raw J2K codestream (not JP2) with the reversible 5/3 wavelet, no
 * multiple component transform, component precision = Bits Stored, signed components when Pixel
 * Representation is 1, padded with a zero byte to even length. The caller then writes the
 * object with EXS_JPEG2000LosslessOnly (ds->canWriteXfer of it holds).
 *
 * Returns false and leaves ds unchanged when the pixels cannot be expressed losslessly this way:
 * Bits Allocated not 8 or 16; Samples per Pixel not 1 or 3; 3 samples with Planar Configuration
 * 1; High Bit not Bits Stored - 1; px.layout not the layout the dataset describes (the cipher's
 * view of YBR_FULL_422, say); a Photometric Interpretation PS3.5 8.2.4 does not allow with JPEG
 * 2000 without component transform (allowed: MONOCHROME1, MONOCHROME2, PALETTE COLOR, RGB,
 * YBR_FULL); any sample word that does not fit Bits Stored (unsigned: bits above it; signed: not
 * the sign extension of its low Bits Stored bits); a codestream too long for a fragment.
 * OpenJPEG failures throw a Failure (DCMC_ERR_NOMEM, DCMC_ERR_INTERNAL); ds is unchanged then
 * too. */
bool encode_j2k_lossless(DcmDataset *ds, const Pixels &px);

} // namespace dcmci

#endif

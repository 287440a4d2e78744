/*
 * raster.h - what the PNG, TIFF and generic raster code share: one check of a raster's shape
 * (with its overflow-checked byte size) and one way to hand a decoded raster to the caller.
 */
#ifndef DCMC_IO_RASTER_H
#define DCMC_IO_RASTER_H

#include <stdio.h>

#include "dcmcrypt/io.h"

/* DCMC_OK and the byte size if the shape is one we read and write; ARG, UNSUPPORTED or OVERFLOW. */
/* The prologue of every reader: clear *out, then open path for reading. DCMC_OK with *f open,
 * DCMC_ERR_ARG (NULL argument) or DCMC_ERR_IO (cannot open). */
dcmc_status dcmci_raster_open(const char *path, dcmc_raster *out, FILE **f);
dcmc_status dcmci_raster_shape(uint32_t width, uint32_t height, uint32_t channels,
                              uint32_t bit_depth, size_t *size);
/* Fill *r with a decoded raster (takes ownership of data). */
void dcmci_raster_set(dcmc_raster *r, uint32_t width, uint32_t height, uint32_t channels,
                     uint32_t bit_depth, void *data, size_t size);

#endif

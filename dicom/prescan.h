/*
 * prescan.h - how deeply a DICOM file nests sequences, measured on its raw bytes before DCMTK
 * parses it. DCMTK 3.6.7 reads sequences and items recursively and has no nesting limit, so a
 * small file with thousands of nested sequences overflows the stack of whoever loads it; the
 * adapter asks this first and refuses files deeper than its limit.
 *
 * The scan follows the decisions DCMTK's reader makes (preamble, meta group, transfer syntax or
 * its guess, explicit/implicit VR, byte order, deflate, UN and undefined lengths, pixel
 * sequences) and, where DCMTK decides from its data dictionary, which the scan does not have,
 * follows every reading DCMTK could take. It may count a level more than DCMTK in odd files; it
 * never counts fewer. It streams: values are skipped with fseeko (deflated data sets are
 * inflated and discarded), memory is bounded by the nesting it is allowed to see, and nothing
 * recurses. Nothing here prints or exits; no C++ exception crosses this header.
 */
#ifndef DCMCRYPT_PRESCAN_H
#define DCMCRYPT_PRESCAN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Maximum sequence/item nesting of the DICOM file at `path`, measured on the raw bytes without
 * DCMTK. Returns 0 and sets *depth (0 = no sequence; 1 = a sequence at top level holding items
 * with no sequences, etc.; count one level per sequence, so an item inside a sequence inside an
 * item inside a sequence is depth 2; an empty sequence is a level; encapsulated pixel data is
 * not a sequence). The scan stops early as soon as depth exceeds `stop_at` (then
 * *depth = stop_at + 1). Never less than the depth DCMTK 3.6.7 (default settings) builds or
 * recurses into; where DCMTK decides from its data dictionary the scan counts every possible
 * reading, so implicit VR files may count one level more (an empty value may be an empty
 * sequence) and odd files more. It also reports stop_at + 1 when a file is so ambiguous that a
 * bounded amount of work cannot bound its depth (only crafted files are: more than 256 places
 * where the readings diverge, or rescanning beyond 16 passes over the file).
 * Returns -1 with errno set if the file cannot be opened/read (EINVAL for NULL arguments,
 * ENOMEM when memory runs out). Malformed structure is not an error: the scan returns the depth
 * reached so far (DCMTK will then reject the file on its own). */
int dcmci_prescan_depth(const char *path, unsigned stop_at, unsigned *depth);

/* The same scan, with what else it finds that DCMTK cannot be trusted to parse. */
typedef struct dcmci_prescan_result {
    unsigned depth;      /* as dcmci_prescan_depth */
    int bad_record_type; /* a Directory Record Type (0004,1430) with a component longer than
                          * 16 characters: DCMTK 3.6.7 can throw out of its parser (and leak)
                          * on such a DICOMDIR record */
    uint64_t inflated;   /* bytes of a deflated data set scanned, inflated (0: not deflated) */
} dcmci_prescan_result;
int dcmci_prescan(const char *path, unsigned stop_at, dcmci_prescan_result *result);

#ifdef __cplusplus
}
#endif

#endif

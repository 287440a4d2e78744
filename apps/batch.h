/*
 * batch.h - `dcmencrypt/dcmdecrypt --recurse dir-in dir-out`: a whole tree of studies. Mirrors
 * the tree, converts every DICOM object found by content, copies everything else through,
 * works on -j files at once, resumes (finished outputs that verify are skipped), writes a JSON
 * lines report and regenerates DICOMDIRs. See docs/batch.md.
 */
#ifndef DCMC_APPS_BATCH_H
#define DCMC_APPS_BATCH_H

#include "cli.h"

/* Exit status of a batch: 0 every file done, 5 some failed (the report says which), 4 stopped
 * because the output file system is full, 128 + signal when interrupted, or one of the EXIT_*
 * codes for a problem before any file was touched. */
enum { EXIT_SOME_FAILED = 5 };

int batch_run(const cli *c);

/* The shard (0-based, of n) a relative path belongs to: the first 8 bytes of its SHA-256, big
 * endian, modulo n. Stable across machines and runs. */
unsigned batch_shard_of(const char *rel, unsigned n);

#endif

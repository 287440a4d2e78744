/*
 * fuzz_dicom.c - libFuzzer target for everything that parses an untrusted object: the adapter's
 * load path (DCMTK parsing, every decoder including OpenJPEG, layout checks, frame unpacking)
 * through dcmc_dicom_read_pixels, and the decryption path (private block, header reader,
 * payload, key check, MAC) through dcmc_dicom_open's object with a fixed key, and what batch
 * conversion reads from every file of a tree: dcmc_dicom_open (the quick probe), dcmc_dicom_probe,
 * dcmc_dicom_verify and the Referenced File IDs of DICOMDIRs. Seeded with sample-data/dicom,
 * the DICOMDIRs of sample-data/study-tree and encrypted objects (scripts/fuzz.sh).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dcmcrypt/dcmcrypt.h"
#include "dcmcrypt/dicom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char in[64], out[64];
    if (!in[0]) {
        snprintf(in, sizeof in, "/tmp/dcmc-fuzz-%d.in", (int)getpid());
        snprintf(out, sizeof out, "/tmp/dcmc-fuzz-%d.out", (int)getpid());
    }
    FILE *f = fopen(in, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    dcmc_key key;
    memset(key.bytes, 0x42, sizeof key.bytes); /* the key scripts/fuzz.sh encrypts seeds with */
    char msg[DCMC_DICOM_MSG];
    dcmc_dicom_info info;
    uint8_t *px = NULL;
    size_t len = 0;
    if (dcmc_dicom_read_pixels(in, &info, &px, &len, msg, sizeof msg) == DCMC_OK)
        dcmc_free(px, len);
    /* OK only for an object encrypted with this key (the committed seeds are): either way the
     * status is not the finding; a crash or a sanitizer report is. Through one parse, as batch
     * conversion does: open (the quick probe), the header, decryption. */
    dcmc_dicom_probe_info pi;
    dcmc_dicom_object *obj = NULL;
    dcmc_status st = dcmc_dicom_open(in, &obj, &pi, msg, sizeof msg);
    if (st == DCMC_OK) {
        dcmc_header h;
        st = dcmc_dicom_object_peek(obj, &h, msg, sizeof msg);
        st = dcmc_dicom_object_decrypt(obj, out, &key, 1, &info, msg, sizeof msg);
        (void)st;
        unlink(out);
    }
    dcmc_dicom_close(obj);
    dcmc_dicom_probe(in, 1, &pi, msg, sizeof msg);
    char uid[65];
    st = dcmc_dicom_verify(in, &key, uid, msg, sizeof msg);
    (void)st;
    char **refs = NULL;
    size_t n = 0;
    if (dcmc_dicomdir_refs(in, &refs, &n, msg, sizeof msg) == DCMC_OK)
        dcmc_dicomdir_refs_free(refs, n);
    return 0;
}

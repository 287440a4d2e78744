/*
 * deid.h - the PS3.15 Annex E Basic Application Level Confidentiality Profile and its options,
 * applied to a dataset at every depth (deid.cc), from the profile's attribute table
 * (deid_table.cc). docs/deidentification.md is the conformance statement.
 *
 * What this does not do, because the caller does it in every mode: instance UIDs (every UI value
 * that names an instance is replaced through the keyed UID map, at every depth), the pixel data
 * and the dcmcrypt block, and keeping the originals (the caller compares the dataset before and
 * after, and keeps every changed top-level attribute).
 */
#ifndef DCMCRYPT_DICOM_DEID_H
#define DCMCRYPT_DICOM_DEID_H

#include "internal.h"

#include <functional>

namespace dcmci {

/* One row of PS3.15 Table E.1-1: the attribute, the Basic Profile's action and each option
 * column's action, as the standard writes them ("X", "Z", "D", "K", "C", "U", "Z/D", "X/Z",
 * "X/D", "X/Z/D", "X/Z/U*"...; "" where the column is empty). */
struct DeidRow {
    Uint16 group, element;
    Uint16 group_mask; /* 0xFFFF, or 0xFF00 for the repeating groups 50xx and 60xx */
    const char *name;
    const char *basic;
    /* Option columns in the table's order: Retain Safe Private, Retain UIDs, Retain Device
     * Identity, Retain Institution Identity, Retain Patient Characteristics, Retain Longitudinal
     * Full Dates, Retain Longitudinal Modified Dates, Clean Descriptors, Clean Structured
     * Content, Clean Graphics. */
    const char *option[10];
};

extern const DeidRow kDeidTable[];
extern const size_t kDeidTableSize;

/* What deidentify() needs from the keys: pseudonyms and the date shift are keyed, so the same
 * key gives the same result in every file and run. */
struct DeidContext {
    unsigned options = 0; /* DCMC_DEID_* of include/dcmcrypt/dicom.h */
    /* The pseudonym of an original value of `tag` (Patient ID, Patient Name, Accession Number,
     * Other Patient IDs, Issuer...): deterministic, valid for the attribute's VR. */
    std::function<std::string(const DcmTagKey &tag, const std::string &orig)> pseudonym;
    /* Days added to every date with the modified-dates option (one per patient, negative), and
     * seconds (0..86399) added to every time after that (deid_time.cc). */
    long date_shift_days = 0;
    long time_shift_seconds = 0;
    /* What De-identification Method (0012,0063) says besides the options, e.g. "dcmcrypt 0.2.0". */
    std::string method;
};

/* Apply the profile with ctx.options to `ds` at every depth; then set Patient Identity Removed
 * YES, De-identification Method and the De-identification Method Code Sequence with the code of
 * the profile and of every option used, and Longitudinal Temporal Information Modified. */
void deidentify(DcmDataset *ds, const DeidContext &ctx);

/* Dates (deid_time.cc): `digits` (YYYY, YYYYMM or YYYYMMDD) moved by `days` in the calendar at
 * the same precision, false when it is no date; one DA or DT value moved (a DT keeps what follows
 * its date). */
bool shift_digits(const std::string &digits, long days, std::string &out);
bool shift_value(const std::string &v, DcmEVR vr, long days, std::string &out);

/* With Modified Dates, after deidentify(): every TM and the time of every DT at every depth
 * moved by `secs`, a day carried into the paired date (deid_time.cc). */
void shift_times(DcmItem *top, long secs);

/* The keyed context for `ds` (pseudo.cc): its date shift and pseudonyms come from the UID key
 * and the original Patient ID (else Patient Name, else Study Instance UID). Call before
 * deidentify() changes them. */
DeidContext deid_context(DcmDataset *ds, const uint8_t uid_key[32], unsigned options,
                         const std::string &method);

} // namespace dcmci

#endif

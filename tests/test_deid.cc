/*
 * test_deid.cc - the PS3.15 Annex E profile of dicom/deid.cc on data sets built here: the table
 * well formed (sorted, no duplicates, only the standard's actions, rows checked against the
 * standard's text), no identifying value left at any depth (nested sequences, private elements,
 * free text), dates moved by exactly the shift in the calendar, pseudonyms from the context,
 * safe private elements only with their option, the method codes of the options used, and the
 * attributes an IOD needs left empty rather than removed. C++ (it builds DCMTK data sets) in the
 * same binary as the C suites.
 */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dctk.h"

#include <stdint.h>
#include <stdlib.h>

#include <CUnit/CUnit.h>

#include "dcmcrypt/dcmcrypt.h"
#include "deid.h"

extern "C" {
#include "test_common.h"
}

#include <algorithm>
#include <cctype>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

extern "C" int dcmc_test_register_deid(void);

namespace {

using dcmci::DeidContext;
using dcmci::DeidRow;

const long kShift = -400; /* 20190417 -> 20180313 */

/* Values that identify the patient, staff, place or device of the data set built below: none may
 * be left anywhere after de-identification (the dates: Modified Dates moves them all). */
const char *const kSecrets[] = {
    "DOE",        "JOHN",         "PID12345", "19700101", "1970-01-01", "ACC98765",
    "Elsewhere",  "Main Street",  "HOUSE",    "GREGORY",  "WILSON",     "CUDDY",
    "CTSTATION7", "SN445566",     "STUDY4242", "OLDID777", "20190417",  "Radiology Dept",
    "Springfield", "PRIVATE-NOTE",
};

const DcmTagKey kOtherPatientIDs(0x0010, 0x1000);
const DcmTagKey kEvaluatorName(0x0014, 0x2006);   /* PN the table does not list */
const DcmTagKey kExpiryDate(0x0014, 0x1020);      /* DA the table does not list */
const DcmTagKey kRouteStart(0x4010, 0x1025);      /* DT the table does not list */
const DcmTagKey kTextValue(0x0040, 0xA160);       /* free text of structured content */
const DcmTagKey kTreatmentMachine(0x300A, 0x00B2); /* X/Z, Type 2 in RT objects */

/* ---- building ------------------------------------------------------------------------------ */

void put(DcmItem *it, const DcmTagKey &k, const char *v)
{
    CU_ASSERT_FATAL(it->putAndInsertString(k, v).good());
}

void put_vr(DcmItem *it, Uint16 g, Uint16 e, DcmEVR vr, const char *v)
{
    CU_ASSERT_FATAL(it->putAndInsertString(DcmTag(g, e, vr), v).good());
}

DcmItem *new_item(DcmItem *parent, const DcmTagKey &seq)
{
    DcmItem *it = nullptr;
    CU_ASSERT_FATAL(parent->findOrCreateSequenceItem(seq, it, -2).good() && it);
    return it;
}

void add_private(DcmItem *it, const char *note)
{
    put_vr(it, 0x0009, 0x0010, EVR_LO, "ACME 1.0");
    put_vr(it, 0x0009, 0x1001, EVR_LO, note);
    put_vr(it, 0x0009, 0x1002, EVR_PN, "DOE^JOHN");
}

void add_pixels_and_overlay(DcmDataset *ds)
{
    put(ds, DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    put(ds, DCM_SOPInstanceUID, "1.2.3.4.5.6.7.8");
    put(ds, DCM_Rows, "2");
    put(ds, DCM_Columns, "2");
    put(ds, DCM_SamplesPerPixel, "1");
    put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
    put(ds, DCM_BitsAllocated, "8");
    put(ds, DCM_BitsStored, "8");
    put(ds, DCM_HighBit, "7");
    put(ds, DCM_PixelRepresentation, "0");
    const Uint8 px[4] = {1, 2, 3, 4};
    CU_ASSERT_FATAL(ds->putAndInsertUint8Array(DCM_PixelData, px, 4).good());
    put(ds, DcmTagKey(0x6000, 0x0010), "2");
    put(ds, DcmTagKey(0x6000, 0x0011), "2");
    put(ds, DcmTagKey(0x6000, 0x0040), "G");
    put(ds, DcmTagKey(0x6000, 0x0050), "1\\1");
    put(ds, DcmTagKey(0x6000, 0x0100), "1");
    put(ds, DcmTagKey(0x6000, 0x0102), "0");
    const Uint16 ov[2] = {0xFFFF, 0x0001};
    CU_ASSERT_FATAL(ds->putAndInsertUint16Array(DcmTagKey(0x6000, 0x3000), ov, 2).good());
    put_vr(ds, 0x5000, 0x0005, EVR_US, "1");
    put_vr(ds, 0x5000, 0x2500, EVR_LO, "curve of DOE");
    /* the caller's own block: untouched whatever happens */
    put_vr(ds, 0x0011, 0x0010, EVR_LO, "DCMCRYPT 1");
    const Uint8 block[4] = {9, 8, 7, 6};
    CU_ASSERT_FATAL(ds->putAndInsertUint8Array(DcmTag(0x0011, 0x1001, EVR_OB), block, 4).good());
}

void add_patient(DcmDataset *ds)
{
    put(ds, DCM_PatientName, "DOE^JOHN");
    put(ds, DCM_PatientID, "PID12345");
    put(ds, DCM_IssuerOfPatientID, "OLDID777 HOSPITAL");
    put(ds, kOtherPatientIDs, "OLDID777");
    put(ds, DCM_PatientBirthDate, "19700101");
    put(ds, DCM_PatientSex, "M");
    put(ds, DCM_PatientAge, "049Y");
    put(ds, DCM_PatientWeight, "80");
    put(ds, DCM_AccessionNumber, "ACC98765");
    put(ds, DCM_InstitutionName, "St Elsewhere Hospital");
    put(ds, DCM_InstitutionAddress, "1 Main Street Springfield");
    put(ds, DCM_InstitutionalDepartmentName, "Radiology Dept");
    put(ds, DCM_ReferringPhysicianName, "HOUSE^GREGORY");
    put(ds, DCM_PerformingPhysicianName, "WILSON^JAMES");
    put(ds, DCM_OperatorsName, "CUDDY^LISA");
    put(ds, DCM_StationName, "CTSTATION7");
    put(ds, DCM_DeviceSerialNumber, "SN445566");
    put(ds, DCM_StudyID, "STUDY4242");
}

void add_study(DcmDataset *ds)
{
    put(ds, DCM_StudyInstanceUID, "1.2.3.4.5.6.7.1");
    put(ds, DCM_StudyDate, "20190417");
    put(ds, DCM_StudyTime, "093000");
    put(ds, DCM_ContentDate, "20190417");
    put(ds, DCM_AcquisitionDate, "20190417");
    put(ds, DCM_AcquisitionDateTime, "20190417093000.000000+0100");
    put(ds, DCM_StudyDescription, "CT head for John Doe at CTSTATION7");
    put(ds, DCM_ImageComments,
        "Patient DOE^JOHN (PID12345, born 1970-01-01) seen by Dr House at St Elsewhere Hospital");
    put(ds, kTreatmentMachine, "LINAC-CTSTATION7");
    DcmItem *ref = new_item(ds, DCM_ReferencedImageSequence);
    put(ref, DCM_ReferencedSOPClassUID, UID_CTImageStorage);
    put(ref, DCM_ReferencedSOPInstanceUID, "1.2.3.4.5.6.7.9");
    DcmItem *study = new_item(ds, DCM_ReferencedStudySequence);
    put(study, DCM_ReferencedSOPInstanceUID, "1.2.3.4.5.6.7.10");
}

/* Depth: a sequence the table does not list, a second level under it, private elements in both. */
void add_nested(DcmDataset *ds)
{
    add_private(ds, "PRIVATE-NOTE for DOE");
    put_vr(ds, 0x0043, 0x0010, EVR_LO, "GEMS_PARM_01");
    put_vr(ds, 0x0043, 0x1039, EVR_IS, "1000\\0\\0\\0");
    put_vr(ds, 0x0043, 0x1001, EVR_LO, "PRIVATE-NOTE");
    DcmItem *l1 = new_item(ds, DCM_AnatomicRegionSequence);
    put(l1, DCM_CodeValue, "T-A0100");
    put(l1, DCM_CodeMeaning, "Brain");
    put(l1, DCM_PersonName, "DOE^JOHN");
    put(l1, kEvaluatorName, "WILSON^JAMES");
    put(l1, kExpiryDate, "20190417");
    add_private(l1, "PRIVATE-NOTE nested");
    DcmItem *l2 = new_item(l1, DCM_AnatomicRegionModifierSequence);
    put(l2, DCM_PatientName, "DOE^JOHN");
    put(l2, DCM_PatientID, "PID12345");
    put(l2, kRouteStart, "201904");
    put(l2, DCM_StudyDate, "20190417");
    add_private(l2, "PRIVATE-NOTE deeper");
    DcmItem *req = new_item(ds, DCM_RequestAttributesSequence);
    put(req, DCM_ScheduledProcedureStepDescription, "CT for Gregory House's patient Doe");
    put(req, DCM_RequestedProcedureID, "RP-ACC98765");
    DcmItem *sr = new_item(ds, DCM_ContentSequence);
    put(sr, DCM_ValueType, "TEXT");
    put(sr, kTextValue, "Seen: John Doe, ID PID12345, St Elsewhere Hospital.");
    put(sr, DCM_PersonName, "CUDDY^LISA");
}

std::unique_ptr<DcmDataset> build()
{
    std::unique_ptr<DcmDataset> ds(new DcmDataset);
    add_pixels_and_overlay(ds.get());
    add_patient(ds.get());
    add_study(ds.get());
    add_nested(ds.get());
    return ds;
}

/* ---- running ------------------------------------------------------------------------------- */

std::vector<std::pair<DcmTagKey, std::string>> g_calls;

std::string pseudonym_of(const DcmTagKey &tag, const std::string &orig)
{
    g_calls.emplace_back(tag, orig);
    if (tag == DCM_PatientName)
        return "PSEUDO^NAME";
    if (tag == DCM_PatientID)
        return "PSEUDOID1";
    if (tag == DCM_AccessionNumber)
        return "PSEUDOACC1";
    return "PSEUDOX";
}

DeidContext context(unsigned options)
{
    DeidContext ctx;
    ctx.options = options;
    ctx.pseudonym = pseudonym_of;
    ctx.date_shift_days = kShift;
    ctx.method = "dcmcrypt test";
    return ctx;
}

std::unique_ptr<DcmDataset> run(unsigned options)
{
    std::unique_ptr<DcmDataset> ds = build();
    g_calls.clear();
    try {
        dcmci::deidentify(ds.get(), context(options));
    } catch (const dcmci::Failure &) {
        CU_FAIL_FATAL("deidentify refused the test data set");
    }
    return ds;
}

std::string str(DcmItem *it, const DcmTagKey &k)
{
    OFString s;
    if (it->findAndGetOFStringArray(k, s).bad())
        return "(absent)";
    return s.c_str();
}

bool present(DcmItem *it, const DcmTagKey &k)
{
    return it->tagExists(k);
}

DcmItem *item(DcmItem *it, const DcmTagKey &seq, unsigned long n = 0)
{
    DcmItem *out = nullptr;
    if (it->findAndGetSequenceItem(seq, out, (signed long)n).bad())
        return nullptr;
    return out;
}

unsigned long items(DcmItem *it, const DcmTagKey &seq)
{
    DcmSequenceOfItems *sq = nullptr;
    if (it->findAndGetSequence(seq, sq).bad() || !sq)
        return (unsigned long)-1;
    return sq->card();
}

/* Every string value at every depth, with its tag. */
void all_strings(DcmItem *it, std::vector<std::pair<DcmTagKey, std::string>> &out)
{
    for (unsigned long i = 0; i < it->card(); i++) {
        DcmElement *el = it->getElement(i);
        if (el->ident() == EVR_SQ) {
            auto *sq = static_cast<DcmSequenceOfItems *>(el);
            for (unsigned long j = 0; j < sq->card(); j++)
                all_strings(sq->getItem(j), out);
            continue;
        }
        OFString s;
        if (el->isaString() && el->getOFStringArray(s).good())
            out.emplace_back(el->getTag(), s.c_str());
    }
}

std::string upper(std::string s)
{
    for (char &c : s)
        c = (char)toupper((unsigned char)c);
    return s;
}

unsigned count_group(DcmItem *it, Uint16 g)
{
    unsigned n = 0;
    for (unsigned long i = 0; i < it->card(); i++)
        n += it->getElement(i)->getGTag() == g;
    return n;
}

/* ---- the table ----------------------------------------------------------------------------- */

bool valid_action(const char *a, bool may_be_empty)
{
    static const char *const kValid[] = {"X", "Z", "D", "K", "C", "U", "Z/D",
                                         "X/Z", "X/D", "X/Z/D", "X/Z/U*"};
    if (!a)
        return false;
    if (!a[0])
        return may_be_empty;
    for (const char *v : kValid)
        if (strcmp(a, v) == 0)
            return true;
    return false;
}

const DeidRow *row(Uint16 g, Uint16 e)
{
    for (size_t i = 0; i < dcmci::kDeidTableSize; i++)
        if (dcmci::kDeidTable[i].group == g && dcmci::kDeidTable[i].element == e)
            return &dcmci::kDeidTable[i];
    return nullptr;
}

void test_table_well_formed(void)
{
    /* 2026d: 657 rows, the private attributes row being deid.cc's rule rather than a row */
    CU_ASSERT_EQUAL(dcmci::kDeidTableSize, 656);
    unsigned bad_order = 0, bad_action = 0, bad_mask = 0;
    for (size_t i = 0; i < dcmci::kDeidTableSize; i++) {
        const DeidRow &r = dcmci::kDeidTable[i];
        if (i > 0) {
            const DeidRow &p = dcmci::kDeidTable[i - 1];
            bad_order += !(p.group < r.group || (p.group == r.group && p.element < r.element));
        }
        bad_action += !valid_action(r.basic, false);
        for (const char *o : r.option)
            bad_action += !valid_action(o, true);
        bad_action += r.option[0][0] != '\0'; /* no row has a Retain Safe Private entry */
        bad_mask += r.group_mask == 0xFF00 ? (r.group != 0x5000 && r.group != 0x6000)
                                           : r.group_mask != 0xFFFF || (r.group & 1);
        bad_action += !r.name || !r.name[0];
    }
    CU_ASSERT_EQUAL(bad_order, 0);
    CU_ASSERT_EQUAL(bad_action, 0);
    CU_ASSERT_EQUAL(bad_mask, 0);
}

/* Rows as PS3.15 2026d Table E.1-1 prints them. */
void test_table_rows(void)
{
    const struct {
        Uint16 g, e;
        const char *basic;
        int col;
        const char *opt;
    } kRows[] = {
        {0x0010, 0x0010, "Z", -1, ""},      {0x0010, 0x0020, "Z/D", -1, ""},
        {0x0010, 0x1010, "X", 4, "K"},      {0x0010, 0x0040, "Z", 4, "K"},
        {0x0008, 0x0020, "Z", 6, "C"},      {0x0008, 0x0020, "Z", 5, "K"},
        {0x0008, 0x1140, "X/Z/U*", 1, "K"}, {0x0008, 0x0080, "X/Z/D", 3, "K"},
        {0x0040, 0xA730, "D", 8, "C"},      {0x0070, 0x0001, "D", 9, "C"},
        {0x6000, 0x3000, "X", 9, "C"},      {0x5000, 0x0000, "X", 9, "C"},
        {0x0018, 0x1000, "X/Z/D", 2, "K"},  {0x0008, 0x103E, "X", 7, "C"},
        {0x0020, 0x000D, "U", 1, "K"},      {0x0010, 0x2203, "X/Z", 4, "K"},
    };
    for (const auto &k : kRows) {
        const DeidRow *r = row(k.g, k.e);
        CU_ASSERT_PTR_NOT_NULL_FATAL(r);
        CU_ASSERT_STRING_EQUAL(r->basic, k.basic);
        if (k.col >= 0)
            CU_ASSERT_STRING_EQUAL(r->option[k.col], k.opt);
    }
    CU_ASSERT_EQUAL(row(0x6000, 0x3000)->group_mask, 0xFF00);
    CU_ASSERT_PTR_NULL(row(0x0028, 0x0010)); /* Rows: not the profile's business */
}

/* ---- de-identification --------------------------------------------------------------------- */

void test_nothing_identifying_left(void)
{
    std::unique_ptr<DcmDataset> ds = run(DCMC_DEID_DEFAULTS);
    std::vector<std::pair<DcmTagKey, std::string>> vals;
    all_strings(ds.get(), vals);
    CU_ASSERT(vals.size() > 20);
    for (const auto &v : vals)
        for (const char *secret : kSecrets)
            if (upper(v.second).find(upper(secret)) != std::string::npos) {
                fprintf(stderr, "\n  (%04x,%04x) still holds \"%s\": %s\n", v.first.getGroup(),
                        v.first.getElement(), secret, v.second.c_str());
                CU_FAIL("an identifying value is left");
            }
    /* cleaned, not dropped: the descriptors keep what does not identify */
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_StudyDescription).c_str(),
                           "CT head for *** *** at ***");
    CU_ASSERT(str(ds.get(), DCM_ImageComments).find("seen by Dr *** at ***") != std::string::npos);
    DcmItem *l1 = item(ds.get(), DCM_AnatomicRegionSequence);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l1);
    CU_ASSERT_STRING_EQUAL(str(l1, DCM_PersonName).c_str(), "ANONYMOUS");
    CU_ASSERT_STRING_EQUAL(str(l1, kEvaluatorName).c_str(), "ANONYMOUS");
    CU_ASSERT_STRING_EQUAL(str(l1, DCM_CodeMeaning).c_str(), "Brain");
    DcmItem *l2 = item(l1, DCM_AnatomicRegionModifierSequence);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l2);
    CU_ASSERT_STRING_EQUAL(str(l2, DCM_PatientName).c_str(), "PSEUDO^NAME");
    CU_ASSERT_EQUAL(count_group(l1, 0x0009), 0);
    CU_ASSERT_EQUAL(count_group(l2, 0x0009), 0);
    DcmItem *req = item(ds.get(), DCM_RequestAttributesSequence);
    CU_ASSERT_PTR_NOT_NULL_FATAL(req);
    CU_ASSERT_STRING_EQUAL(str(req, DCM_ScheduledProcedureStepDescription).c_str(),
                           "CT for *** ***'s patient ***");
    CU_ASSERT_FALSE(present(req, DCM_RequestedProcedureID));
    /* what the caller owns stays as it was */
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_SOPInstanceUID).c_str(), "1.2.3.4.5.6.7.8");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DcmTagKey(0x0011, 0x0010)).c_str(), "DCMCRYPT 1");
    CU_ASSERT(present(ds.get(), DcmTagKey(0x0011, 0x1001)));
    CU_ASSERT(present(ds.get(), DCM_PixelData));
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_Rows).c_str(), "2");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_PhotometricInterpretation).c_str(), "MONOCHROME2");
}

void test_dates_shifted(void)
{
    std::unique_ptr<DcmDataset> ds = run(DCMC_DEID_MODIFIED_DATES);
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_StudyDate).c_str(), "20180313");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_ContentDate).c_str(), "20180313");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_AcquisitionDateTime).c_str(),
                           "20180313093000.000000+0100");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_StudyTime).c_str(), "093000");
    DcmItem *l1 = item(ds.get(), DCM_AnatomicRegionSequence);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l1);
    CU_ASSERT_STRING_EQUAL(str(l1, kExpiryDate).c_str(), "20180313");
    DcmItem *l2 = item(l1, DCM_AnatomicRegionModifierSequence);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l2);
    CU_ASSERT_STRING_EQUAL(str(l2, DCM_StudyDate).c_str(), "20180313");
    /* partial DT: shifted from 2019-04-01 (-> 2018-02-25), kept to the month */
    CU_ASSERT_STRING_EQUAL(str(l2, kRouteStart).c_str(), "201802");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_LongitudinalTemporalInformationModified).c_str(),
                           "MODIFIED");
}

void test_calendar(void)
{
    const struct {
        const char *in;
        long shift;
        const char *out;
    } kCases[] = {
        {"20200301", -1, "20200229"},  {"20190301", -1, "20190228"}, {"20210101", -1, "20201231"},
        {"20200101", 59, "20200229"},  {"20001231", 60, "20010301"}, {"19000301", -1, "19000228"},
        {"20190417", -400, "20180313"},
        /* what is no DICOM date (ACR-NEMA's dots, month 13, 30 February) gets the dummy */
        {"2019.04.17", -400, "19000101"}, {"20191332", 1, "19000101"}, {"20190230", 1, "19000101"},
        {"20190417\\20200229", 1, "20190418\\20200301"},
    };
    for (const auto &c : kCases) {
        DcmDataset ds;
        put(&ds, DCM_StudyDate, c.in);
        DeidContext ctx = context(DCMC_DEID_MODIFIED_DATES);
        ctx.date_shift_days = c.shift;
        dcmci::deidentify(&ds, ctx);
        CU_ASSERT_STRING_EQUAL(str(&ds, DCM_StudyDate).c_str(), c.out);
    }
}

/* deid_time.cc: after the days, every time moves by the seconds, midnight carried into the
 * date it is paired with (and a DT's own date); intervals stay exact. */
void test_times_shifted(void)
{
    DcmDataset ds;
    put(&ds, DCM_StudyDate, "20190417");
    put(&ds, DCM_StudyTime, "233000.5");
    put(&ds, DCM_SeriesDate, "20190417");
    put(&ds, DCM_SeriesTime, "1015");
    put(&ds, DCM_AcquisitionDateTime, "20190417233000+0100");
    put(&ds, DCM_ContentTime, "2.5"); /* no time: the dummy */
    DcmItem *it = nullptr;
    CU_ASSERT_FATAL(ds.findOrCreateSequenceItem(DCM_AnatomicRegionSequence, it, 0).good());
    put(it, DCM_StudyTime, "120000");
    put(it, DCM_StudyDate, "20191231");
    dcmci::shift_times(&ds, 3600 + 60);
    CU_ASSERT_STRING_EQUAL(str(&ds, DCM_StudyTime).c_str(), "003100.5");
    CU_ASSERT_STRING_EQUAL(str(&ds, DCM_StudyDate).c_str(), "20190418"); /* carried */
    CU_ASSERT_STRING_EQUAL(str(&ds, DCM_SeriesTime).c_str(), "1116");    /* precision kept */
    CU_ASSERT_STRING_EQUAL(str(&ds, DCM_SeriesDate).c_str(), "20190417");
    CU_ASSERT_STRING_EQUAL(str(&ds, DCM_AcquisitionDateTime).c_str(), "20190418003100+0100");
    CU_ASSERT_STRING_EQUAL(str(&ds, DCM_ContentTime).c_str(), "000000.00");
    CU_ASSERT_STRING_EQUAL(str(it, DCM_StudyTime).c_str(), "130100");
    CU_ASSERT_STRING_EQUAL(str(it, DCM_StudyDate).c_str(), "20191231");
    /* the carry crosses a year end too */
    DcmDataset y;
    put(&y, DCM_StudyDate, "20191231");
    put(&y, DCM_StudyTime, "235959");
    dcmci::shift_times(&y, 1);
    CU_ASSERT_STRING_EQUAL(str(&y, DCM_StudyDate).c_str(), "20200101");
    CU_ASSERT_STRING_EQUAL(str(&y, DCM_StudyTime).c_str(), "000000");
}

void test_dates_full_and_none(void)
{
    std::unique_ptr<DcmDataset> ds = run(DCMC_DEID_FULL_DATES);
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_StudyDate).c_str(), "20190417");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_AcquisitionDateTime).c_str(),
                           "20190417093000.000000+0100");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_LongitudinalTemporalInformationModified).c_str(),
                           "UNMODIFIED");
    ds = run(0);
    CU_ASSERT(present(ds.get(), DCM_StudyDate)); /* Z: Type 2 stays, empty */
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_StudyDate).c_str(), "");
    /* X/Z/D -> D: a dummy, as for Type 1 (Acquisition DateTime in enhanced objects) */
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_AcquisitionDateTime).c_str(), "19000101000000");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_ContentDate).c_str(), "19000101"); /* Z/D -> D */
    DcmItem *l1 = item(ds.get(), DCM_AnatomicRegionSequence);
    CU_ASSERT_PTR_NOT_NULL_FATAL(l1);
    CU_ASSERT_STRING_EQUAL(str(l1, kExpiryDate).c_str(), "19000101");
    CU_ASSERT_FALSE(present(ds.get(), DCM_LongitudinalTemporalInformationModified));
}

void test_pseudonyms(void)
{
    std::unique_ptr<DcmDataset> ds = run(DCMC_DEID_DEFAULTS);
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_PatientName).c_str(), "PSEUDO^NAME");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_PatientID).c_str(), "PSEUDOID1");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_AccessionNumber).c_str(), "PSEUDOACC1");
    bool asked_id = false, asked_name = false;
    for (const auto &c : g_calls) {
        asked_id |= c.first == DCM_PatientID && c.second == "PID12345";
        asked_name |= c.first == DCM_PatientName && c.second == "DOE^JOHN";
    }
    CU_ASSERT(asked_id && asked_name);
    CU_ASSERT_FALSE(present(ds.get(), DCM_IssuerOfPatientID)); /* X */
    CU_ASSERT_FALSE(present(ds.get(), kOtherPatientIDs));      /* X */
    /* without a pseudonym function: Z empty, D a dummy */
    std::unique_ptr<DcmDataset> plain = build();
    DeidContext ctx = context(0);
    ctx.pseudonym = nullptr;
    dcmci::deidentify(plain.get(), ctx);
    CU_ASSERT_STRING_EQUAL(str(plain.get(), DCM_PatientName).c_str(), "");
    CU_ASSERT_STRING_EQUAL(str(plain.get(), DCM_PatientID).c_str(), "ANONYMIZED");
}

void test_safe_private(void)
{
    std::unique_ptr<DcmDataset> ds = run(DCMC_DEID_SAFE_PRIVATE);
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DcmTagKey(0x0043, 0x0010)).c_str(), "GEMS_PARM_01");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DcmTagKey(0x0043, 0x1039)).c_str(), "1000\\0\\0\\0");
    CU_ASSERT_FALSE(present(ds.get(), DcmTagKey(0x0043, 0x1001)));
    CU_ASSERT_EQUAL(count_group(ds.get(), 0x0009), 0);
    CU_ASSERT_EQUAL(count_group(ds.get(), 0x0011), 2);
    ds = run(0);
    CU_ASSERT_EQUAL(count_group(ds.get(), 0x0043), 0);
    CU_ASSERT_EQUAL(count_group(ds.get(), 0x0009), 0);
    CU_ASSERT_EQUAL(count_group(ds.get(), 0x0011), 2);
}

void check_codes(DcmDataset *ds, unsigned options)
{
    static const struct {
        unsigned bit;
        const char *code, *meaning;
    } kCodes[] = {
        {0, "113100", "Basic Application Confidentiality Profile"},
        {DCMC_DEID_SAFE_PRIVATE, "113111", "Retain Safe Private Option"},
        {DCMC_DEID_DEVICE, "113109", "Retain Device Identity Option"},
        {DCMC_DEID_INSTITUTION, "113112", "Retain Institution Identity Option"},
        {DCMC_DEID_PATIENT_CHARS, "113108", "Retain Patient Characteristics Option"},
        {DCMC_DEID_FULL_DATES, "113106",
         "Retain Longitudinal Temporal Information Full Dates Option"},
        {DCMC_DEID_MODIFIED_DATES, "113107",
         "Retain Longitudinal Temporal Information Modified Dates Option"},
        {DCMC_DEID_CLEAN_DESCRIPTORS, "113105", "Clean Descriptors Option"},
        {DCMC_DEID_CLEAN_STRUCTURED, "113104", "Clean Structured Content Option"},
        {DCMC_DEID_CLEAN_GRAPHICS, "113103", "Clean Graphics Option"},
    };
    CU_ASSERT_STRING_EQUAL(str(ds, DCM_PatientIdentityRemoved).c_str(), "YES");
    unsigned long want = 0, n = items(ds, DCM_DeidentificationMethodCodeSequence);
    for (const auto &c : kCodes) {
        if (c.bit && !(options & c.bit))
            continue;
        want++;
        bool found = false;
        for (unsigned long i = 0; i < n && n != (unsigned long)-1; i++) {
            DcmItem *it = item(ds, DCM_DeidentificationMethodCodeSequence, i);
            found |= it && str(it, DCM_CodeValue) == c.code &&
                     str(it, DCM_CodingSchemeDesignator) == "DCM" &&
                     str(it, DCM_CodeMeaning) == c.meaning;
        }
        CU_ASSERT(found);
    }
    CU_ASSERT_EQUAL(n, want);
    DcmElement *m = nullptr;
    CU_ASSERT_FATAL(ds->findAndGetElement(DCM_DeidentificationMethod, m).good() && m);
    for (unsigned long i = 0; i < m->getVM(); i++) {
        OFString v;
        CU_ASSERT(m->getOFString(v, i).good() && !v.empty() && v.length() <= 64);
    }
}

void test_method_codes(void)
{
    const unsigned kSets[] = {
        0,
        DCMC_DEID_DEFAULTS,
        DCMC_DEID_DEVICE | DCMC_DEID_INSTITUTION | DCMC_DEID_FULL_DATES |
            DCMC_DEID_CLEAN_STRUCTURED | DCMC_DEID_CLEAN_GRAPHICS,
    };
    for (unsigned o : kSets)
        check_codes(run(o).get(), o);
    /* a long method text becomes several values of at most 64 characters */
    std::unique_ptr<DcmDataset> ds = build();
    DeidContext ctx = context(DCMC_DEID_DEFAULTS);
    ctx.method = std::string(150, 'm') + " dcmcrypt\\0.2.0";
    dcmci::deidentify(ds.get(), ctx);
    check_codes(ds.get(), DCMC_DEID_DEFAULTS);
    const std::string all = str(ds.get(), DCM_DeidentificationMethod);
    CU_ASSERT(all.find("modified") != std::string::npos);
    CU_ASSERT(all.find("dcmcrypt 0.2.0") != std::string::npos);
}

void test_patient_characteristics(void)
{
    std::unique_ptr<DcmDataset> ds = run(DCMC_DEID_PATIENT_CHARS);
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_PatientSex).c_str(), "M");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_PatientAge).c_str(), "049Y");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_PatientWeight).c_str(), "80");
    ds = run(0);
    CU_ASSERT(present(ds.get(), DCM_PatientSex)); /* Z */
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_PatientSex).c_str(), "");
    CU_ASSERT_FALSE(present(ds.get(), DCM_PatientAge)); /* X */
    CU_ASSERT_FALSE(present(ds.get(), DCM_PatientWeight));
}

void test_type2_left_empty(void)
{
    std::unique_ptr<DcmDataset> ds = run(0);
    CU_ASSERT(present(ds.get(), kTreatmentMachine)); /* X/Z -> Z */
    CU_ASSERT_STRING_EQUAL(str(ds.get(), kTreatmentMachine).c_str(), "");
    CU_ASSERT(present(ds.get(), DCM_AcquisitionDate));
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_AcquisitionDate).c_str(), "");
    /* X/Z/D -> D: Device Serial Number is Type 1 in Enhanced General Equipment */
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_DeviceSerialNumber).c_str(), "ANONYMIZED");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_OperatorsName).c_str(), "ANONYMOUS");
    CU_ASSERT_EQUAL(items(ds.get(), DCM_ReferencedStudySequence), 0); /* X/Z: no items */
    /* X/Z/U*: the references stay for the caller to map */
    DcmItem *ref = item(ds.get(), DCM_ReferencedImageSequence);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    CU_ASSERT_STRING_EQUAL(str(ref, DCM_ReferencedSOPInstanceUID).c_str(), "1.2.3.4.5.6.7.9");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_ContentDate).c_str(), "19000101");
    ds = run(DCMC_DEID_DEVICE | DCMC_DEID_INSTITUTION);
    CU_ASSERT_STRING_EQUAL(str(ds.get(), kTreatmentMachine).c_str(), "LINAC-CTSTATION7");
    CU_ASSERT_STRING_EQUAL(str(ds.get(), DCM_InstitutionName).c_str(), "St Elsewhere Hospital");
}

void test_overlay_and_curve_groups(void)
{
    for (unsigned o : {0u, (unsigned)DCMC_DEID_CLEAN_GRAPHICS}) {
        std::unique_ptr<DcmDataset> ds = run(o);
        CU_ASSERT_EQUAL(count_group(ds.get(), 0x6000), 0);
        CU_ASSERT_EQUAL(count_group(ds.get(), 0x5000), 0);
        CU_ASSERT(present(ds.get(), DCM_PixelData));
    }
}

void test_structured_content(void)
{
    std::unique_ptr<DcmDataset> ds = run(0);
    CU_ASSERT_EQUAL(items(ds.get(), DCM_ContentSequence), 0); /* D on a sequence: no items */
    ds = run(DCMC_DEID_CLEAN_STRUCTURED);
    DcmItem *sr = item(ds.get(), DCM_ContentSequence);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sr);
    CU_ASSERT_STRING_EQUAL(str(sr, kTextValue).c_str(), "Seen: *** ***, ID ***, ***.");
    CU_ASSERT_STRING_EQUAL(str(sr, DCM_PersonName).c_str(), "ANONYMOUS");
    CU_ASSERT_STRING_EQUAL(str(sr, DCM_ValueType).c_str(), "TEXT");
}

/* Of several options with entries in a row, K wins over C: Date of Last Calibration (0018,1200)
 * is X, Retain Device Identity K, Modified Dates C. */
void test_option_precedence(void)
{
    const struct {
        unsigned options;
        const char *want;
    } kCases[] = {
        {DCMC_DEID_DEVICE | DCMC_DEID_MODIFIED_DATES, "20190417"},
        {DCMC_DEID_MODIFIED_DATES, "20180313"},
        {DCMC_DEID_DEVICE, "20190417"},
        {0, "(absent)"},
    };
    for (const auto &c : kCases) {
        DcmDataset ds;
        put(&ds, DCM_DateOfLastCalibration, "20190417");
        dcmci::deidentify(&ds, context(c.options));
        CU_ASSERT_STRING_EQUAL(str(&ds, DCM_DateOfLastCalibration).c_str(), c.want);
    }
}

/* Values under 4 characters count as whole words only, longer ones wherever they occur. */
void test_clean_words(void)
{
    DcmDataset ds;
    put(&ds, DCM_PatientName, "LI^DOE");
    put(&ds, DCM_PatientID, "AB1234");
    put(&ds, DCM_SeriesDescription, "Doesburg clinical protocol for Li Doe, ref XAB1234Y");
    dcmci::deidentify(&ds, context(DCMC_DEID_CLEAN_DESCRIPTORS));
    CU_ASSERT_STRING_EQUAL(str(&ds, DCM_SeriesDescription).c_str(),
                           "Doesburg clinical protocol for *** ***, ref X***Y");
    /* without the option the descriptor goes (X) */
    put(&ds, DCM_SeriesDescription, "for Li Doe");
    dcmci::deidentify(&ds, context(0));
    CU_ASSERT_FALSE(present(&ds, DCM_SeriesDescription));
}

void test_options_refused(void)
{
    const unsigned both_dates = DCMC_DEID_FULL_DATES | DCMC_DEID_MODIFIED_DATES;
    for (unsigned o : {0x002u, 0x400u, both_dates}) {
        std::unique_ptr<DcmDataset> ds = build();
        dcmc_status st = DCMC_OK;
        try {
            dcmci::deidentify(ds.get(), context(o));
        } catch (const dcmci::Failure &f) {
            st = f.status;
        }
        CU_ASSERT_EQUAL(st, DCMC_ERR_ARG);
    }
}

const dcmc_test_case kCases[] = {
    {"table well formed", test_table_well_formed},
    {"table rows as the standard prints them", test_table_rows},
    {"nothing identifying left at any depth", test_nothing_identifying_left},
    {"modified dates shifted exactly", test_dates_shifted},
    {"calendar arithmetic", test_calendar},
    {"full dates kept, no option removes", test_dates_full_and_none},
    {"pseudonyms from the context", test_pseudonyms},
    {"safe private only with its option", test_safe_private},
    {"method codes match the options", test_method_codes},
    {"patient characteristics option", test_patient_characteristics},
    {"type 2 attributes left empty", test_type2_left_empty},
    {"overlay and curve groups removed whole", test_overlay_and_curve_groups},
    {"times moved, midnight carried into the date", test_times_shifted},
    {"clean structured content", test_structured_content},
    {"short values cleaned as whole words", test_clean_words},
    {"K wins over C", test_option_precedence},
    {"contradictory or unknown options refused", test_options_refused},
    {NULL, NULL},
};

} // namespace

extern "C" int dcmc_test_register_deid(void)
{
    return dcmc_test_add_suite("deid", kCases);
}

/*
 * deid_time.cc - times under the Retain Longitudinal Temporal Information with Modified Dates
 * option (PS3.15 E.3.6): deid.cc moves every date by the patient's whole days; this moves every
 * time by the patient's seconds as well, so that the time of day is not the true one either,
 * while every interval between two instants of the patient stays exact. A time that passes
 * midnight carries one day into the date it belongs with (its pair in the same item: Study Date
 * and Study Time...), and a DT carries into its own date.
 */
#include "deid.h"

#include <algorithm>
#include <ctime>

namespace dcmci {

namespace {

/* Date and time attributes that together name one instant. */
const DcmTagKey kPairs[][2] = {
    {DCM_InstanceCreationDate, DCM_InstanceCreationTime},
    {DCM_StudyDate, DCM_StudyTime},
    {DCM_SeriesDate, DCM_SeriesTime},
    {DCM_AcquisitionDate, DCM_AcquisitionTime},
    {DCM_ContentDate, DCM_ContentTime},
    {DCM_RETIRED_OverlayDate, DCM_RETIRED_OverlayTime},
    {DCM_RETIRED_CurveDate, DCM_RETIRED_CurveTime},
    {DCM_PatientBirthDate, DCM_PatientBirthTime},
    {DCM_DateOfSecondaryCapture, DCM_TimeOfSecondaryCapture},
    {DCM_DateOfLastCalibration, DCM_TimeOfLastCalibration},
    {DCM_ScheduledProcedureStepStartDate, DCM_ScheduledProcedureStepStartTime},
    {DCM_ScheduledProcedureStepEndDate, DCM_ScheduledProcedureStepEndTime},
    {DCM_PerformedProcedureStepStartDate, DCM_PerformedProcedureStepStartTime},
    {DCM_PerformedProcedureStepEndDate, DCM_PerformedProcedureStepEndTime},
    {DCM_IssueDateOfImagingServiceRequest, DCM_IssueTimeOfImagingServiceRequest},
    {DCM_RETIRED_StudyVerifiedDate, DCM_RETIRED_StudyVerifiedTime},
    {DCM_RETIRED_StudyReadDate, DCM_RETIRED_StudyReadTime},
    {DCM_RETIRED_ScheduledStudyStartDate, DCM_RETIRED_ScheduledStudyStartTime},
    {DCM_RETIRED_StudyArrivalDate, DCM_RETIRED_StudyArrivalTime},
    {DCM_RETIRED_StudyCompletionDate, DCM_RETIRED_StudyCompletionTime},
    {DCM_VerificationDateTime, DCM_VerificationDateTime},
};

bool digits(const std::string &s, size_t from, size_t n)
{
    if (s.size() < from + n)
        return false;
    for (size_t i = from; i < from + n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* "HH", "HHMM", "HHMMSS" and a fraction moved by `secs` (0..86399), at the precision it has; the
 * days it carries (0 or 1) in *carry. False when it is no time (the value is left). */
bool shift_time(const std::string &v, long secs, std::string &out, int *carry)
{
    const size_t n = std::min(v.find_first_not_of("0123456789"), v.size());
    if ((n != 2 && n != 4 && n != 6) || !digits(v, 0, n) || (n < v.size() && v[n] != '.'))
        return false;
    const long h = std::stol(v.substr(0, 2)), m = n >= 4 ? std::stol(v.substr(2, 2)) : 0,
               s = n == 6 ? std::stol(v.substr(4, 2)) : 0;
    if (h > 23 || m > 59 || s > 60)
        return false;
    long t = h * 3600 + m * 60 + s + secs;
    *carry = (int)(t / 86400);
    t %= 86400;
    char buf[16];
    snprintf(buf, sizeof buf, "%02ld%02ld%02ld", t / 3600, t / 60 % 60, t % 60);
    out = std::string(buf, n) + v.substr(n);
    return true;
}

/* YYYYMMDD plus `days` (the calendar's), or false. */
bool add_days(std::string &date, int days)
{
    if (!days)
        return true;
    if (date.size() < 8 || !digits(date, 0, 8))
        return false;
    std::tm t{};
    t.tm_year = std::stoi(date.substr(0, 4)) - 1900;
    t.tm_mon = std::stoi(date.substr(4, 2)) - 1;
    t.tm_mday = std::stoi(date.substr(6, 2)) + days;
    t.tm_hour = 12;
    if (timegm(&t) == -1 || t.tm_year + 1900 > 9999)
        return false;
    char buf[40];
    snprintf(buf, sizeof buf, "%04d%02d%02d", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday);
    date.replace(0, 8, buf, 8);
    return true;
}

std::string value_of(DcmElement *el)
{
    OFString v;
    return el->getOFStringArray(v, OFTrue).good() ? std::string(v.c_str()) : std::string();
}

void put(DcmElement *el, const std::string &v)
{
    if (el->putString(v.c_str()).bad())
        bug("cannot store a shifted time");
}

/* A TM element (first value; times rarely have more) moved, its day carried into `date`. */
void shift_tm(DcmElement *tm, DcmElement *date, long secs)
{
    std::string out;
    int carry = 0;
    if (!shift_time(value_of(tm), secs, out, &carry)) {
        put(tm, "000000.00"); /* no time we can move: the profile's dummy */
        return;
    }
    put(tm, out);
    std::string d = date ? value_of(date) : std::string();
    if (carry && date && !d.empty() && add_days(d, carry))
        put(date, d);
}

/* A DT value: its time (after YYYYMMDD) moved, the day carried into its own date. */
void shift_dt(DcmElement *dt, long secs)
{
    std::string v = value_of(dt), out;
    if (v.size() <= 8)
        return; /* a date alone: deid.cc moved it */
    int carry = 0;
    const size_t end = std::min(v.find_first_of("+-", 8), v.size());
    if (!shift_time(v.substr(8, end - 8), secs, out, &carry)) {
        put(dt, "19000101000000");
        return;
    }
    std::string date = v.substr(0, 8);
    if (!add_days(date, carry)) {
        put(dt, "19000101000000");
        return;
    }
    put(dt, date + out + v.substr(end));
}

DcmElement *find(DcmItem *item, const DcmTagKey &k)
{
    DcmElement *el = nullptr;
    return item->findAndGetElement(k, el).good() ? el : nullptr;
}

} // namespace

/* `digits` (YYYY, YYYYMM or YYYYMMDD) moved by `days` in the proleptic Gregorian calendar, at the
 * same precision; false when it is not a date or leaves the years DICOM can write. A partial date
 * moves from its first day. */
bool shift_digits(const std::string &digits, long days, std::string &out)
{
    const size_t n = digits.size();
    const long kMaxShift = 3660000; /* ten thousand years: more is no date */
    if ((n != 4 && n != 6 && n != 8) || days < -kMaxShift || days > kMaxShift ||
        digits.find_first_not_of("0123456789") != std::string::npos)
        return false;
    std::tm t{};
    t.tm_year = std::stoi(digits.substr(0, 4)) - 1900;
    t.tm_mon = n >= 6 ? std::stoi(digits.substr(4, 2)) - 1 : 0;
    t.tm_mday = n == 8 ? std::stoi(digits.substr(6, 2)) : 1;
    t.tm_hour = 12; /* timegm normalises: a 30 February or month 13 comes back changed */
    std::tm same = t;
    if (timegm(&same) == -1 || same.tm_mon != t.tm_mon || same.tm_mday != t.tm_mday)
        return false;
    t.tm_mday += (int)days;
    if (timegm(&t) == -1 || t.tm_year < 1 - 1900 || t.tm_year > 9999 - 1900)
        return false;
    char buf[40]; /* room for any int, though the year is 1..9999 by now */
    snprintf(buf, sizeof buf, "%04d%02d%02d", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday);
    out = std::string(buf, n);
    return true;
}

/* One DA or DT value moved by `days`: DT keeps what follows the date (time, offset). */
bool shift_value(const std::string &v, DcmEVR vr, long days, std::string &out)
{
    std::string date = v, rest;
    if (vr == EVR_DT) {
        const size_t n = std::min(v.find_first_not_of("0123456789"), std::min<size_t>(v.size(), 8));
        date = v.substr(0, n);
        rest = v.substr(n);
        if (n < 8 && !rest.empty() && rest[0] != '+' && rest[0] != '-')
            return false;
    }
    if (!shift_digits(date, days, out))
        return false;
    out += rest;
    return true;
}

void shift_times(DcmItem *top, long secs)
{
    std::vector<DcmItem *> todo{top}; /* a work list: no recursion */
    while (!todo.empty()) {
        DcmItem *item = todo.back();
        todo.pop_back();
        for (DcmElement *el : elements_of(item)) {
            if (el->ident() == EVR_SQ) {
                auto *sq = OFstatic_cast(DcmSequenceOfItems *, el);
                for (unsigned long j = 0; j < sq->card(); j++)
                    todo.push_back(sq->getItem(j));
            } else if (el->ident() == EVR_DT && el->getLength()) {
                shift_dt(el, secs);
            } else if (el->ident() == EVR_TM && el->getLength()) {
                DcmElement *date = nullptr;
                for (const auto &p : kPairs)
                    if (p[1] == el->getTag() && p[0] != p[1])
                        date = find(item, p[0]);
                shift_tm(el, date, secs);
            }
        }
    }
}

} // namespace dcmci

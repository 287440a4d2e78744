/*
 * deid.cc - the PS3.15 Annex E profile and its options at every depth (deid.h), from the table of
 * deid_table.cc; docs/deidentification.md is the conformance statement. The rules:
 *
 * A listed attribute's action: of the options set whose column of its row is not empty, K wins
 * over C and C over the rest; else the Basic Profile's. Retain UIDs is never offered (the caller
 * maps every instance UID). Compound actions keep objects valid without knowing the IOD: X/Z is
 * Z (at most Type 2: it stays, empty); X/D, Z/D and X/Z/D are D (it may be Type 1: a value stays,
 * Device Serial Number is in the Enhanced General Equipment module); U and X/Z/U* leave values to
 * the caller (their sequences are still walked).
 *   X  remove; Overlay Data (60xx,3000) and Curve Data (50xx,xxxx) take their group along (no
 *      incomplete Overlay Plane or Curve module), even for Clean Graphics' C: nothing here reads
 *      text drawn in a bitmap.
 *   Z  empty (a sequence: no items).
 *   D  a dummy: PN "ANONYMOUS", text "ANONYMIZED" cut to the VR, numbers 0, DA 19000101, DT
 *      19000101000000, TM 000000.00, AS 000Y, zero bytes for OB and UN; a sequence keeps its
 *      items, cleaned (emptied, a module that requires one item is not valid), but structured
 *      content (a row with a Clean Structured Content entry) gets no items; UI is the caller's; Modified Dates moves DA and DT, keeps
 *      TM. Empty stays empty. Patient's Name, Patient ID, Other Patient IDs, Accession Number and
 *      Issuer of Patient ID take ctx.pseudonym(tag, value) per value instead, for Z too (Z allows
 *      a dummy), so that studies stay linked.
 *   C  DA and DT move by ctx.date_shift_days in the calendar (DT keeps time and offset; a partial
 *      date moves from its first day, keeping its precision; a non-date gets the dummy); TM stays
 *      here (the caller moves times and carries midnight into dates: deid_time.cc);
 *      text (AE SH LO ST LT UT UC) gets "***" for each identifying value the object held before
 *      any change (2+ character components of all person names, patient IDs, birth date, accession
 *      number, institution name, address, department, station, device serial number, study ID),
 *      case-insensitively, anywhere from 4 characters, as whole words below; PN "ANONYMOUS"; a
 *      sequence's items go through these rules, their unlisted text is cleaned too.
 *   K  keep (a sequence's items still go through the rules, which keep what the options keep).
 * Unlisted: PN "ANONYMOUS" (vendors put names where the table does not look); DA and DT move with
 * Modified Dates, stay with Full Dates, else get the dummy. Private attributes go with their
 * creators at every depth, but for kSafePrivate's with Retain Safe Private. Never touched: the
 * caller's block (0011, "DCMCRYPT 1"), Encrypted Attributes Sequence, Pixel Data, group 0002, the
 * Image Pixel description. A work list walks the items: the pre-scan bounds nesting anyway.
 */
#include "deid.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <set>

namespace dcmci {

namespace {

enum class Act { Keep, Clean, Remove, Empty, Dummy };

/* An option: bit, column in DeidRow::option, PS3.16 CID 7050 code and meaning, Method's word. */
struct OptionInfo {
    unsigned bit;
    int column;
    const char *code, *meaning, *label;
};

const OptionInfo kOptions[] = {
    {DCMC_DEID_SAFE_PRIVATE, 0, "113111", "Retain Safe Private Option", "safe private"},
    {DCMC_DEID_DEVICE, 2, "113109", "Retain Device Identity Option", "device identity"},
    {DCMC_DEID_INSTITUTION, 3, "113112", "Retain Institution Identity Option", "institution"},
    {DCMC_DEID_PATIENT_CHARS, 4, "113108", "Retain Patient Characteristics Option",
     "patient characteristics"},
    {DCMC_DEID_FULL_DATES, 5, "113106",
     "Retain Longitudinal Temporal Information Full Dates Option", "full dates"},
    {DCMC_DEID_MODIFIED_DATES, 6, "113107",
     "Retain Longitudinal Temporal Information Modified Dates Option", "modified dates"},
    {DCMC_DEID_CLEAN_DESCRIPTORS, 7, "113105", "Clean Descriptors Option", "clean descriptors"},
    {DCMC_DEID_CLEAN_STRUCTURED, 8, "113104", "Clean Structured Content Option",
     "clean structured content"},
    {DCMC_DEID_CLEAN_GRAPHICS, 9, "113103", "Clean Graphics Option", "clean graphics"},
};

/* Retain Safe Private: numbers that describe the acquisition and nothing else, from the examples
 * of PS3.15 Table E.3.10-1: creator, group, elements in the block. No text, no sequences. */
struct SafePrivate {
    const char *creator;
    Uint16 group;
    std::vector<Uint8> elements;
};

const SafePrivate kSafePrivate[] = {
    {"GEMS_ACQU_01", 0x0019, {0x23, 0x24, 0x27}},              /* table speed, mid scan, rotation */
    {"GEMS_PARM_01", 0x0043, {0x27, 0x39, 0x6F}},              /* pitch ratio, b value, table */
    {"GEMS_HELIOS_01", 0x0045, {0x01, 0x02}},                  /* macro rows, macro width */
    {"SIEMENS MR HEADER", 0x0019, {0x0C, 0x0D, 0x0E, 0x27}},   /* b value, diffusion, b matrix */
    {"Philips Imaging DD 001", 0x2001, {0x01, 0x02, 0x03, 0x04}}, /* chemical shift, diffusion */
    {"Philips MR Imaging DD 001", 0x2005, {0x0D, 0x0E}},       /* scale intercept and slope */
    {"Philips PET Private Group", 0x7053, {0x00, 0x09}},       /* SUV, activity concentration */
    {"ELSCINT1", 0x00E1, {0x21}},                              /* DLP */
    {"ELSCINT1", 0x01F1, {0x26, 0x27}},                        /* pitch, rotation time */
};

const char *const kOurCreator = "DCMCRYPT 1";
const Uint16 kOurGroup = 0x0011;

const DcmTagKey kPseudonymised[] = {DCM_PatientName, DCM_PatientID, DcmTagKey(0x0010, 0x1000),
                                    DCM_AccessionNumber, DCM_IssuerOfPatientID};

/* Identifying values besides person names, collected before any change for Clean. */
const DcmTagKey kIdentifying[] = {
    DCM_PatientID, DcmTagKey(0x0010, 0x1000), DCM_IssuerOfPatientID, DCM_PatientBirthDate,
    DCM_AccessionNumber, DCM_InstitutionName, DCM_InstitutionAddress, DCM_StationName,
    DCM_InstitutionalDepartmentName, DCM_DeviceSerialNumber, DCM_StudyID};

/* The Image Pixel description: the pixels stay what these say (the table lists none of them). */
const DcmTagKey kPixelDescription[] = {
    DCM_SamplesPerPixel, DCM_PhotometricInterpretation, DCM_PlanarConfiguration, DCM_NumberOfFrames,
    DCM_Rows,            DCM_Columns,                   DCM_BitsAllocated,       DCM_BitsStored,
    DCM_HighBit,         DCM_PixelRepresentation};

template <size_t N> bool listed(const DcmTagKey &k, const DcmTagKey (&list)[N])
{
    return std::find(list, list + N, k) != list + N;
}

const DeidRow *find_exact(Uint16 g, Uint16 e)
{
    const DeidRow *end = kDeidTable + kDeidTableSize;
    const auto before = [](const DeidRow &x, const DcmTagKey &k) {
        return DcmTagKey(x.group, x.element) < k;
    };
    const DeidRow *r = std::lower_bound(kDeidTable, end, DcmTagKey(g, e), before);
    return r != end && r->group == g && r->element == e ? r : nullptr;
}

/* 50xx and 60xx with xx even, 00 to 1E: the repeating groups of curves and overlays. */
bool repeating_group(Uint16 g)
{
    const unsigned base = g & 0xFF00u;
    return (base == 0x5000 || base == 0x6000) && (g & 0xFFu) <= 0x1E && g % 2 == 0;
}

/* The row of an attribute, or null; (50xx,xxxx) is written with element 0 (deid_table.cc). */
const DeidRow *find_row(const DcmTagKey &k)
{
    if (!repeating_group(k.getGroup()))
        return find_exact(k.getGroup(), k.getElement());
    const Uint16 base = k.getGroup() & 0xFF00u;
    const DeidRow *r = find_exact(base, k.getElement());
    r = r ? r : find_exact(base, 0x0000);
    return r && r->group_mask == 0xFF00 ? r : nullptr;
}

Act resolve(const DeidRow &row, unsigned options)
{
    auto precedence = [](const char *x) { return !strcmp(x, "K") ? 2 : !strcmp(x, "C") ? 1 : 0; };
    const char *a = row.basic;
    bool from_option = false;
    for (const OptionInfo &o : kOptions) {
        const char *c = row.option[o.column];
        if ((options & o.bit) && c[0] && (!from_option || precedence(c) > precedence(a))) {
            a = c;
            from_option = true;
        }
    }
    static const std::pair<const char *, Act> kActs[] = {
        {"K", Act::Keep},     {"C", Act::Clean},     {"X", Act::Remove}, {"Z", Act::Empty},
        {"X/Z", Act::Empty},  {"X/Z/D", Act::Dummy}, {"D", Act::Dummy},  {"X/D", Act::Dummy},
        {"Z/D", Act::Dummy},  {"U", Act::Keep},      {"X/Z/U*", Act::Keep}};
    for (const auto &k : kActs)
        if (strcmp(a, k.first) == 0)
            return k.second;
    bug("action \"%s\" of (%04x,%04x) in the profile table is none of PS3.15's", a, row.group,
        row.element);
}

std::string value_of(DcmElement *el)
{
    OFString s; /* values may be read from the file only now: the parse boundary */
    parsing("an attribute value", [&] { return el->getOFStringArray(s, OFTrue); });
    return std::string(s.c_str(), s.length());
}

void put_value(DcmElement *el, const std::string &v)
{
    if (el->putOFStringArray(OFString(v.c_str(), v.size())).bad())
        bug("cannot store a de-identified value in (%04x,%04x)", el->getGTag(), el->getETag());
}

std::vector<std::string> split(const std::string &s, const char *seps)
{
    std::vector<std::string> out;
    for (size_t pos = 0;;) {
        const size_t end = s.find_first_of(seps, pos);
        out.push_back(s.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
        if (end == std::string::npos)
            return out;
        pos = end + 1;
    }
}

std::string join(const std::vector<std::string> &v, const char *sep)
{
    std::string out;
    for (size_t i = 0; i < v.size(); i++)
        out += (i ? sep : "") + v[i];
    return out;
}

/* A value cut to the VR's length. */
std::string fit(std::string v, DcmEVR vr)
{
    const size_t max = vr == EVR_AE || vr == EVR_CS || vr == EVR_SH ? 16
                       : vr == EVR_LO ? 64 : vr == EVR_ST ? 1024 : vr == EVR_LT ? 10240 : v.size();
    v.resize(std::min(v.size(), max));
    return v;
}

/* Each non-empty value (split at `seps`) through `f`, stored back. */
template <class F> void map_values(DcmElement *el, const char *seps, F f)
{
    std::vector<std::string> vals = split(value_of(el), seps);
    for (std::string &v : vals)
        if (!v.empty())
            v = f(v);
    put_value(el, join(vals, "\\"));
}

std::string lower(std::string s)
{
    for (char &c : s)
        c = (char)std::tolower((unsigned char)c);
    return s;
}

/* Every identifying value (lower case, longest first) replaced by "***". */
std::string scrub(const std::string &text, const std::vector<std::string> &ids)
{
    auto word = [](char c) { return std::isalnum((unsigned char)c) != 0; };
    std::string out = text, low = lower(text);
    for (const std::string &id : ids) {
        for (size_t pos = 0; (pos = low.find(id, pos)) != std::string::npos;) {
            const size_t end = pos + id.size();
            if (id.size() < 4 && ((pos > 0 && word(low[pos - 1])) ||
                                  (end < low.size() && word(low[end])))) {
                pos++;
                continue;
            }
            out.replace(pos, id.size(), "***");
            low.replace(pos, id.size(), "***");
            pos += 3;
        }
    }
    return out;
}

const char *date_dummy(DcmEVR vr)
{
    return vr == EVR_DA ? "19000101" : vr == EVR_DT ? "19000101000000" : "000000.00";
}

struct Walker {
    const DeidContext &ctx;
    std::vector<std::string> ids; /* identifying values, lower case, longest first */
    std::vector<std::pair<DcmItem *, bool>> todo; /* and whether inside a cleaned sequence */

    void push_items(DcmElement *el, bool cleaning)
    {
        auto *sq = OFstatic_cast(DcmSequenceOfItems *, el);
        for (unsigned long i = 0; i < sq->card(); i++)
            todo.push_back({sq->getItem(i), cleaning});
    }

    void shift_dates(DcmElement *el)
    {
        const DcmEVR vr = el->ident();
        map_values(el, "\\", [&](const std::string &v) {
            std::string moved;
            return shift_value(v, vr, ctx.date_shift_days, moved) ? moved : date_dummy(vr);
        });
    }

    bool pseudonymise(DcmElement *el)
    {
        if (!ctx.pseudonym || el->getLength() == 0 || !listed(el->getTag(), kPseudonymised))
            return false;
        map_values(el, "\\", [&](const std::string &v) { return ctx.pseudonym(el->getTag(), v); });
        return true;
    }

    void put_dummy(DcmElement *el);
    void apply(DcmItem *item, DcmElement *el, Act act, bool cleaning);
    void unlisted(DcmElement *el, bool cleaning);
    void remove_private(DcmItem *item);
    void remove_graphics(DcmItem *item);
    void walk(DcmItem *item, bool cleaning);
};

void Walker::put_dummy(DcmElement *el)
{
    static const Uint8 kZeros[2] = {0, 0};
    const DcmEVR vr = el->ident();
    if (vr == EVR_SQ) {
        /* Structured content (a Content Sequence: Clean Structured Content is the option that
         * keeps it) becomes no items. Any other dummy sequence is its own items, cleaned, their
         * UIDs mapped by the caller: an emptied sequence that its module requires one item of
         * (a DX's Referenced Performed Procedure Step Sequence) is not valid. */
        const DeidRow *row = find_row(el->getTag());
        if (el->getLength() == 0 || (row && row->option[8][0]))
            el->clear();
        else
            push_items(el, true);
        return;
    }
    if (el->getLength() == 0) {
        el->clear();
        return;
    }
    if (pseudonymise(el) || vr == EVR_UI) /* the caller maps every instance UID */
        return;
    switch (vr) {
    case EVR_PN: put_value(el, "ANONYMOUS"); return;
    case EVR_DA: case EVR_DT: case EVR_TM:
        if (!(ctx.options & DCMC_DEID_MODIFIED_DATES))
            put_value(el, date_dummy(vr));
        else if (vr != EVR_TM)
            shift_dates(el);
        return;
    case EVR_AS: put_value(el, "000Y"); return;
    case EVR_IS: case EVR_DS: case EVR_US: case EVR_SS: case EVR_UL: case EVR_SL: case EVR_FL:
    case EVR_FD: case EVR_UV: case EVR_SV: put_value(el, "0"); return;
    case EVR_OB: case EVR_UN:
        if (el->putUint8Array(kZeros, 2).bad())
            bug("cannot store a dummy byte value");
        return;
    case EVR_AE: case EVR_CS: case EVR_SH: case EVR_LO: case EVR_ST: case EVR_LT: case EVR_UT:
    case EVR_UC: case EVR_UR: put_value(el, fit("ANONYMIZED", vr)); return;
    default: el->clear(); return;
    }
}

void Walker::apply(DcmItem *item, DcmElement *el, Act act, bool cleaning)
{
    switch (act) {
    case Act::Keep:
        if (el->ident() == EVR_SQ)
            push_items(el, cleaning);
        return;
    case Act::Clean: unlisted(el, true); return; /* C does what a cleaned sequence does */
    case Act::Remove: delete item->remove(el); return;
    case Act::Empty:
        if (!pseudonymise(el))
            el->clear();
        return;
    case Act::Dummy: put_dummy(el); return;
    }
}

/* What the table does not list, and C: PN, dates, and in a cleaned sequence text. */
void Walker::unlisted(DcmElement *el, bool cleaning)
{
    const DcmEVR vr = el->ident();
    if (vr == EVR_SQ)
        push_items(el, cleaning);
    else if (vr == EVR_PN && el->getLength())
        put_value(el, "ANONYMOUS");
    else if ((vr == EVR_DA || vr == EVR_DT) && el->getLength() &&
             !(ctx.options & DCMC_DEID_FULL_DATES))
        ctx.options & DCMC_DEID_MODIFIED_DATES ? shift_dates(el) : put_value(el, date_dummy(vr));
    else if (cleaning && el->getLength() &&
             (vr == EVR_AE || vr == EVR_SH || vr == EVR_LO || vr == EVR_ST || vr == EVR_LT ||
              vr == EVR_UT || vr == EVR_UC)) {
        const bool one = vr == EVR_ST || vr == EVR_LT || vr == EVR_UT; /* backslash is text */
        map_values(el, one ? "" : "\\",
                   [&](const std::string &v) { return fit(scrub(v, ids), vr); });
    }
}

/* Odd groups: a data element stays if it is ours or safe (with the option), a creator if its
 * block is ours or still holds a safe element; everything else goes. Backwards, so the data
 * elements (after the creators) are decided first. */
void Walker::remove_private(DcmItem *item)
{
    std::map<std::pair<Uint16, Uint16>, std::string> creators;
    const std::vector<DcmElement *> all = elements_of(item);
    for (DcmElement *el : all) {
        if ((el->getGTag() & 1) && el->getETag() >= 0x10 && el->getETag() <= 0xFF) {
            std::string c = value_of(el);
            c.erase(c.find_last_not_of(" \0", std::string::npos, 2) + 1);
            creators[{el->getGTag(), el->getETag()}] = c;
        }
    }
    const bool safe_option = (ctx.options & DCMC_DEID_SAFE_PRIVATE) != 0;
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        DcmElement *el = *it;
        const Uint16 g = el->getGTag(), e = el->getETag();
        const bool data = e >= 0x1000, creator = e >= 0x10 && e <= 0xFF;
        if (!(g & 1))
            continue;
        const std::string &name = creators[{g, data ? (Uint16)(e >> 8) : e}];
        const auto safe = [&](const SafePrivate &s) {
            const auto present = [&](Uint8 x) {
                return data ? x == (e & 0xFF) : item->tagExists(DcmTagKey(g, (Uint16)(e << 8 | x)));
            };
            return s.group == g && name == s.creator &&
                   std::any_of(s.elements.begin(), s.elements.end(), present);
        };
        const bool keep = (data || creator) &&
                          ((g == kOurGroup && name == kOurCreator) ||
                           (safe_option && std::any_of(std::begin(kSafePrivate),
                                                       std::end(kSafePrivate), safe)));
        if (!keep)
            delete item->remove(el);
    }
}

/* Overlay and curve groups whose data goes, removed whole. */
void Walker::remove_graphics(DcmItem *item)
{
    std::set<Uint16> groups;
    const std::vector<DcmElement *> all = elements_of(item);
    for (DcmElement *el : all) {
        const DcmTagKey k = el->getTag();
        const bool data = repeating_group(k.getGroup()) &&
                          ((k.getGroup() & 0xFF00u) == 0x5000 || k.getElement() == 0x3000);
        const DeidRow *row = data ? find_row(k) : nullptr;
        const Act act = row ? resolve(*row, ctx.options) : Act::Keep;
        if (act == Act::Remove || act == Act::Clean)
            groups.insert(k.getGroup());
    }
    for (DcmElement *el : all)
        if (groups.count(el->getGTag()))
            delete item->remove(el);
}

bool untouchable(const DcmTagKey &k)
{
    const Uint16 g = k.getGroup();
    return g == 0x0002 || (g & 1) || k == DCM_PixelData || k == DCM_EncryptedAttributesSequence ||
           listed(k, kPixelDescription);
}

void Walker::walk(DcmItem *item, bool cleaning)
{
    remove_private(item);
    remove_graphics(item);
    const std::vector<DcmElement *> all = elements_of(item);
    for (auto it = all.rbegin(); it != all.rend(); ++it) {
        DcmElement *el = *it;
        if (untouchable(el->getTag()))
            continue;
        if (const DeidRow *row = find_row(el->getTag()))
            apply(item, el, resolve(*row, ctx.options), cleaning);
        else
            unlisted(el, cleaning);
    }
}

void add_values(std::vector<std::string> &ids, const std::string &v, const char *seps)
{
    for (const std::string &p : split(v, seps))
        if (p.size() >= 2)
            ids.push_back(lower(p));
}

/* What Clean looks for: identifying values anywhere in the object as it came. */
std::vector<std::string> identifying_values(DcmDataset *ds)
{
    std::vector<std::string> ids;
    for (std::vector<DcmItem *> todo{ds}; !todo.empty();) {
        DcmItem *item = todo.back();
        todo.pop_back();
        for (DcmElement *el : elements_of(item)) {
            const DcmTagKey k = el->getTag();
            if (el->ident() == EVR_SQ && k != DCM_EncryptedAttributesSequence) {
                auto *sq = OFstatic_cast(DcmSequenceOfItems *, el);
                for (unsigned long j = 0; j < sq->card(); j++)
                    todo.push_back(sq->getItem(j));
            } else if (el->ident() == EVR_PN || listed(k, kIdentifying)) {
                const std::string v = value_of(el);
                add_values(ids, v, "\\");
                if (el->ident() == EVR_PN)
                    add_values(ids, v, "\\^= ,");
                if (k == DCM_PatientBirthDate && v.size() == 8) /* as people write it */
                    add_values(ids, v.substr(0, 4) + "-" + v.substr(4, 2) + "-" + v.substr(6), "");
            }
        }
    }
    std::sort(ids.begin(), ids.end(), [](const std::string &a, const std::string &b) {
        return a.size() != b.size() ? a.size() > b.size() : a < b;
    });
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

void put(DcmItem *item, const DcmTagKey &k, const std::string &v)
{
    if (item->putAndInsertString(k, v.c_str()).bad())
        bug("cannot set (%04x,%04x)", k.getGroup(), k.getElement());
}

/* De-identification Method: phrases packed into values of at most 64 characters (LO); a longer
 * phrase (the caller's method) is cut. */
std::string method_values(const DeidContext &ctx)
{
    std::vector<std::string> phrases = {"PS3.15 E Basic Profile;", "options:"};
    for (const OptionInfo &o : kOptions)
        if (ctx.options & o.bit)
            phrases.push_back(std::string(o.label) + ",");
    if (phrases.size() == 2)
        phrases.emplace_back("none,");
    phrases.back().back() = ';';
    std::string method;
    for (char c : ctx.method) /* a backslash would split the value, controls are not LO */
        method += c == '\\' || (unsigned char)c < 0x20 ? ' ' : c;
    phrases.push_back(method);
    std::vector<std::string> values{std::string()};
    for (const std::string &phrase : phrases)
        for (size_t at = 0; at < phrase.size(); at += 64) {
            const std::string p = phrase.substr(at, 64);
            if (!values.back().empty() && values.back().size() + 1 + p.size() > 64)
                values.emplace_back();
            values.back() += (values.back().empty() ? "" : " ") + p;
        }
    return join(values, "\\");
}

void mark(DcmDataset *ds, const DeidContext &ctx)
{
    put(ds, DCM_PatientIdentityRemoved, "YES");
    put(ds, DCM_DeidentificationMethod, method_values(ctx));
    delete ds->remove(DCM_DeidentificationMethodCodeSequence);
    auto add_code = [&](const char *value, const char *meaning) {
        DcmItem *it = nullptr;
        if (ds->findOrCreateSequenceItem(DCM_DeidentificationMethodCodeSequence, it, -2).bad() ||
            !it)
            bug("cannot add to the De-identification Method Code Sequence");
        put(it, DCM_CodeValue, value);
        put(it, DCM_CodingSchemeDesignator, "DCM");
        put(it, DCM_CodeMeaning, meaning);
    };
    add_code("113100", "Basic Application Confidentiality Profile");
    for (const OptionInfo &o : kOptions)
        if (ctx.options & o.bit)
            add_code(o.code, o.meaning);
    const DcmTagKey ltim = DCM_LongitudinalTemporalInformationModified;
    if (ctx.options & (DCMC_DEID_MODIFIED_DATES | DCMC_DEID_FULL_DATES))
        put(ds, ltim, ctx.options & DCMC_DEID_MODIFIED_DATES ? "MODIFIED" : "UNMODIFIED");
    else
        delete ds->remove(ltim);
}

} // namespace

void deidentify(DcmDataset *ds, const DeidContext &ctx)
{
    unsigned known = 0;
    for (const OptionInfo &o : kOptions)
        known |= o.bit;
    if (ctx.options & ~known)
        fail(DCMC_ERR_ARG, "unknown de-identification options 0x%x (Retain UIDs is not offered)",
             ctx.options & ~known);
    if ((ctx.options & DCMC_DEID_FULL_DATES) && (ctx.options & DCMC_DEID_MODIFIED_DATES))
        fail(DCMC_ERR_ARG, "the full dates and modified dates options exclude each other");
    Walker w{ctx, identifying_values(ds), {{ds, false}}};
    while (!w.todo.empty()) {
        const auto next = w.todo.back();
        w.todo.pop_back();
        w.walk(next.first, next.second);
    }
    mark(ds, ctx);
}

} // namespace dcmci

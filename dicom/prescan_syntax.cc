/*
 * prescan_syntax.cc - what the prescan needs to know of DCMTK's VRs and transfer syntaxes: how
 * DCMTK 3.6.7 reads an explicit VR's two bytes, and which encoding a Transfer Syntax UID selects
 * (prescan_scan.h).
 */
#include "prescan_scan.h"

#include <cstring>

namespace dcmci {
namespace prescan {

namespace {

bool vr_is(uint8_t c1, uint8_t c2, const char *const *names)
{
    for (; *names; names++)
        if ((*names)[0] == (char)c1 && (*names)[1] == (char)c2)
            return true;
    return false;
}

const char *const kStandardVrs[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD",
                                    "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV", "OW",
                                    "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC",
                                    "UI", "UL", "UN", "UR", "US", "UT", "UV", nullptr};

} // namespace

Vr classify_vr(uint8_t c1, uint8_t c2, bool pixel_data)
{
    static const char *const obow[] = {"OB", "OW", "ox", nullptr};
    static const char *const longs[] = {"OD", "OF", "OL", "OV", "SV", "UC",
                                        "UR", "UT", "UV", "lt", nullptr};
    static const char *const shorts[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FL", "FD",
                                         "IS", "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM",
                                         "UI", "UL", "US", "xs", "na", "up", "pi", nullptr};
    if (c1 == 'S' && c2 == 'Q')
        return Vr::SQ;
    if (c1 == 'U' && c2 == 'N')
        return Vr::UN;
    if (c1 == 'p' && c2 == 'x')
        return Vr::PX;
    if (vr_is(c1, c2, obow))
        return Vr::OBOW;
    if (vr_is(c1, c2, longs))
        return Vr::Long;
    if (vr_is(c1, c2, shorts))
        return Vr::Short;
    if (c1 >= 'A' && c1 <= 'Z' && c2 >= 'A' && c2 <= 'Z')
        /* DCMTK turns the known misspelling "OX" of Pixel Data into OW. */
        return pixel_data && c1 == 'O' && c2 == 'X' ? Vr::OBOW : Vr::Future;
    return Vr::Short; /* "??", lower case, digits...: DCMTK assumes a 2-byte length */
}

/* DcmItem::foundVR: the transfer syntax guess calls a data set explicit when bytes 4..5 of
 * its first element are a standard VR name. */
bool standard_vr(uint8_t c1, uint8_t c2)
{
    return vr_is(c1, c2, kStandardVrs);
}

/* ---- transfer syntaxes -------------------------------------------------------------------- */

/* Every transfer syntax DCMTK 3.6.7 knows (dcxfer.cc) besides the four special ones below:
 * all explicit VR little endian. A UID not in this list makes DCMTK guess the encoding. */
const char *const kExplicitLittleSyntaxes[] = {
    "1.2.840.10008.1.2.1",     "1.2.840.10008.1.2.4.50",  "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.52",  "1.2.840.10008.1.2.4.53",  "1.2.840.10008.1.2.4.54",
    "1.2.840.10008.1.2.4.55",  "1.2.840.10008.1.2.4.56",  "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.58",  "1.2.840.10008.1.2.4.59",  "1.2.840.10008.1.2.4.60",
    "1.2.840.10008.1.2.4.61",  "1.2.840.10008.1.2.4.62",  "1.2.840.10008.1.2.4.63",
    "1.2.840.10008.1.2.4.64",  "1.2.840.10008.1.2.4.65",  "1.2.840.10008.1.2.4.66",
    "1.2.840.10008.1.2.4.70",  "1.2.840.10008.1.2.5",     "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",  "1.2.840.10008.1.2.4.90",  "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.92",  "1.2.840.10008.1.2.4.93",  "1.2.840.10008.1.2.4.94",
    "1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.102",
    "1.2.840.10008.1.2.4.103", "1.2.840.10008.1.2.4.104", "1.2.840.10008.1.2.4.105",
    "1.2.840.10008.1.2.4.106", "1.2.840.10008.1.2.4.107", "1.2.840.10008.1.2.4.108",
    nullptr};

namespace {

uint8_t syntax_bits(const std::string &uid)
{
    if (uid.empty()) /* DCMTK's "Virtual Big Endian Implicit" has the UID "" (dcxfer.cc) */
        return kTsImplBE | kTsGuess;
    if (uid == "1.2.840.10008.1.2" || uid == "1.2.840.113619.5.2") /* GE private: implicit LE */
        return kTsImplLE;
    if (uid == "1.2.840.10008.1.2.2")
        return kTsExplBE;
    if (uid == "1.2.840.10008.1.2.1.99" || uid == "1.2.840.10008.1.2.4.95") /* JPIP deflate */
        return kTsDeflate;
    for (const char *const *u = kExplicitLittleSyntaxes; *u; u++)
        if (uid == *u)
            return kTsExplLE;
    return kTsGuess;
}

} // namespace

/* The UID as DCMTK compares it: a C string (up to the first NUL) with white space removed
 * (dcvrui.cc), so that padding alone selects implicit VR big endian; also as other VRs would
 * keep it (a crafted meta group may give it another VR): unchanged, or without trailing spaces.
 * Every reading counts. */
uint8_t syntax_bits_of_value(const uint8_t *v, size_t n)
{
    std::string raw((const char *)v, strnlen((const char *)v, n));
    std::string nows, trimmed = raw;
    for (char c : raw)
        if (!(c == ' ' || (c >= '\t' && c <= '\r')))
            nows += c;
    while (!trimmed.empty() && trimmed.back() == ' ')
        trimmed.pop_back();
    return (uint8_t)(syntax_bits(nows) | syntax_bits(trimmed) | syntax_bits(raw));
}

} // namespace prescan
} // namespace dcmci

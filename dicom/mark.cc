/*
 * mark.cc - what the encrypted object shows instead of the original (docs/dicom.md, "The
 * encrypted object"): every instance UID through the keyed map at every depth, nothing in clear
 * that describes the original pixels (removed attributes, blanked overlays, vendor private
 * elements, VOI windows at every depth replaced by one covering the cipher values), and what
 * says "encrypted" where people and archives look (Image Type, Series Description, Image
 * Comments). The originals of everything changed here are kept by protect.cc, which compares
 * the dataset before and after.
 */
#include "internal.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cmath>
#include <cstring>

namespace dcmci {

namespace {

const char *const kMarker =
    "ENCRYPTED PIXEL DATA (dcmcrypt): not for diagnosis; restore with dcmdecrypt";
const char *const kSeriesMarker = "ENCRYPTED (dcmcrypt)";
const char *const kDerivation = "Pixel data encrypted by dcmcrypt";
const char *const kWindowMarker = "DCMCRYPT CIPHER VALUES";

/* Attributes that show or describe the original pixels and have no place in the encrypted
 * object (the Histogram Sequence too: it is the pixel distribution). */
const DcmTagKey kRemoved[] = {
    DCM_IconImageSequence,          DCM_SmallestImagePixelValue,   DCM_LargestImagePixelValue,
    DCM_SmallestPixelValueInSeries, DCM_LargestPixelValueInSeries, DCM_PixelPaddingValue,
    DCM_PixelPaddingRangeLimit,     DCM_VOILUTSequence,            DCM_HistogramSequence,
    /* Trailing padding means nothing (PS3.10 7.2) and its bytes are whatever the writer left;
     * archives drop it (Orthanc does). It goes into the protected originals, so decryption
     * puts it back exactly, whatever an archive did to the encrypted copy. */
    DCM_DataSetTrailingPadding,
};

/* UI attributes that name a class, a transfer syntax, a coding scheme or an organisation's
 * definitions rather than an instance: they stay. Every other UI value is an instance UID. */
const DcmTagKey kClassUids[] = {
    DCM_SOPClassUID,
    DCM_ReferencedSOPClassUID,
    DCM_CodingSchemeUID,
    DCM_ReferencedSOPClassUIDInFile,
    DCM_ReferencedTransferSyntaxUIDInFile,
    DCM_RelatedGeneralSOPClassUID,
    DCM_OriginalSpecializedSOPClassUID,
    DCM_SOPClassesInStudy,
    DCM_EncryptedContentTransferSyntaxUID,
    DCM_MACCalculationTransferSyntaxUID,
    DCM_TransferSyntaxUID,
    DCM_MediaStorageSOPClassUID,
    DCM_ImplementationClassUID,
};

bool is_class_uid(const DcmTagKey &k)
{
    for (const DcmTagKey &c : kClassUids)
        if (c == k)
            return true;
    return false;
}

std::string mapped_uid(const uint8_t uid_key[32], const std::string &old)
{
    char mapped[65];
    dcmc_status st = dcmc_uid_map(uid_key, old.c_str(), mapped);
    if (st != DCMC_OK)
        fail(st, "cannot derive a new UID: %s", dcmc_status_str(st));
    return mapped;
}

/* The map's domain for a UID attribute. Series and frames of reference get their own, so that
 * an original that wrongly reuses one UID in two roles (a Series or Frame of Reference UID equal
 * to the Study UID: dciodvfy's error) does not make the encrypted object reuse it too; every
 * attribute that holds such a UID is of that domain, so references still resolve. Studies and
 * instances share the plain domain (a Referenced Study Sequence names a study by Referenced SOP
 * Instance UID). */
const char *uid_domain(const DcmTagKey &k)
{
    static const DcmTagKey kFrameOfReference[] = {
        DCM_FrameOfReferenceUID,           DCM_RETIRED_RelatedFrameOfReferenceUID,
        DCM_ReferencedFrameOfReferenceUID, DCM_SourceFrameOfReferenceUID,
        DcmTagKey(0x0020, 0x3010), /* Related Frame of Reference UID (retired) */
    };
    if (k == DCM_SeriesInstanceUID)
        return "dcmcrypt/series:";
    for (const DcmTagKey &f : kFrameOfReference)
        if (f == k)
            return "dcmcrypt/frame-of-reference:";
    return "";
}

/* One UI element's values, each through the map; well-known UIDs of the standard (a
 * synchronisation frame of reference, a coding scheme...) name no instance and stay. */
void map_element(DcmElement *el, const uint8_t uid_key[32])
{
    /* A domain's own key: HMAC-SHA256(uid_key, domain); the plain domain uses uid_key itself. */
    const char *domain = uid_domain(el->getTag());
    Uint8 dk[32];
    unsigned int dn = 32;
    if (*domain && (!HMAC(EVP_sha256(), uid_key, 32, reinterpret_cast<const Uint8 *>(domain),
                          strlen(domain), dk, &dn) ||
                    dn != 32))
        fail(DCMC_ERR_CRYPTO, "HMAC-SHA256 failed");
    const uint8_t *key = *domain ? dk : uid_key;
    OFString all;
    if (el->getOFStringArray(all, OFTrue).bad() || all.empty())
        return;
    std::string out, v;
    const std::string s(all.c_str());
    size_t pos = 0;
    for (;;) {
        const size_t end = s.find('\\', pos);
        v = s.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
        if (!out.empty() || pos)
            out += '\\';
        out += v.empty() || v.rfind("1.2.840.10008.", 0) == 0 ? v : mapped_uid(key, v);
        if (end == std::string::npos)
            break;
        pos = end + 1;
    }
    dcmc_wipe(dk, sizeof dk);
    if (el->putString(out.c_str()).bad())
        bug("cannot store a mapped UID");
}

/* NOLINTNEXTLINE(misc-no-recursion): one level per sequence; the pre-scan bounds nesting at 64 */
void map_item(DcmItem *item, const uint8_t uid_key[32])
{
    for (DcmElement *el : elements_of(item)) {
        if (el->ident() == EVR_SQ) {
            auto *sq = OFstatic_cast(DcmSequenceOfItems *, el);
            for (unsigned long j = 0; j < sq->card(); j++)
                map_item(sq->getItem(j), uid_key);
        } else if (el->ident() == EVR_UI && !is_class_uid(el->getTag())) {
            map_element(el, uid_key);
        }
    }
}

/* Vendor private elements, creators included, at every depth: they hold whatever the vendor
 * put there (image statistics, histograms, thumbnails, names), so none stays in clear. */
/* NOLINTNEXTLINE(misc-no-recursion): one level per sequence; the pre-scan bounds nesting at 64 */
void remove_private(DcmItem *item)
{
    for (DcmElement *el : elements_of(item)) {
        if (el->getTag().isPrivate() || el->getTag().isPrivateReservation()) {
            delete item->remove(el);
            continue;
        }
        if (el->ident() == EVR_SQ) {
            auto *sq = OFstatic_cast(DcmSequenceOfItems *, el);
            for (unsigned long j = 0; j < sq->card(); j++)
                remove_private(sq->getItem(j));
        }
    }
}

/* ACR-NEMA objects may lack these; a DICOM image needs them (PS3.3 C.7.6.3). */
void add_missing_image_attributes(DcmDataset *ds, const dcmc_layout &l)
{
    if (!ds->tagExists(DCM_SamplesPerPixel))
        ds->putAndInsertUint16(DCM_SamplesPerPixel, (Uint16)l.samples);
    if (!ds->tagExists(DCM_PhotometricInterpretation) && l.samples == 1)
        ds->putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
    if (get_string(ds, DCM_SOPClassUID).empty()) {
        const std::string mod = get_string(ds, DCM_Modality);
        const char *cls = mod == "CT"   ? UID_CTImageStorage
                          : mod == "MR" ? UID_MRImageStorage
                          : mod == "CR" ? UID_ComputedRadiographyImageStorage
                          : mod == "US" ? UID_UltrasoundImageStorage
                                        : UID_SecondaryCaptureImageStorage;
        ds->putAndInsertString(DCM_SOPClassUID, cls);
    }
}

/* An ACR-NEMA object without a SOP Instance UID still needs one: nothing to map, so a random
 * one (2.25 and 128 random bits), kept only until decryption removes it again. */
void add_missing_sop_uid(DcmDataset *ds)
{
    if (!get_string(ds, DCM_SOPInstanceUID).empty())
        return;
    /* dcmc_uid_map under a random key gives exactly that: "2.25." and 128 random bits. */
    Uint8 r[32];
    if (RAND_bytes(r, sizeof r) != 1)
        fail(DCMC_ERR_CRYPTO, "no random bytes for a new SOP Instance UID");
    ds->putAndInsertString(DCM_SOPInstanceUID, mapped_uid(r, "dcmcrypt-acr-nema").c_str());
    dcmc_wipe(r, sizeof r);
}

/* Overlay bitmaps are blanked, not removed: the Overlay Plane module stays complete. */
void blank_overlays(DcmDataset *ds)
{
    for (DcmElement *el : elements_of(ds)) {
        if (is_overlay_data(el->getTag())) {
            std::vector<Uint8> zero(el->getLength(), 0);
            if (el->getVR() == EVR_OW)
                el->putUint16Array(reinterpret_cast<const Uint16 *>(zero.data()), zero.size() / 2);
            else
                el->putUint8Array(zero.data(), zero.size());
        }
    }
}

struct Rescale {
    double slope = 1, intercept = 0;
};

/* The rescale an item gives its frames: its own Rescale Slope/Intercept, or those of its Pixel
 * Value Transformation Sequence (enhanced objects' functional groups). */
bool rescale_in(DcmItem *item, Rescale &r)
{
    DcmItem *pvt = nullptr;
    DcmItem *src = item->tagExists(DCM_RescaleSlope) ? item : nullptr;
    if (!src && item->findAndGetSequenceItem(DCM_PixelValueTransformationSequence, pvt, 0).good())
        src = pvt;
    if (!src || !src->tagExists(DCM_RescaleSlope))
        return false;
    Float64 m = 1, b = 0;
    src->findAndGetFloat64(DCM_RescaleSlope, m);
    src->findAndGetFloat64(DCM_RescaleIntercept, b);
    if (!std::isfinite(m) || !std::isfinite(b) || m == 0)
        return false;
    r.slope = m;
    r.intercept = b;
    return true;
}

std::string ds_value(double v)
{
    char buf[32];
    for (int prec = 10; prec > 1; prec--) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strlen(buf) <= 16)
            break;
    }
    return buf;
}

/* Does any value of the item's `tag` (a DS list) equal v? */
bool has_value(DcmItem *item, const DcmTagKey &tag, double v)
{
    Float64 x = 0;
    for (unsigned long i = 0; item->findAndGetFloat64(tag, x, i).good(); i++)
        if (std::fabs(x - v) < 1e-6 * (1 + std::fabs(v)))
            return true;
    return false;
}

/* The window that shows the cipher values, uniform over the stored range lo..hi, as even grey:
 * centre on the range's midpoint, width its span (through the rescale). It depends on Bits
 * Stored, the sign and the rescale only, never on the pixels. An original window that already
 * spanned the whole range would come out the same, and a reader could not tell a kept window
 * from ours: then the width (or centre) moves by one stored value (half of one), which still
 * covers the cipher values, so no original window value ever appears in the encrypted object. */
void put_cipher_window(DcmItem *item, const dcmc_layout &l, const Rescale &r)
{
    const double span = std::ldexp(1.0, (int)l.bits_stored);
    const double lo = l.is_signed ? -span / 2 : 0, hi = lo + span - 1;
    double c = r.intercept + r.slope * (lo + hi) / 2, w = std::fabs(r.slope) * (hi - lo);
    if (has_value(item, DCM_WindowWidth, w))
        w += std::fabs(r.slope);
    if (has_value(item, DCM_WindowCenter, c))
        c += std::fabs(r.slope) / 2;
    item->putAndInsertString(DCM_WindowCenter, ds_value(c).c_str());
    item->putAndInsertString(DCM_WindowWidth, ds_value(w).c_str());
    item->putAndInsertString(DCM_WindowCenterWidthExplanation, kWindowMarker);
    item->findAndDeleteElement(DCM_VOILUTFunction);
}

/* Every VOI window at every depth (per-frame ones of enhanced objects too) replaced. */
/* NOLINTNEXTLINE(misc-no-recursion): one level per sequence; the pre-scan bounds nesting at 64 */
void replace_windows(DcmItem *item, const dcmc_layout &l, Rescale r)
{
    rescale_in(item, r);
    item->findAndDeleteElement(DCM_VOILUTSequence);
    if (item->tagExists(DCM_WindowCenter) || item->tagExists(DCM_WindowWidth))
        put_cipher_window(item, l, r);
    for (DcmElement *el : elements_of(item)) {
        if (el->ident() != EVR_SQ)
            continue;
        auto *sq = OFstatic_cast(DcmSequenceOfItems *, el);
        for (unsigned long j = 0; j < sq->card(); j++)
            replace_windows(sq->getItem(j), l, r);
    }
}

/* Enhanced (multi-frame functional group) objects: by their functional groups, or by their SOP
 * class when a writer left the groups out. */
bool is_enhanced(DcmDataset *ds)
{
    if (ds->tagExists(DCM_SharedFunctionalGroupsSequence) ||
        ds->tagExists(DCM_PerFrameFunctionalGroupsSequence))
        return true;
    const char *name = dcmFindNameOfUID(get_string(ds, DCM_SOPClassUID).c_str(), "");
    return strstr(name, "Enhanced") || strstr(name, "LegacyConverted") ||
           strstr(name, "Legacy Converted");
}

void windows(DcmDataset *ds, const dcmc_layout &l)
{
    Rescale r;
    DcmItem *shared = nullptr;
    if (!rescale_in(ds, r) &&
        ds->findAndGetSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0).good())
        rescale_in(shared, r);
    const bool mono = get_string(ds, DCM_PhotometricInterpretation).rfind("MONOCHROME", 0) == 0;
    if (!mono) {
        ds->findAndDeleteElement(DCM_WindowCenter);
        ds->findAndDeleteElement(DCM_WindowWidth);
        ds->findAndDeleteElement(DCM_WindowCenterWidthExplanation);
    }
    replace_windows(ds, l, r);
    /* Viewers show the noise as even grey rather than a guess; enhanced objects keep their
     * windows in the functional groups only, so one without any gets the cipher window in the
     * shared group. The window's explanation is also the mark that anonymizers leave (they
     * remove descriptions, comments and our block; enhanced Image Types are never marked). */
    if (!mono)
        return;
    if (ds->tagExists(DCM_WindowCenter, OFTrue))
        return;
    /* An enhanced object whose writer left the functional groups out gets it at the top. */
    DcmItem *voi = ds;
    if (is_enhanced(ds) &&
        ds->findAndGetSequenceItem(DCM_SharedFunctionalGroupsSequence, shared, 0).good() &&
        shared && shared->findOrCreateSequenceItem(DCM_FrameVOILUTSequence, voi, 0).bad())
        return;
    put_cipher_window(voi, l, r);
}

/* Image Type of a classic object: DERIVED\SECONDARY and a last value ENCRYPTED. Enhanced
 * objects keep theirs: their IODs fix the values (value 2 PRIMARY only in Enhanced MR) and make
 * attributes conditional on ORIGINAL, so DERIVED would make a valid object invalid; for them
 * Series Description, Image Comments and Derivation Description carry the mark. */
void derived_type(DcmItem *item)
{
    OFString all;
    std::vector<std::string> v;
    if (item->findAndGetOFStringArray(DCM_ImageType, all).good() && !all.empty()) {
        std::string s(all.c_str());
        for (size_t pos = 0;;) {
            const size_t end = s.find('\\', pos);
            v.push_back(s.substr(pos, end == std::string::npos ? end : end - pos));
            if (end == std::string::npos)
                break;
            pos = end + 1;
        }
    }
    if (v.size() < 2)
        v.resize(2);
    v[0] = "DERIVED";
    v[1] = "SECONDARY";
    v.push_back("ENCRYPTED");
    std::string out;
    for (size_t i = 0; i < v.size(); i++)
        out += (i ? "\\" : "") + v[i];
    item->putAndInsertString(DCM_ImageType, out.c_str());
}

void say_encrypted(DcmDataset *ds)
{
    if (!is_enhanced(ds))
        derived_type(ds);
    std::string desc = kSeriesMarker;
    const std::string old = get_string(ds, DCM_SeriesDescription);
    if (!old.empty())
        desc = (desc + " " + old).substr(0, 64);
    ds->putAndInsertString(DCM_SeriesDescription, desc.c_str());
    ds->putAndInsertString(DCM_ImageComments, kMarker);
    ds->putAndInsertString(DCM_DerivationDescription,
                           (std::string(kDerivation) + " (AT-ResNet-CM); not for diagnosis").c_str());
}

} // namespace

std::string encryption_mark(DcmItem *ds)
{
    const std::string type = get_string(ds, DCM_ImageType);
    if (type.size() >= 10 && type.compare(type.size() - 10, 10, "\\ENCRYPTED") == 0)
        return "Image Type " + type;
    if (get_string(ds, DCM_SeriesDescription).rfind(kSeriesMarker, 0) == 0)
        return std::string("Series Description ") + kSeriesMarker;
    if (get_string(ds, DCM_ImageComments).rfind(kMarker, 0) == 0)
        return "Image Comments";
    if (get_string(ds, DCM_DerivationDescription).rfind(kDerivation, 0) == 0)
        return "Derivation Description";
    /* At any depth: enhanced objects keep their windows (and ours) in functional groups, and
     * anonymizers leave windows alone. */
    OFString win;
    const bool has_win = parsing("an attribute value", [&] {
        return ds->findAndGetOFString(DCM_WindowCenterWidthExplanation, win, 0, OFTrue).good();
    });
    if (has_win && std::string(win.c_str()).find(kWindowMarker) != std::string::npos)
        return std::string("window explanation ") + kWindowMarker;
    return std::string();
}

void map_instance_uids(DcmItem *item, const uint8_t uid_key[32])
{
    map_item(item, uid_key);
}

void mark_encrypted(DcmDataset *ds, const dcmc_layout &l, const uint8_t uid_key[32],
                    bool keep_private)
{
    for (const DcmTagKey &k : kRemoved)
        ds->findAndDeleteElement(k);
    if (!keep_private)
        remove_private(ds);
    add_missing_image_attributes(ds, l);
    blank_overlays(ds);
    windows(ds, l);
    say_encrypted(ds);
    map_item(ds, uid_key);
    add_missing_sop_uid(ds);
}

} // namespace dcmci

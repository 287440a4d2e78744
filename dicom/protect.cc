/*
 * protect.cc - the protected bytes that carry, encrypted in the payload, what encryption changed
 * (docs/dicom.md, "Protected attributes"): the original transfer syntax, the pixel data tail,
 * the original value of every top-level attribute the encrypted object shows differently, and the
 * digests of the attributes it leaves in clear but binds to the MAC. And the way back.
 *
 * Version 3 (this release) finds what changed by comparing the dataset before and after the
 * changes (canonical digests, canon.cc), so the de-identification profile, the UID map at every
 * depth and the marks need no list of their own here. Versions 1 and 2 (release 0.1) listed the
 * attributes they touched; restoring them uses that list (kTouchedV1), unchanged.
 */
#include "internal.h"

#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcostrmb.h"

#include <cstring>
#include <map>
#include <set>

namespace dcmci {

namespace {

/* What formats 1 and 2 changed: their readers delete these before inserting the originals. */
const DcmTagKey kTouchedV1[] = {
    DCM_SOPInstanceUID,           DCM_SeriesInstanceUID,        DCM_ImageComments,
    DCM_DerivationDescription,    DCM_IconImageSequence,        DCM_SmallestImagePixelValue,
    DCM_LargestImagePixelValue,   DCM_SmallestPixelValueInSeries, DCM_LargestPixelValueInSeries,
    DCM_PixelPaddingValue,        DCM_PixelPaddingRangeLimit,   DCM_VOILUTSequence,
    DCM_SamplesPerPixel,          DCM_PhotometricInterpretation, DCM_SOPClassUID,
};

/* The attributes the encrypted object leaves in clear that give the image its identity and its
 * meaning: whose it is, which object it is (its own SOP Instance UID, so that pixels and block
 * cannot move to another object), where it lies, and how stored values become physical ones.
 * Their digests travel in the protected bytes; a change after encryption is an integrity
 * failure. Order is part of format 3. */
const DcmTagKey kBound[] = {
    DCM_PatientName, DCM_PatientID, DCM_IssuerOfPatientID, DCM_OtherPatientIDsSequence,
    DCM_PatientBirthDate, DCM_PatientSex, DCM_PatientAge, DCM_PatientWeight,
    DCM_StudyInstanceUID, DCM_SeriesInstanceUID, DCM_SOPInstanceUID, DCM_SOPClassUID,
    DCM_FrameOfReferenceUID, DCM_Modality, DCM_AccessionNumber, DCM_StudyDate,
    DCM_ImageType, DCM_PhotometricInterpretation, DCM_NumberOfFrames,
    DCM_ImagePositionPatient, DCM_ImageOrientationPatient, DCM_PatientOrientation,
    DCM_PixelSpacing, DCM_ImagerPixelSpacing, DCM_NominalScannedPixelSpacing,
    DCM_PixelAspectRatio, DCM_SliceThickness, DCM_SpacingBetweenSlices, DCM_SliceLocation,
    DCM_Laterality, DCM_ImageLaterality, DCM_ViewPosition, DCM_BodyPartExamined,
    DCM_RescaleSlope, DCM_RescaleIntercept, DCM_RescaleType, DCM_ModalityLUTSequence,
    DCM_WindowCenter, DCM_WindowWidth, DCM_VOILUTFunction, DCM_PresentationLUTShape,
    DCM_PixelIntensityRelationship, DCM_PixelIntensityRelationshipSign,
    DCM_RedPaletteColorLookupTableDescriptor, DCM_GreenPaletteColorLookupTableDescriptor,
    DCM_BluePaletteColorLookupTableDescriptor, DCM_RedPaletteColorLookupTableData,
    DCM_GreenPaletteColorLookupTableData, DCM_BluePaletteColorLookupTableData,
    DCM_SegmentedRedPaletteColorLookupTableData, DCM_SegmentedGreenPaletteColorLookupTableData,
    DCM_SegmentedBluePaletteColorLookupTableData, DCM_Units, DCM_RealWorldValueMappingSequence,
    DCM_SequenceOfUltrasoundRegions, DCM_SharedFunctionalGroupsSequence,
    DCM_PerFrameFunctionalGroupsSequence, DCM_LossyImageCompression,
    DCM_PatientIdentityRemoved, DCM_EncryptedAttributesSequence,
};
constexpr size_t kBoundDigest = 16; /* bytes of each SHA-256 kept: a forgery needs 2^128 work */

void put32(std::vector<Uint8> &b, Uint32 v)
{
    for (int i = 0; i < 4; i++)
        b.push_back((Uint8)(v >> (8 * i)));
}

Uint32 get32(const Uint8 *p)
{
    return (Uint32)p[0] | (Uint32)p[1] << 8 | (Uint32)p[2] << 16 | (Uint32)p[3] << 24;
}

Uint32 tag32(const DcmTagKey &k)
{
    return (Uint32)k.getGroup() << 16 | k.getElement();
}

/* The bound digest of one attribute as `ds` holds it; absent is its own value. */
void bound_digest(DcmDataset *ds, const DcmTagKey &k, Uint8 out[kBoundDigest])
{
    DcmElement *el = nullptr;
    Uint8 d[32];
    if (ds->findAndGetElement(k, el).good() && el)
        element_digest(el, d);
    else
        memset(d, 0, sizeof d);
    memcpy(out, d, kBoundDigest);
}

} // namespace

/* The pixel data and group lengths aside: the pixels are the cipher's, lengths are written. */
std::vector<DcmTagKey> changed_tags(DcmDataset &a, DcmDataset *b)
{
    std::vector<DcmTagKey> out;
    auto skip = [](const DcmTagKey &k) { return k == DCM_PixelData || k.getElement() == 0; };
    /* One walk over each data set and a map, not a search of b for every element of a. */
    std::map<Uint32, DcmElement *> in_b;
    const std::vector<DcmElement *> all_b = elements_of(b);
    for (DcmElement *y : all_b)
        in_b.emplace(tag32(y->getTag()), y);
    std::set<Uint32> in_a;
    for (DcmElement *x : elements_of(&a)) {
        const DcmTagKey k = x->getTag();
        in_a.insert(tag32(k));
        if (skip(k))
            continue;
        const auto y = in_b.find(tag32(k));
        if (y == in_b.end()) {
            out.push_back(k);
            continue;
        }
        Uint8 dx[32], dy[32];
        element_digest(x, dx);
        element_digest(y->second, dy);
        if (memcmp(dx, dy, sizeof dx) != 0)
            out.push_back(k);
    }
    for (DcmElement *y : all_b) {
        const DcmTagKey k = y->getTag();
        if (!skip(k) && in_a.count(tag32(k)) == 0)
            out.push_back(k);
    }
    return out;
}

void append_dataset(DcmDataset &ds, std::vector<Uint8> &buf, const char *what)
{
    const E_TransferSyntax xfer = EXS_LittleEndianExplicit;
    const size_t off = buf.size();
    const Uint32 len = ds.calcElementLength(xfer, EET_ExplicitLength);
    buf.resize(off + len + 64);
    DcmOutputBufferStream os(buf.data() + off, (offile_off_t)(buf.size() - off));
    ds.transferInit();
    OFCondition c = ds.write(os, xfer, EET_ExplicitLength, nullptr);
    ds.transferEnd();
    if (c.bad())
        fail(DCMC_ERR_FORMAT, "cannot serialise %s: %s", what, c.text());
    void *written = nullptr;
    offile_off_t n = 0;
    os.flushBuffer(written, n);
    buf.resize(off + (size_t)n);
}

void parse_dataset(const Uint8 *p, size_t n, DcmDataset &ds, const char *what)
{
    if (n == 0)
        return;
    /* Authenticated or decrypted bytes, but bytes of the input all the same: inside the parse
     * boundary. */
    OFCondition c = parsing(what, [&] {
        DcmInputBufferStream is;
        is.setBuffer(p, (offile_off_t)n);
        is.setEos();
        ds.transferInit();
        OFCondition rc = ds.read(is, EXS_LittleEndianExplicit, EGL_noChange);
        ds.transferEnd();
        return rc;
    });
    if (c.bad())
        fail(DCMC_ERR_FORMAT, "%s cannot be parsed: %s", what, c.text());
}

namespace {

[[noreturn]] void malformed()
{
    fail(DCMC_ERR_FORMAT, "protected attributes are malformed");
}

/* The parts of protected bytes, after their version byte and transfer syntax. */
struct Parts {
    int version = 0;
    const Uint8 *bound = nullptr; /* version 3: count of (tag, digest) records */
    Uint32 n_bound = 0;
    std::vector<DcmTagKey> touched; /* version 3 */
    size_t dataset = 0;             /* where the dataset starts */
};

/* Version byte, transfer syntax, tail (versions 2 and 3), bound digests and touched tags
 * (version 3): everything before the dataset, checked against the length. */
Parts read_prefix(const Uint8 *p, size_t n, std::string &ts_uid, Pixels &px)
{
    Parts r;
    if (n < 2 || p[0] < 1 || p[0] > 3 || (size_t)2 + p[1] > n)
        malformed();
    r.version = p[0];
    ts_uid.assign(reinterpret_cast<const char *>(p + 2), p[1]);
    size_t off = 2 + (size_t)p[1];
    if (r.version >= 2) {
        if (n - off < 4 || n - off - 4 < get32(p + off))
            malformed();
        const size_t tl = get32(p + off);
        px.tail.assign(p + off + 4, p + off + 4 + tl);
        px.has_tail = r.version == 2 || tl > 0;
        off += 4 + tl;
    }
    if (r.version == 3) {
        if (n - off < 4 || (n - off - 4) / (4 + kBoundDigest) < get32(p + off))
            malformed();
        r.n_bound = get32(p + off);
        r.bound = p + off + 4;
        off += 4 + (size_t)r.n_bound * (4 + kBoundDigest);
        if (n - off < 4 || (n - off - 4) / 4 < get32(p + off))
            malformed();
        const Uint32 nt = get32(p + off);
        for (Uint32 i = 0; i < nt; i++) {
            const Uint32 t = get32(p + off + 4 + 4 * (size_t)i);
            r.touched.emplace_back((Uint16)(t >> 16), (Uint16)t);
        }
        off += 4 + 4 * (size_t)nt;
    }
    r.dataset = off;
    return r;
}

/* Put `value` into `k` (null: remove it) when that gives the digest encryption bound; else
 * leave ds as it was. */
bool try_value(DcmDataset *ds, const DcmTagKey &k, const char *value, const Uint8 want[kBoundDigest])
{
    DcmElement *old = ds->remove(k);
    if (value)
        ds->putAndInsertString(k, value);
    Uint8 d[kBoundDigest];
    bound_digest(ds, k, d);
    if (memcmp(d, want, kBoundDigest) == 0) {
        delete old;
        return true;
    }
    ds->findAndDeleteElement(k);
    if (old)
        ds->insert(old, OFTrue);
    return false;
}

/* What archives do to an object's header when they re-encode it, and what can be undone
 * exactly (the bound digest says whether the undone value is the one encrypted): an attribute
 * the encrypted object did not have, added (GDCM invents Study and Series Instance UIDs where an
 * object has none), is removed again; Number of Frames 1, dropped (GDCM drops it from
 * single-frame objects), is put back; a single-frame SOP class GDCM replaced by its multi-frame
 * sibling because the object holds several frames is put back. True when `k` is as encrypted
 * after that. */
bool undo_archive_edit(DcmDataset *ds, const DcmTagKey &k, const Uint8 want[kBoundDigest])
{
    static const struct {
        const char *now, *before;
    } kClasses[] = {{UID_EnhancedMRImageStorage, UID_MRImageStorage},
                    {UID_UltrasoundMultiframeImageStorage, UID_UltrasoundImageStorage}};
    if (try_value(ds, k, nullptr, want))
        return true;
    if (k == DCM_NumberOfFrames && !ds->tagExists(k))
        return try_value(ds, k, "1", want);
    if (k == DCM_SOPClassUID) {
        const std::string now = get_string(ds, k);
        for (const auto &c : kClasses)
            if (now == c.now)
                return try_value(ds, k, c.before, want);
    }
    return false;
}

/* Every bound attribute of the encrypted object must be as it was encrypted, but for the edits
 * undo_archive_edit undoes. */
void check_parts(DcmDataset *ds, const Parts &r, const char *in)
{
    for (Uint32 i = 0; i < r.n_bound; i++) {
        const Uint8 *rec = r.bound + (size_t)i * (4 + kBoundDigest);
        const Uint32 t = get32(rec);
        const DcmTagKey k((Uint16)(t >> 16), (Uint16)t);
        Uint8 d[kBoundDigest];
        bound_digest(ds, k, d);
        if (memcmp(d, rec + 4, kBoundDigest) != 0 && !undo_archive_edit(ds, k, rec + 4))
            fail(DCMC_ERR_INTEGRITY,
                 "%s: integrity check failed: %s (%04x,%04x) was changed after encryption", in,
                 DcmTag(k).getTagName(), k.getGroup(), k.getElement());
    }
}

} // namespace

/* Protected bytes, version 3 (docs/dicom.md): 3, the original transfer syntax, the tail, the
 * bound digests of `ds` as it will be written, the touched tags, then a dataset of the original
 * value of every touched tag `orig` has. */
std::vector<Uint8> protect(DcmDataset &orig, DcmDataset *ds, const std::string &ts_uid,
                           const Pixels &px)
{
    if (ts_uid.size() > 64)
        fail(DCMC_ERR_FORMAT, "transfer syntax UID longer than 64 characters");
    if (px.tail.size() > 0xFFFFFFFFu)
        fail(DCMC_ERR_UNSUPPORTED, "pixel data tail too long");
    std::vector<Uint8> buf;
    buf.reserve(2 + ts_uid.size() + 8 + px.tail.size());
    buf.push_back(3);
    buf.push_back((Uint8)ts_uid.size());
    for (char ch : ts_uid)
        buf.push_back((Uint8)ch);
    put32(buf, (Uint32)px.tail.size());
    buf.insert(buf.end(), px.tail.begin(), px.tail.end());
    put32(buf, (Uint32)(sizeof kBound / sizeof kBound[0]));
    for (const DcmTagKey &k : kBound) {
        Uint8 d[kBoundDigest];
        bound_digest(ds, k, d);
        put32(buf, tag32(k));
        buf.insert(buf.end(), d, d + kBoundDigest);
    }
    const std::vector<DcmTagKey> touched = changed_tags(orig, ds);
    put32(buf, (Uint32)touched.size());
    DcmDataset prot;
    for (const DcmTagKey &k : touched) {
        put32(buf, tag32(k));
        DcmElement *el = orig.remove(k);
        if (el)
            prot.insert(el, OFTrue);
    }
    append_dataset(prot, buf, "the protected attributes");
    return buf;
}

void check_bound(DcmDataset *ds, const Uint8 *p, size_t n, const char *in)
{
    std::string ts;
    Pixels px;
    check_parts(ds, read_prefix(p, n, ts, px), in);
}

void restore(DcmDataset *ds, const Uint8 *p, size_t n, std::string &ts_uid, Pixels &px,
             const char *in)
{
    const Parts r = read_prefix(p, n, ts_uid, px);
    check_parts(ds, r, in);
    DcmDataset prot;
    parse_dataset(p + r.dataset, n - r.dataset, prot, "the protected attributes");
    if (r.version == 3) {
        for (const DcmTagKey &k : r.touched)
            ds->findAndDeleteElement(k);
    } else {
        for (const DcmTagKey &k : kTouchedV1)
            ds->findAndDeleteElement(k);
        for (DcmElement *el : elements_of(ds))
            if (is_overlay_data(el->getTag()))
                delete ds->remove(el);
    }
    while (prot.card() > 0) {
        DcmElement *el = prot.remove((unsigned long)0);
        if (el)
            ds->insert(el, OFTrue);
    }
}

} // namespace dcmci

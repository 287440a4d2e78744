/*
 * protect.cc - the attributes encryption changes: the protected bytes that carry their original
 * values encrypted in the payload (docs/dicom.md, "Protected attributes"), what the encrypted
 * object shows instead (new UIDs, marker, removed, blanked and added attributes), and putting
 * the originals back on decryption.
 */
#include "internal.h"

#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcostrmb.h"

#include <cstring>

namespace dcmci {

namespace {

const char *const kMarker =
    "ENCRYPTED PIXEL DATA (dcmcrypt): not for diagnosis; restore with dcmdecrypt";

/* Attributes the encryption changes or removes because they show or describe the original
 * pixels; their original values travel encrypted in the payload (format version 1). */
const DcmTagKey kTouched[] = {
    DCM_SOPInstanceUID,           DCM_SeriesInstanceUID,        DCM_ImageComments,
    DCM_DerivationDescription,    DCM_IconImageSequence,        DCM_SmallestImagePixelValue,
    DCM_LargestImagePixelValue,   DCM_SmallestPixelValueInSeries, DCM_LargestPixelValueInSeries,
    DCM_PixelPaddingValue,        DCM_PixelPaddingRangeLimit,   DCM_VOILUTSequence,
    DCM_SamplesPerPixel,          DCM_PhotometricInterpretation, DCM_SOPClassUID,
};
/* Of those, the ones the encrypted object does not carry at all. */
const DcmTagKey kRemoved[] = {
    DCM_IconImageSequence,        DCM_SmallestImagePixelValue,  DCM_LargestImagePixelValue,
    DCM_SmallestPixelValueInSeries, DCM_LargestPixelValueInSeries, DCM_PixelPaddingValue,
    DCM_PixelPaddingRangeLimit,   DCM_VOILUTSequence,
};

bool is_overlay_data(const DcmTagKey &k)
{
    return k.getGroup() >= 0x6000 && k.getGroup() <= 0x601E && k.getGroup() % 2 == 0 &&
           k.getElement() == 0x3000;
}

/* A dataset of the originals of every protected attribute the object has. */
void collect_originals(DcmDataset *ds, DcmDataset &prot)
{
    for (const DcmTagKey &k : kTouched) {
        DcmElement *el = nullptr;
        if (ds->findAndGetElement(k, el).good() && el)
            prot.insert(OFstatic_cast(DcmElement *, el->clone()), OFTrue);
    }
    for (unsigned long i = 0; i < ds->card(); i++) {
        DcmElement *el = ds->getElement(i);
        if (el && is_overlay_data(el->getTag()))
            prot.insert(OFstatic_cast(DcmElement *, el->clone()), OFTrue);
    }
}

/* The version 2 tail: its length (LE32), then its bytes, from buf[off]. */
size_t put_tail(std::vector<Uint8> &buf, size_t off, const Pixels &px)
{
    if (px.tail.size() > 0xFFFFFFFFu)
        fail(DCMC_ERR_UNSUPPORTED, "pixel data tail too long");
    const Uint32 tl = (Uint32)px.tail.size();
    for (int i = 0; i < 4; i++)
        buf[off + i] = (Uint8)(tl >> (8 * i));
    if (tl)
        memcpy(buf.data() + off + 4, px.tail.data(), tl);
    return off + 4 + tl;
}

/* The version byte, the transfer syntax and the tail of the protected bytes `p`: returns where
 * the dataset starts. */
size_t read_prefix(const Uint8 *p, size_t n, std::string &ts_uid, Pixels &px)
{
    if (n < 2 || (p[0] != 1 && p[0] != 2) || (size_t)2 + p[1] > n)
        fail(DCMC_ERR_FORMAT, "protected attributes are malformed");
    ts_uid.assign(reinterpret_cast<const char *>(p + 2), p[1]);
    size_t off = 2 + (size_t)p[1];
    if (p[0] == 2) {
        if (n - off < 4)
            fail(DCMC_ERR_FORMAT, "protected attributes are malformed");
        const size_t tl = (size_t)p[off] | (size_t)p[off + 1] << 8 | (size_t)p[off + 2] << 16 |
                          (size_t)p[off + 3] << 24;
        if (n - off - 4 < tl)
            fail(DCMC_ERR_FORMAT, "protected attributes are malformed");
        px.tail.assign(p + off + 4, p + off + 4 + tl);
        px.has_tail = true;
        off += 4 + tl;
    }
    return off;
}

/* New SOP and Series Instance UIDs, mapped with the UID key. */
void map_uids(DcmDataset *ds, const dcmc_header &hdr, const uint8_t uid_key[32])
{
    const DcmTagKey uids[] = {DCM_SOPInstanceUID, DCM_SeriesInstanceUID};
    for (const DcmTagKey &k : uids) {
        std::string old = get_string(ds, k);
        if (old.empty() && k == DCM_SOPInstanceUID) {
            /* An ACR-NEMA object without one: the encrypted object still needs its own UID.
             * Nothing to map, so it comes from this encryption's nonce. */
            old = "dcmcrypt-nonce:";
            for (uint8_t b : hdr.nonce) {
                char h[3];
                snprintf(h, sizeof h, "%02x", b);
                old += h;
            }
        }
        if (old.empty())
            continue;
        char mapped[65];
        dcmc_status st = dcmc_uid_map(uid_key, old.c_str(), mapped);
        if (st != DCMC_OK)
            fail(st, "cannot derive a new UID: %s", dcmc_status_str(st));
        ds->putAndInsertString(k, mapped);
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

/* Overlay bitmaps are blanked, not removed: the Overlay Plane module stays complete. */
void blank_overlays(DcmDataset *ds)
{
    for (unsigned long i = 0; i < ds->card(); i++) {
        DcmElement *el = ds->getElement(i);
        if (el && is_overlay_data(el->getTag())) {
            std::vector<Uint8> zero(el->getLength(), 0);
            if (el->getVR() == EVR_OW)
                el->putUint16Array(reinterpret_cast<const Uint16 *>(zero.data()), zero.size() / 2);
            else
                el->putUint8Array(zero.data(), zero.size());
        }
    }
}

} // namespace

/* Protected bytes (docs/dicom.md): version, original transfer syntax UID, in version 2 the pixel
 * data tail, then a dataset of the originals. Version 1 where there is no tail, so that what
 * every earlier release wrote stays what an ordinary object gives. */
std::vector<Uint8> protect(DcmDataset *ds, const std::string &ts_uid, const Pixels &px)
{
    DcmDataset prot;
    collect_originals(ds, prot);
    const E_TransferSyntax xfer = EXS_LittleEndianExplicit;
    Uint32 len = prot.calcElementLength(xfer, EET_ExplicitLength);
    if (ts_uid.size() > 64)
        fail(DCMC_ERR_FORMAT, "transfer syntax UID longer than 64 characters");
    const size_t tail_room = px.has_tail ? 4 + px.tail.size() : 0;
    std::vector<Uint8> buf(2 + ts_uid.size() + tail_room + len + 64);
    buf[0] = px.has_tail ? 2 : 1;
    buf[1] = (Uint8)ts_uid.size();
    memcpy(buf.data() + 2, ts_uid.data(), ts_uid.size());
    size_t off = 2 + ts_uid.size();
    if (px.has_tail)
        off = put_tail(buf, off, px);
    DcmOutputBufferStream os(buf.data() + off, (offile_off_t)(buf.size() - off));
    prot.transferInit();
    OFCondition c = prot.write(os, xfer, EET_ExplicitLength, nullptr);
    prot.transferEnd();
    if (c.bad())
        fail(DCMC_ERR_FORMAT, "cannot serialise the protected attributes: %s", c.text());
    void *written = nullptr;
    offile_off_t n = 0;
    os.flushBuffer(written, n);
    buf.resize(off + (size_t)n);
    return buf;
}

void restore(DcmDataset *ds, const Uint8 *p, size_t n, std::string &ts_uid, Pixels &px)
{
    const size_t off = read_prefix(p, n, ts_uid, px);
    DcmDataset prot;
    if (n > off) {
        /* Authenticated bytes, but bytes of the input all the same: inside the parse boundary. */
        OFCondition c = parsing("the protected attributes", [&] {
            DcmInputBufferStream is;
            is.setBuffer(p + off, (offile_off_t)(n - off));
            is.setEos();
            prot.transferInit();
            OFCondition rc = prot.read(is, EXS_LittleEndianExplicit, EGL_noChange);
            prot.transferEnd();
            return rc;
        });
        if (c.bad())
            fail(DCMC_ERR_FORMAT, "protected attributes cannot be parsed: %s", c.text());
    }
    for (const DcmTagKey &k : kTouched)
        ds->findAndDeleteElement(k);
    for (unsigned long i = ds->card(); i-- > 0;) {
        DcmElement *el = ds->getElement(i);
        if (el && is_overlay_data(el->getTag()))
            delete ds->remove(el);
    }
    while (prot.card() > 0) {
        DcmElement *el = prot.remove((unsigned long)0);
        if (el)
            ds->insert(el, OFTrue);
    }
}

void mark_encrypted(DcmDataset *ds, const dcmc_layout &l, const dcmc_header &hdr,
                    const uint8_t uid_key[32])
{
    /* What showed the original pixels goes; the originals are in the payload. */
    for (const DcmTagKey &k : kRemoved)
        ds->findAndDeleteElement(k);
    add_missing_image_attributes(ds, l);
    blank_overlays(ds);
    map_uids(ds, hdr, uid_key);
    ds->putAndInsertString(DCM_ImageComments, kMarker);
    ds->putAndInsertString(DCM_DerivationDescription,
                           "Pixel data encrypted by dcmcrypt (AT-ResNet-CM); not for diagnosis");
}

} // namespace dcmci

/*
 * eas.cc - the Encrypted Attributes Sequence (0400,0500) of PS3.15 E.1.1: the original values of
 * the attributes de-identification changed, as a dataset holding one Modified Attributes
 * Sequence (0400,0550) item, explicit VR little endian, enveloped with CMS (cms.c) for the
 * dcmcrypt key (a KEK recipient), an optional password and any X.509 certificates. Anyone with
 * one of these restores the header with standard tools (gdcmanon -d, openssl cms); dcmdecrypt
 * restores from its own payload, which holds the same originals and more.
 *
 * What describes the original pixels (icon, overlays, windows, histograms) is not put in the
 * sequence: a certificate holder is given the header, not a glimpse of the image.
 */
#include "cms.h"
#include "internal.h"

#include <cstring>

namespace dcmci {

namespace {

const DcmTagKey kPixelDescribing[] = {
    DCM_IconImageSequence,          DCM_SmallestImagePixelValue,   DCM_LargestImagePixelValue,
    DCM_SmallestPixelValueInSeries, DCM_LargestPixelValueInSeries, DCM_PixelPaddingValue,
    DCM_PixelPaddingRangeLimit,     DCM_VOILUTSequence,            DCM_HistogramSequence,
    DCM_WindowCenter,               DCM_WindowWidth,               DCM_WindowCenterWidthExplanation,
    DCM_VOILUTFunction,             DCM_EncryptedAttributesSequence,
};

bool leaves_out(const DcmTagKey &k)
{
    if (is_overlay_data(k))
        return true;
    for (const DcmTagKey &p : kPixelDescribing)
        if (p == k)
            return true;
    return false;
}

/* Our private part of the content, for dcmdecrypt alone (standard tools read only the
 * Modified Attributes Sequence): the attributes protection added, which the standard sequence
 * cannot express, and the original transfer syntax. In group 0401, after the sequence: gdcmanon
 * reads the first element of the content only, and it must be (0400,0550). */
const Uint16 kPrivateGroup = 0x0401;
const DcmTagKey kAddedTags(kPrivateGroup, 0x1010);
const DcmTagKey kOriginalSyntax(kPrivateGroup, 0x1011);

void put_private_part(DcmDataset &content, DcmDataset &orig, const std::vector<DcmTagKey> &changed,
                      const std::string &ts_uid)
{
    DcmTag creator(kPrivateGroup, 0x0010, EVR_LO);
    DcmTag added(kAddedTags, EVR_AT), syntax(kOriginalSyntax, EVR_UI);
    added.setPrivateCreator("DCMCRYPT 1");
    syntax.setPrivateCreator("DCMCRYPT 1");
    auto *at = new DcmAttributeTag(added);
    unsigned long n = 0;
    for (const DcmTagKey &k : changed)
        if (!orig.tagExists(k))
            at->putTagVal(k, n++);
    OFCondition c = content.putAndInsertString(creator, "DCMCRYPT 1");
    if (c.good())
        c = content.insert(at, OFTrue);
    else
        delete at;
    if (c.good())
        c = content.putAndInsertString(syntax, ts_uid.c_str());
    if (c.bad())
        bug("cannot build the private part of the encrypted attributes: %s", c.text());
}

/* The encrypted content: a dataset with one Modified Attributes Sequence item. */
std::vector<Uint8> content_of(DcmDataset &orig, const std::vector<DcmTagKey> &changed,
                              const std::string &ts_uid)
{
    DcmDataset content;
    DcmItem *item = nullptr;
    if (content.findOrCreateSequenceItem(DCM_ModifiedAttributesSequence, item, 0).bad() || !item)
        bug("cannot build the Modified Attributes Sequence");
    for (const DcmTagKey &k : changed) {
        DcmElement *el = nullptr;
        if (leaves_out(k) || orig.findAndGetElement(k, el).bad() || !el)
            continue;
        item->insert(OFstatic_cast(DcmElement *, el->clone()), OFTrue);
    }
    put_private_part(content, orig, changed, ts_uid);
    std::vector<Uint8> buf;
    append_dataset(content, buf, "the encrypted attributes");
    return buf;
}

} // namespace

void add_encrypted_attributes(DcmDataset *ds, DcmDataset &orig, const uint8_t uid_key[32],
                              const dcmc_dicom_options *dopt, const std::string &ts_uid)
{
    std::vector<Uint8> content = content_of(orig, changed_tags(orig, ds), ts_uid);
    uint8_t kek[32], kek_id[16];
    dcmc_status st = dcmci_cms_kek(uid_key, kek, kek_id);
    dcmci_cms_recipients to{};
    to.kek = kek;
    to.kek_id = kek_id;
    if (dopt) {
        to.password = dopt->password;
        to.password_len = dopt->password_len;
        to.cert_files = dopt->recipients;
        to.n_certs = dopt->n_recipients;
    }
    uint8_t *der = nullptr;
    size_t der_len = 0;
    char msg[256] = "";
    if (st == DCMC_OK)
        st = dcmci_cms_envelope(content.data(), content.size(), &to, &der, &der_len, msg,
                                sizeof msg);
    dcmc_wipe(kek, sizeof kek);
    dcmc_wipe(content.data(), content.size());
    if (st != DCMC_OK)
        fail(st, "cannot build the Encrypted Attributes Sequence: %s",
             msg[0] ? msg : dcmc_status_str(st));
    DcmItem *item = nullptr;
    /* A sequence that is already there (another tool's recipients) gets one item more. */
    const unsigned long at = [&] {
        DcmSequenceOfItems *sq = nullptr;
        return ds->findAndGetSequence(DCM_EncryptedAttributesSequence, sq).good() && sq
                   ? sq->card()
                   : 0UL;
    }();
    if (ds->findOrCreateSequenceItem(DCM_EncryptedAttributesSequence, item, (signed long)at).bad() ||
        !item) {
        dcmc_free(der, der_len);
        bug("cannot add an Encrypted Attributes Sequence item");
    }
    item->putAndInsertString(DCM_EncryptedContentTransferSyntaxUID, UID_LittleEndianExplicitTransferSyntax);
    item->putAndInsertUint8Array(DCM_EncryptedContent, der, (unsigned long)der_len);
    dcmc_free(der, der_len);
}

void restore_encrypted_attributes(DcmDataset *ds, DcmDataset &content, int at,
                                  std::string &ts_uid)
{
    DcmItem *item = nullptr;
    if (content.findAndGetSequenceItem(DCM_ModifiedAttributesSequence, item, 0).good() && item)
        while (item->card() > 0) {
            DcmElement *el = item->remove((unsigned long)0);
            ds->findAndDeleteElement(el->getTag());
            ds->insert(el, OFTrue);
        }
    DcmElement *added = nullptr;
    if (content.findAndGetElement(kAddedTags, added).good() && added)
        for (unsigned long i = 0; i < added->getVM(); i++) {
            DcmTagKey k;
            if (OFstatic_cast(DcmAttributeTag *, added)->getTagVal(k, i).good() &&
                k != DCM_EncryptedAttributesSequence)
                ds->findAndDeleteElement(k);
        }
    OFString ts;
    if (content.findAndGetOFString(kOriginalSyntax, ts).good())
        ts_uid = ts.c_str();
    DcmSequenceOfItems *sq = nullptr;
    if (ds->findAndGetSequence(DCM_EncryptedAttributesSequence, sq).good() && sq) {
        delete sq->remove((unsigned long)at);
        if (sq->card() == 0)
            ds->findAndDeleteElement(DCM_EncryptedAttributesSequence);
    }
}

} // namespace dcmci

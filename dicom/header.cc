/*
 * header.cc - objects without pixel data in an encrypted tree (SR, key object selections,
 * presentation states, RT structure sets): the same UID map as the images, so that their
 * references still resolve, and with --deidentify the same profile; the originals travel in the
 * Encrypted Attributes Sequence (eas.cc), the only place there is for them. A marker block says
 * what was done, so that dcmdecrypt knows to restore (docs/dicom.md, "Objects without pixels").
 */
#include "cms.h"
#include "internal.h"

namespace dcmci {

namespace {

/* Our item of the sequence, opened: its index and the decrypted dataset. */
int open_item(DcmDataset *ds, const uint8_t uid_key[32], DcmDataset &content, const char *in)
{
    DcmSequenceOfItems *sq = nullptr;
    if (ds->findAndGetSequence(DCM_EncryptedAttributesSequence, sq).bad() || !sq)
        fail(DCMC_ERR_INTEGRITY, "%s: the Encrypted Attributes Sequence is gone", in);
    uint8_t kek[32], kek_id[16];
    if (dcmci_cms_kek(uid_key, kek, kek_id) != DCMC_OK)
        fail(DCMC_ERR_CRYPTO, "cannot derive the key of the Encrypted Attributes Sequence");
    dcmci_cms_recipients with{};
    with.kek = kek;
    with.kek_id = kek_id;
    for (unsigned long i = 0; i < sq->card(); i++) {
        const Uint8 *der = nullptr;
        unsigned long n = 0;
        DcmItem *item = sq->getItem(i);
        if (parsing("the encrypted content", [&] {
                return item->findAndGetUint8Array(DCM_EncryptedContent, der, &n);
            }).bad() || !der)
            continue;
        uint8_t *plain = nullptr;
        size_t plen = 0;
        if (dcmci_cms_open(der, n, &with, nullptr, &plain, &plen, nullptr, 0) != DCMC_OK)
            continue;
        dcmc_wipe(kek, sizeof kek);
        try {
            parse_dataset(plain, plen, content, "the encrypted attributes");
        } catch (...) {
            dcmc_free(plain, plen);
            throw;
        }
        dcmc_free(plain, plen);
        return (int)i;
    }
    dcmc_wipe(kek, sizeof kek);
    fail(DCMC_ERR_WRONG_KEY, "%s: no Encrypted Attributes Sequence item opens with this key", in);
}

} // namespace

void protect_header(const char *in, const char *out, const uint8_t uid_key[32],
                    const dcmc_dicom_options *dopt)
{
    init_once();
    Loaded L;
    load(in, L, false);
    DcmDataset *ds = L.ds;
    if (find_block(ds) >= 0)
        fail(DCMC_ERR_ALREADY_ENCRYPTED, "%s is already protected by dcmcrypt", in);
    if (ds->tagExists(DCM_PixelData))
        fail(DCMC_ERR_UNSUPPORTED, "%s has pixel data: encrypt it instead", in);
    DcmDataset orig(*ds);
    transform_header(ds, orig, nullptr, uid_key, dopt, L.ts_uid);
    write_marker_block(ds);
    save(L.ff, out, EXS_LittleEndianExplicit);
}

void restore_header(const char *in, const char *out, const uint8_t uid_key[32])
{
    init_once();
    Loaded L;
    load(in, L, false);
    DcmDataset *ds = L.ds;
    if (!is_marker_block(ds, find_block(ds)))
        fail(DCMC_ERR_NOT_ENCRYPTED, "%s: its header was not protected by dcmcrypt", in);
    DcmDataset content;
    const int at = open_item(ds, uid_key, content, in);
    std::string ts;
    restore_encrypted_attributes(ds, content, at, ts);
    delete_block(ds);
    save(L.ff, out, output_xfer(ds, ts));
}

} // namespace dcmci

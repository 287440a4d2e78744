/*
 * block.cc - the private block in group 0011 (creator "DCMCRYPT 1") that carries the cipher's
 * header and encrypted payload (docs/dicom.md): finding it, reading it as untrusted input,
 * writing it at the first free slot, deleting it.
 */
#include "internal.h"

#include <cstdio>

namespace dcmci {

namespace {

const char *const kCreator = "DCMCRYPT 1";
const Uint16 kGroup = 0x0011;

DcmTagKey block_key(int block, Uint8 elem)
{
    return DcmTagKey(kGroup, (Uint16)((unsigned)block << 8 | elem));
}

/* A creator slot nobody uses, and no vendor data elements in its block either. */
int free_block(DcmDataset *ds)
{
    bool used[256] = {false};
    for (DcmElement *obj : elements_of(ds)) {
        const DcmTagKey k = obj->getTag();
        if (k.getGroup() != kGroup)
            continue;
        if (k.getElement() >= 0x10 && k.getElement() <= 0xFF)
            used[k.getElement()] = true;
        if (k.getElement() >= 0x1000)
            used[k.getElement() >> 8] = true;
    }
    for (int e = 0x10; e <= 0xFF; e++)
        if (!used[e])
            return e;
    fail(DCMC_ERR_UNSUPPORTED, "no free private block in group %04x", kGroup);
}

DcmTag private_tag(int block, Uint8 elem, DcmEVR vr)
{
    DcmTag t(kGroup, (Uint16)(block << 8 | elem), vr);
    t.setPrivateCreator(kCreator);
    return t;
}

/* A byte value of the input (read lazily when long: inside the parse boundary), or null with
 * *n = 0 when it is absent or cannot be read. */
const Uint8 *get_bytes(DcmItem *ds, const DcmTagKey &key, unsigned long *n)
{
    const Uint8 *p = nullptr;
    *n = 0;
    const bool ok = parsing("a private value", [&] {
        return ds->findAndGetUint8Array(key, p, n).good() && (p || !*n);
    });
    if (!ok) {
        *n = 0;
        return nullptr;
    }
    return p;
}

std::vector<Uint8> get_ob(DcmItem *ds, const DcmTagKey &key)
{
    unsigned long n = 0;
    const Uint8 *p = get_bytes(ds, key, &n);
    if (!p)
        return std::vector<Uint8>();
    return std::vector<Uint8>(p, p + n);
}

/* The payload after the header says how long it is: DICOM pads an odd-length value with one zero
 * byte; any other difference is a change to the object. */
void read_payload(DcmDataset *ds, int block, uint64_t want, std::vector<Uint8> &payload,
                  const char *in)
{
    const Uint8 *p = nullptr;
    unsigned long n = 0;
    const DcmTagKey pk = block_key(block, 0x02);
    const bool ok = parsing("the encrypted payload", [&] {
        return ds->findAndGetUint8Array(pk, p, &n).good() && (p || !n);
    });
    if (!ok)
        fail(DCMC_ERR_INTEGRITY, "%s: the encrypted payload (0011,%02x02) is missing", in, block);
    if (!(n == want || (want < n && n - want == 1 && p[n - 1] == 0)))
        fail(DCMC_ERR_INTEGRITY,
             "%s: the encrypted payload holds %lu bytes, its header says %llu: the object was "
             "changed or damaged",
             in, n, (unsigned long long)want);
    payload.assign(p, p + want);
}

} // namespace

int find_block(DcmItem *ds)
{
    /* One walk over the data set's elements, which DCMTK keeps in tag order: the first creator
     * (0011,0010-00FF) holding ours is the block, as a lookup of each of the 240 tags in turn
     * would find, without searching the data set 240 times. */
    for (DcmObject *o = ds->nextInContainer(nullptr); o != nullptr; o = ds->nextInContainer(o)) {
        auto *el = OFstatic_cast(DcmElement *, o);
        const DcmTagKey k = el->getTag();
        if (k.getGroup() > kGroup)
            break;
        if (k.getGroup() != kGroup || k.getElement() < 0x10 || k.getElement() > 0xFF)
            continue;
        const bool ours = parsing("a private creator", [&] {
            OFString v; /* its first value */
            return el->getOFString(v, 0).good() && v == kCreator;
        });
        if (ours)
            return k.getElement();
    }
    return -1;
}

/* The header and, if `payload` is given, the payload of our private block. Everything here is
 * untrusted until the MAC is checked: the payload's length is compared with the header's before
 * anything is copied. */
void read_block(DcmDataset *ds, dcmc_header &hdr, std::vector<Uint8> *payload, const char *in)
{
    const int block = find_block(ds);
    if (block < 0) {
        const std::string mark = encryption_mark(ds);
        if (mark.empty())
            fail(DCMC_ERR_NOT_ENCRYPTED, "%s was not encrypted by dcmcrypt", in);
        /* The object still says it holds cipher values: something dropped private elements. */
        fail(DCMC_ERR_INTEGRITY,
             "%s: encrypted by dcmcrypt (its %s says so), but its private block (group 0011, "
             "creator \"%s\") was removed, as anonymizers and archives that drop private "
             "elements do: what decryption needs is gone from this copy for good; decrypt a copy "
             "stored before, and keep private elements (dcmdecrypt(1), PACS AND ARCHIVES)",
             in, mark.c_str(), kCreator);
    }
    std::vector<Uint8> hb = get_ob(ds, block_key(block, 0x01));
    if (hb.empty())
        fail(DCMC_ERR_INTEGRITY,
             "%s: the dcmcrypt block is damaged: its header element (0011,%02x01) was removed "
             "or emptied",
             in, block);
    dcmc_status st = dcmc_header_read(hb.data(), hb.size(), &hdr);
    if (st == DCMC_ERR_UNSUPPORTED)
        fail(st, "%s: the dcmcrypt header names a format version or scheme this dcmcrypt does "
                 "not know (%s): was it written by a newer release?",
             in, dcmc_status_str(st));
    if (st != DCMC_OK)
        fail(DCMC_ERR_INTEGRITY, "%s: the dcmcrypt block is damaged: its header (0011,%02x01) "
                                 "does not parse (%s)",
             in, block, dcmc_status_str(st));
    if (payload)
        read_payload(ds, block, hdr.payload_bytes, *payload, in);
}

void write_block(DcmDataset *ds, const dcmc_header &hdr, const std::vector<Uint8> &payload)
{
    const int block = free_block(ds);
    uint8_t hb[DCMC_HEADER_BYTES];
    if (dcmc_header_write(&hdr, hb) != DCMC_OK)
        bug("the header the cipher made cannot be written");
    char scheme[96], kdfs[96];
    snprintf(scheme, sizeof scheme, "%s%s, format %u", dcmc_preset_name(hdr.preset.id),
             hdr.flags & DCMC_FLAG_STANDARD_LAYER ? " + ChaCha20" : " (chaos keystream only)",
             (unsigned)hdr.version);
    if (hdr.kdf.id == DCMC_KDF_SCRYPT)
        snprintf(kdfs, sizeof kdfs, "scrypt N=2^%u r=%u p=%u", hdr.kdf.log2_n, hdr.kdf.r, hdr.kdf.p);
    else
        snprintf(kdfs, sizeof kdfs, "key file");
    OFCondition c = ds->putAndInsertString(DcmTagKey(kGroup, (Uint16)block), kCreator);
    if (c.good())
        c = ds->putAndInsertUint8Array(private_tag(block, 0x01, EVR_OB), hb, sizeof hb);
    if (c.good())
        c = ds->putAndInsertUint8Array(private_tag(block, 0x02, EVR_OB), payload.data(),
                                       (unsigned long)payload.size());
    if (c.good())
        c = ds->putAndInsertString(private_tag(block, 0x03, EVR_LO), scheme);
    if (c.good())
        c = ds->putAndInsertString(private_tag(block, 0x04, EVR_LO), kdfs);
    if (c.bad())
        fail(DCMC_ERR_NOMEM, "cannot add the private block: %s", c.text());
}

void write_marker_block(DcmDataset *ds)
{
    const int block = free_block(ds);
    OFCondition c = ds->putAndInsertString(DcmTagKey(kGroup, (Uint16)block), kCreator);
    if (c.good())
        c = ds->putAndInsertString(private_tag(block, 0x05, EVR_LO),
                                   "HEADER PROTECTED (dcmcrypt): restore with dcmdecrypt");
    if (c.bad())
        fail(DCMC_ERR_NOMEM, "cannot add the private block: %s", c.text());
}

bool is_marker_block(DcmItem *ds, int block)
{
    return block >= 0 && !ds->tagExists(block_key(block, 0x01)) &&
           ds->tagExists(block_key(block, 0x05));
}

void delete_block(DcmDataset *ds)
{
    const int block = find_block(ds);
    if (block < 0)
        bug("the private block read before decryption is gone");
    for (unsigned e = 0; e <= 0xFF; e++)
        ds->findAndDeleteElement(block_key(block, (Uint8)e));
    ds->findAndDeleteElement(DcmTagKey(kGroup, (Uint16)block));
}

} // namespace dcmci

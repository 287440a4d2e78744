/*
 * pseudo.cc - the keyed parts of de-identification: pseudonyms for the values that name a
 * patient or a request, and one date shift per patient. All come from the UID key by
 * HMAC-SHA256, so one key gives the same pseudonym and shift in every file and every run
 * (a study stays a study, a patient stays one patient), and nobody without the key can link a
 * pseudonym to a name or compute the shift (docs/deidentification.md).
 */
#include "deid.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace dcmci {

namespace {

/* HMAC-SHA256(uid_key, "dcmcrypt/1/" label NUL value). */
void keyed(const uint8_t uid_key[32], const char *label, const std::string &value, Uint8 out[32])
{
    std::string msg = std::string("dcmcrypt/1/") + label;
    msg.push_back('\0');
    msg += value;
    unsigned int n = 0;
    if (!HMAC(EVP_sha256(), uid_key, 32, reinterpret_cast<const unsigned char *>(msg.data()),
              msg.size(), out, &n) ||
        n != 32)
        fail(DCMC_ERR_CRYPTO, "HMAC-SHA256 failed");
}

/* `n` characters of base 32 (A-Z, 2-7: valid in every string VR, no look-alike digits). */
std::string base32(const Uint8 d[32], size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    std::string out;
    for (size_t i = 0; i < n && i < 51; i++) {
        const size_t bit = i * 5;
        const unsigned v = (unsigned)d[bit / 8] << 8 | (bit / 8 + 1 < 32 ? d[bit / 8 + 1] : 0);
        out.push_back(alphabet[(v >> (11 - bit % 8)) & 31]);
    }
    return out;
}

/* Who the object is about, for keying: Patient ID, else Patient Name, else the study. */
std::string patient_key(DcmDataset *ds)
{
    std::string who = get_string(ds, DCM_PatientID);
    if (!who.empty())
        return "id:" + who;
    who = get_string(ds, DCM_PatientName);
    if (!who.empty())
        return "name:" + who;
    return "study:" + get_string(ds, DCM_StudyInstanceUID);
}

} // namespace

DeidContext deid_context(DcmDataset *ds, const uint8_t uid_key[32], unsigned options,
                         const std::string &method)
{
    DeidContext ctx;
    ctx.options = options;
    ctx.method = method;
    const std::string patient = patient_key(ds);
    Uint8 d[32];
    keyed(uid_key, "date-shift", patient, d);
    /* Back by 30 days to 10 years: the year of a study is not the year it shows. */
    const unsigned long v = (unsigned long)d[0] | (unsigned long)d[1] << 8 | (unsigned long)d[2] << 16;
    ctx.date_shift_days = -(30 + (long)(v % 3621));
    const unsigned long w = (unsigned long)d[3] | (unsigned long)d[4] << 8 | (unsigned long)d[5] << 16;
    ctx.time_shift_seconds = (long)(w % 86400);
    std::vector<Uint8> key(uid_key, uid_key + 32);
    ctx.pseudonym = [key, patient](const DcmTagKey &tag, const std::string &orig) {
        Uint8 h[32];
        /* Name and ID of one patient come from the same value, so they stay a pair. */
        if (tag == DCM_PatientName || tag == DCM_PatientID) {
            keyed(key.data(), "patient", patient, h);
            return tag == DCM_PatientName ? "PSEUDONYM^" + base32(h, 12) : "DCMC" + base32(h, 16);
        }
        if (tag == DCM_AccessionNumber) {
            keyed(key.data(), "accession", orig, h);
            return "A" + base32(h, 15);
        }
        char label[32];
        snprintf(label, sizeof label, "value-%04x%04x", tag.getGroup(), tag.getElement());
        keyed(key.data(), label, orig, h);
        return "DCMC" + base32(h, 12);
    };
    dcmc_wipe(d, sizeof d);
    return ctx;
}

} // namespace dcmci

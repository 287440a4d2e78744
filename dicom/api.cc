/*
 * api.cc - the C API of include/dcmcrypt/dicom.h over the adapter (namespace dcmci): arguments
 * checked, then every operation run inside guard(), which no exception leaves (errors.cc says
 * how exceptions become statuses).
 */
#include "internal.h"

#include <cstdlib>
#include <cstring>

#include <openjpeg.h>

using namespace dcmci;

extern "C" dcmc_status dcmc_dicom_encrypt(const char *in, const char *out, const dcmc_key *key,
                                          const dcmc_kdf *kdf, const uint8_t uid_key[32],
                                          const dcmc_options *opt,
                                          const dcmc_dicom_options *dopt, dcmc_dicom_info *info,
                                          char *msg, size_t msg_len)
{
    if (!in || !out || !key || !uid_key || (dopt && dopt->n_recipients && !dopt->recipients))
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { encrypt(in, out, key, kdf, uid_key, opt, dopt, info); });
}

extern "C" dcmc_status dcmc_dicom_peek(const char *in, dcmc_header *hdr, char *msg, size_t msg_len)
{
    if (!in || !hdr)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { peek(in, hdr); });
}

extern "C" dcmc_status dcmc_dicom_decrypt(const char *in, const char *out, const dcmc_key *key,
                                          int threads, dcmc_dicom_info *info, char *msg,
                                          size_t msg_len)
{
    if (!in || !out || !key)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { decrypt(in, out, key, threads, info); });
}

extern "C" dcmc_status dcmc_dicom_read_pixels(const char *in, dcmc_dicom_info *info,
                                              uint8_t **pixels, size_t *len, char *msg,
                                              size_t msg_len)
{
    if (pixels)
        *pixels = nullptr;
    if (len)
        *len = 0;
    if (!in || !info || !pixels || !len)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] {
        init_once();
        Loaded L;
        load(in, L, true);
        Pixels px;
        decode_pixels(L, px);
        fill_info(info, L, px);
        uint8_t *buf = static_cast<uint8_t *>(malloc(px.data.size() ? px.data.size() : 1));
        if (!buf)
            throw std::bad_alloc();
        memcpy(buf, px.data.data(), px.data.size());
        *pixels = buf;
        *len = px.data.size();
    });
}

extern "C" void dcmc_dicom_set_max_expansion(unsigned ratio)
{
    set_max_expansion(ratio);
}

extern "C" const char *dcmc_dicom_versions(void)
{
    static char buf[160];
    if (!buf[0])
        snprintf(buf, sizeof buf, "DCMTK %s, OpenJPEG %s", OFFIS_DCMTK_VERSION_STRING,
                 opj_version());
    return buf;
}

extern "C" dcmc_status dcmc_dicom_protect_header(const char *in, const char *out,
                                                const uint8_t uid_key[32],
                                                const dcmc_dicom_options *dopt, char *msg,
                                                size_t msg_len)
{
    if (!in || !out || !uid_key || (dopt && dopt->n_recipients && !dopt->recipients))
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { protect_header(in, out, uid_key, dopt); });
}

extern "C" dcmc_status dcmc_dicom_restore_header(const char *in, const char *out,
                                                const uint8_t uid_key[32], char *msg,
                                                size_t msg_len)
{
    if (!in || !out || !uid_key)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { restore_header(in, out, uid_key); });
}

extern "C" dcmc_status dcmc_dicom_verify(const char *in, const dcmc_key *key, char sop_uid[65],
                                         char *msg, size_t msg_len)
{
    if (!in || !key)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { verify(in, key, sop_uid); });
}

extern "C" dcmc_status dcmc_dicom_probe(const char *in, int full, dcmc_dicom_probe_info *info,
                                        char *msg, size_t msg_len)
{
    if (!in || !info)
        return DCMC_ERR_ARG;
    memset(info, 0, sizeof *info);
    return guard(msg, msg_len, [&] { probe(in, full != 0, info); });
}

/* The parse of one file, kept between the calls of dcmc_dicom_open's family. */
struct dcmc_dicom_object {
    std::string path;
    std::unique_ptr<Loaded> L; /* null once a conversion took it */
};

extern "C" dcmc_status dcmc_dicom_open(const char *in, dcmc_dicom_object **obj,
                                       dcmc_dicom_probe_info *info, char *msg, size_t msg_len)
{
    if (obj)
        *obj = nullptr;
    if (!in || !obj || !info)
        return DCMC_ERR_ARG;
    memset(info, 0, sizeof *info);
    return guard(msg, msg_len, [&] {
        init_once();
        auto o = std::make_unique<dcmc_dicom_object>();
        o->path = in;
        o->L = std::make_unique<Loaded>();
        load(in, *o->L, false, 4096); /* as dcmc_dicom_probe(in, 0) */
        classify(*o->L, info);
        *obj = o.release();
    });
}

/* The object's parse, or DCMC_ERR_ARG (with a message) when there is none left. */
static dcmc_status object_usable(const dcmc_dicom_object *obj, char *msg, size_t msg_len)
{
    if (!obj)
        return DCMC_ERR_ARG;
    if (!obj->L) {
        if (msg && msg_len)
            snprintf(msg, msg_len, "%s: already converted; open it again", obj->path.c_str());
        return DCMC_ERR_ARG;
    }
    return DCMC_OK;
}

extern "C" dcmc_status dcmc_dicom_object_peek(dcmc_dicom_object *obj, dcmc_header *hdr, char *msg,
                                              size_t msg_len)
{
    const dcmc_status st = object_usable(obj, msg, msg_len);
    if (st != DCMC_OK || !hdr)
        return st != DCMC_OK ? st : DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { peek(obj->path.c_str(), hdr, obj->L.get()); });
}

extern "C" dcmc_status dcmc_dicom_object_encrypt(dcmc_dicom_object *obj, const char *out,
                                                 const dcmc_key *key, const dcmc_kdf *kdf,
                                                 const uint8_t uid_key[32],
                                                 const dcmc_options *opt,
                                                 const dcmc_dicom_options *dopt,
                                                 dcmc_dicom_info *info, char *msg, size_t msg_len)
{
    const dcmc_status st = object_usable(obj, msg, msg_len);
    if (st != DCMC_OK)
        return st;
    if (!out || !key || !uid_key || (dopt && dopt->n_recipients && !dopt->recipients))
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] {
        encrypt(obj->path.c_str(), out, key, kdf, uid_key, opt, dopt, info, std::move(obj->L));
    });
}

extern "C" dcmc_status dcmc_dicom_object_decrypt(dcmc_dicom_object *obj, const char *out,
                                                 const dcmc_key *key, int threads,
                                                 dcmc_dicom_info *info, char *msg, size_t msg_len)
{
    const dcmc_status st = object_usable(obj, msg, msg_len);
    if (st != DCMC_OK)
        return st;
    if (!out || !key)
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] {
        decrypt(obj->path.c_str(), out, key, threads, info, std::move(obj->L));
    });
}

extern "C" void dcmc_dicom_close(dcmc_dicom_object *obj)
{
    delete obj;
}

extern "C" dcmc_status dcmc_dicomdir_refs(const char *in, char ***refs, size_t *n, char *msg,
                                          size_t msg_len)
{
    if (!in || !refs || !n)
        return DCMC_ERR_ARG;
    *refs = nullptr;
    *n = 0;
    return guard(msg, msg_len, [&] {
        std::vector<std::string> v;
        dicomdir_refs(in, v);
        char **a = static_cast<char **>(calloc(v.size() + 1, sizeof *a));
        if (!a)
            throw std::bad_alloc();
        for (size_t i = 0; i < v.size(); i++) {
            if (!(a[i] = strdup(v[i].c_str()))) {
                dcmc_dicomdir_refs_free(a, i);
                throw std::bad_alloc();
            }
        }
        *refs = a;
        *n = v.size();
    });
}

extern "C" void dcmc_dicomdir_refs_free(char **refs, size_t n)
{
    if (!refs)
        return;
    for (size_t i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
}

extern "C" dcmc_status dcmc_dicomdir_write(const char *in, const char *out, const char *root,
                                           const char *const *files, size_t n, char *msg,
                                           size_t msg_len)
{
    if (!in || !out || !root || (n && !files))
        return DCMC_ERR_ARG;
    return guard(msg, msg_len, [&] { dicomdir_write(in, out, root, files, n); });
}

/*
 * save.cc - writing an object: re-encoding to the original transfer syntax where that is
 * lossless and DCMTK can encode it (every other attribute kept as it was), and saving with a
 * check that the whole file reached the disk; for streamed objects, the temporary file the
 * Pixel Data is written from.
 */
#include "internal.h"
#include "j2k_encode.h"

#include "dcmtk/dcmdata/dcistrmf.h"
#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpls/djrparam.h"

#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace dcmci {

void save(DcmFileFormat &ff, const char *out, E_TransferSyntax xfer)
{
    errno = 0;
    OFCondition c = ff.saveFile(out, xfer, EET_ExplicitLength, EGL_recalcGL, EPD_noChange, 0, 0,
                                EWM_updateMeta);
    if (c.bad())
        fail(DCMC_ERR_WRITE, "cannot write %s: %s", out, c.text());
    /* DCMTK does not report every failed write (a full disk can end in a short file): check
     * that what is on disk is all of it. */
    bool ok;
    if (xfer == EXS_DeflatedLittleEndianExplicit) {
        /* Compressed on the fly, so no length to compare: read it back instead. */
        DcmFileFormat back;
        ok = back.loadFile(out, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_fileOnly).good();
    } else {
        const Uint32 expect = ff.calcElementLength(xfer, EET_ExplicitLength);
        struct stat st;
        ok = stat(out, &st) == 0 && S_ISREG(st.st_mode) && (unsigned long long)st.st_size == expect;
    }
    if (!ok)
        fail(DCMC_ERR_WRITE, "cannot write %s: short write (disk full?)", out);
}

namespace {

/* Try one of DCMTK's encoders with every other attribute kept as it was: codecs also edit
 * attributes (Derivation Description, ...), which are put back. */
bool dcmtk_encode(DcmDataset *ds, E_TransferSyntax t, const DcmRepresentationParameter *rp)
{
    DcmDataset before;
    for (DcmElement *el : elements_of(ds)) {
        if (el->getTag() != DCM_PixelData)
            before.insert(OFstatic_cast(DcmElement *, el->clone()), OFTrue);
    }
    const bool ok = ds->chooseRepresentation(t, rp).good() && ds->canWriteXfer(t);
    for (DcmElement *el : elements_of(ds))
        if (el->getTag() != DCM_PixelData && !before.tagExists(el->getTag()))
            delete ds->remove(el);
    while (before.card() > 0) {
        DcmElement *el = before.remove((unsigned long)0);
        if (el)
            ds->insert(el, OFTrue);
    }
    return ok;
}

/* Encode ds's native pixels losslessly as `t` (RLE, JPEG lossless SV1, JPEG-LS lossless) with
 * DCMTK; false when DCMTK cannot. */
bool encode_lossless(DcmDataset *ds, E_TransferSyntax t)
{
    switch (t) {
    case EXS_RLELossless:
        return dcmtk_encode(ds, t, nullptr);
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1: {
        DJ_RPLossless rp(1, 0);
        return dcmtk_encode(ds, t, &rp);
    }
    case EXS_JPEGLSLossless: {
        /* CharLS as shipped with DCMTK 3.6.7 aborts on some signed images: keep those native. */
        if (get_int(ds, DCM_PixelRepresentation, 0) != 0)
            return false;
        DJLSRepresentationParameter rp(0, OFTrue);
        return dcmtk_encode(ds, t, &rp);
    }
    default:
        return false;
    }
}

} // namespace

/* Re-encode to the original transfer syntax where that is lossless and DCMTK can do it, with
 * every other attribute exactly as restored. */
E_TransferSyntax output_xfer(DcmDataset *ds, const std::string &ts_uid)
{
    const E_TransferSyntax t = DcmXfer(ts_uid.c_str()).getXfer();
    switch (t) {
    case EXS_LittleEndianImplicit:
    case EXS_BigEndianExplicit:
    case EXS_DeflatedLittleEndianExplicit:
        return t;
    default:
        if (encode_lossless(ds, t))
            return t;
        ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
        return EXS_LittleEndianExplicit;
    }
}

/* ---- the encrypted object's transfer syntax --------------------------------------------------- */

namespace {

/* The lossless syntax of the original's family that we can write (docs/dicom.md, "Transfer
 * syntax of the encrypted object"), or explicit VR little endian. */
E_TransferSyntax family_of(const std::string &ts)
{
    if (ts == "1.2.840.10008.1.2.5")
        return EXS_RLELossless;
    if (ts == "1.2.840.10008.1.2.4.57" || ts == "1.2.840.10008.1.2.4.70")
        return EXS_JPEGProcess14SV1;
    if (ts == "1.2.840.10008.1.2.4.80")
        return EXS_JPEGLSLossless;
    /* HTJ2K lossless too: OpenJPEG 2.5 decodes HTJ2K but encodes only classic JPEG 2000. */
    if (ts == "1.2.840.10008.1.2.4.90" || ts == "1.2.840.10008.1.2.4.201" ||
        ts == "1.2.840.10008.1.2.4.202")
        return EXS_JPEG2000LosslessOnly;
    if (ts == "1.2.840.10008.1.2.1.99")
        return EXS_DeflatedLittleEndianExplicit;
    return EXS_LittleEndianExplicit;
}

/* Decode what was just encoded, as decryption will, and compare with the cipher's values: an
 * encoder that lost one bit would make the object undecryptable for ever. */
bool decodes_to(DcmDataset *ds, E_TransferSyntax t, const Pixels &px)
{
    Loaded V;
    *V.ff.getDataset() = *ds;
    V.ds = V.ff.getDataset();
    V.ts_uid = DcmXfer(t).getXferID();
    V.file_bytes = UINT64_MAX / 1024; /* our own bytes: no expansion limit */
    Pixels back;
    try {
        decode_reencoded(V, px.layout, px.frames, back);
    } catch (const Failure &) {
        return false;
    }
    return !back.has_tail && back.data == px.data;
}

/* Native pixel data bytes, to compare an encoding with. */
uint64_t native_size(const Pixels &px)
{
    const uint64_t n = px.data.size();
    return n + (n % 2);
}

uint64_t encoded_size(DcmDataset *ds, E_TransferSyntax t)
{
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el)
        return UINT64_MAX;
    return el->calcElementLength(t, EET_ExplicitLength);
}

} // namespace

void check_output_syntax(const char *want)
{
    static const char *const ok[] = {"keep",
                                     "1.2.840.10008.1.2.1",
                                     "1.2.840.10008.1.2.1.99",
                                     "1.2.840.10008.1.2.5",
                                     "1.2.840.10008.1.2.4.70",
                                     "1.2.840.10008.1.2.4.80",
                                     "1.2.840.10008.1.2.4.90"};
    if (!want || !*want)
        return;
    for (const char *u : ok)
        if (strcmp(want, u) == 0)
            return;
    fail(DCMC_ERR_ARG, "transfer syntax %s cannot hold encrypted pixels exactly (lossless ones: "
                       "see docs/dicom.md)",
         want);
}

E_TransferSyntax encrypted_xfer(DcmDataset *ds, const Pixels &px, const std::string &orig_ts,
                                const char *want)
{
    const dcmc_layout &l = px.layout;
    const E_TransferSyntax family = family_of(orig_ts);
    /* The default: native, which every reader decodes without a pixel codec (pydicom as
     * Debian ships it decodes no JPEG family; dicom3tools reads no deflate). */
    if (!want || !*want)
        return EXS_LittleEndianExplicit;
    const bool keep = strcmp(want, "keep") == 0;
    const E_TransferSyntax t = keep ? family : DcmXfer(want).getXfer();
    if (t == EXS_LittleEndianExplicit || t == EXS_DeflatedLittleEndianExplicit)
        return keep && l.bits_stored >= l.bits_allocated ? EXS_LittleEndianExplicit : t;
    /* Cipher layouts a compressed syntax cannot describe as they are: 1-bit, 32-bit, colour by
     * planes, native YBR 4:2:2 encrypted as grey twice as wide. */
    const bool fits = (l.bits_allocated == 8 || l.bits_allocated == 16) &&
                      (l.samples == 1 || (l.samples == 3 && l.planar == 0)) &&
                      l.samples == (uint32_t)get_int(ds, DCM_SamplesPerPixel, 1);
    bool ok = fits && (t == EXS_JPEG2000LosslessOnly ? encode_j2k_lossless(ds, px)
                                                     : encode_lossless(ds, t));
    if (ok) {
        DcmElement *el = nullptr;
        if (ds->findAndGetElement(DCM_PixelData, el).good() && el && el->ident() == EVR_PixelData)
            OFstatic_cast(DcmPixelData *, el)->removeAllButCurrentRepresentations();
        ok = decodes_to(ds, t, px) && (!keep || encoded_size(ds, t) < native_size(px));
    }
    if (ok)
        return t;
    put_native(ds, px); /* a fresh native element: whatever the encoder left goes */
    return EXS_LittleEndianExplicit;
}

bool encrypted_native(const std::string &orig_ts, const char *want)
{
    if (!want || !*want || strcmp(want, UID_LittleEndianExplicitTransferSyntax) == 0)
        return true;
    return strcmp(want, "keep") == 0 && family_of(orig_ts) == EXS_LittleEndianExplicit;
}

bool output_native(DcmDataset *ds, const std::string &ts_uid)
{
    switch (DcmXfer(ts_uid.c_str()).getXfer()) {
    case EXS_RLELossless:
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1:
        return false;
    case EXS_JPEGLSLossless: /* see encode_lossless */
        return get_int(ds, DCM_PixelRepresentation, 0) != 0;
    default:
        return true;
    }
}

/* ---- the frames of a streamed object ------------------------------------------------------- */

namespace {

std::string dir_of(const std::string &path)
{
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

/* /proc/self/fd/N names the open file itself (so DCMTK can open it by that name). */
bool fd_path(int fd, std::string &path)
{
    path = "/proc/self/fd/" + std::to_string(fd);
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path.c_str(), &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

} // namespace

FrameFile::~FrameFile()
{
    if (!name_.empty())
        unlink(name_.c_str());
    if (fd_ >= 0)
        close(fd_);
}

bool FrameFile::open_in(const std::string &dir)
{
    fd_ = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ >= 0 && fd_path(fd_, path_))
        return true;
    if (fd_ >= 0)
        close(fd_);
    std::string tmpl = dir + "/.dcmcrypt-frames-XXXXXX";
    fd_ = mkostemp(&tmpl[0], O_CLOEXEC);
    if (fd_ < 0)
        return false;
    if (fd_path(fd_, path_)) {
        unlink(tmpl.c_str()); /* reached through /proc from now on */
    } else {
        name_ = tmpl;
        path_ = tmpl;
    }
    return true;
}

bool FrameFile::open_near(const char *out)
{
    out_ = out;
    if (open_in(dir_of(out_)))
        return true;
    /* The tools write through /proc/self/fd/N of an unnamed temporary: the directory is where
     * that link points ("/dir/#123 (deleted)"). */
    char target[PATH_MAX];
    const ssize_t n = readlink(out, target, sizeof target - 1);
    if (n <= 0 || target[0] != '/')
        return false;
    target[n] = '\0';
    return open_in(dir_of(target));
}

void FrameFile::write(const Uint8 *p, size_t n)
{
    while (n > 0) {
        const ssize_t w = ::write(fd_, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            fail(DCMC_ERR_WRITE, "cannot write %s: the temporary file of its pixel data: %s",
                 out_.c_str(), w < 0 ? strerror(errno) : "nothing written");
        p += w;
        n -= (size_t)w;
        size_ += (uint64_t)w;
    }
}

void FrameFile::pad_even()
{
    const Uint8 zero = 0;
    if (size_ % 2)
        write(&zero, 1);
}

void FrameFile::insert_pixel_data(DcmDataset *ds, const dcmc_layout &l)
{
    if (size_ % 2 || size_ > 0xFFFFFFFEu)
        fail(DCMC_ERR_UNSUPPORTED, "cannot store %llu bytes of pixel data in one element",
             (unsigned long long)size_);
    /* Made as putAndInsertUint8Array / putAndInsertUint16Array make it (put_native), then given
     * the file as its value. */
    std::unique_ptr<DcmPixelData> pd(new DcmPixelData(DCM_PixelData));
    OFCondition c;
    if (l.bits_allocated <= 8) {
        pd->setVR(EVR_OB);
        c = pd->putUint8Array(nullptr, 0);
    } else {
        c = pd->putUint16Array(nullptr, 0);
    }
    if (c.good())
        c = pd->createValueFromTempFile(new DcmInputFileStreamFactory(path_.c_str(), 0),
                                        (Uint32)size_, EBO_LittleEndian);
    if (c.good()) {
        ds->findAndDeleteElement(DCM_PixelData);
        DcmPixelData *owned = pd.release(); /* the dataset's once inserted */
        if ((c = ds->insert(owned, OFTrue)).bad())
            delete owned;
    }
    if (c.bad())
        fail(DCMC_ERR_NOMEM, "cannot store pixel data: %s", c.text());
}

void FrameFile::check_written(DcmDataset *ds) const
{
    DcmElement *el = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, el).bad() || !el || el->getLength() != size_)
        fail(DCMC_ERR_WRITE, "cannot write %s: its pixel data could not be read back from its "
                             "temporary file",
             out_.c_str());
}

} // namespace dcmci

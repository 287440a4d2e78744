/*
 * save.cc - writing an object: re-encoding to the original transfer syntax where that is
 * lossless and DCMTK can encode it (every other attribute kept as it was), and saving with a
 * check that the whole file reached the disk.
 */
#include "internal.h"

#include "dcmtk/dcmjpeg/djrplol.h"
#include "dcmtk/dcmjpls/djrparam.h"

#include <sys/stat.h>

#include <cerrno>

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

/* Try one encoder; codecs also edit attributes (Derivation Description...), which the caller
 * puts back. */
bool try_encode(DcmDataset *ds, E_TransferSyntax t, const DcmRepresentationParameter *rp)
{
    return ds->chooseRepresentation(t, rp).good() && ds->canWriteXfer(t);
}

E_TransferSyntax encode_as(DcmDataset *ds, const std::string &ts_uid)
{
    const E_TransferSyntax t = DcmXfer(ts_uid.c_str()).getXfer();
    switch (t) {
    case EXS_LittleEndianImplicit:
    case EXS_BigEndianExplicit:
    case EXS_DeflatedLittleEndianExplicit:
        return t;
    case EXS_RLELossless:
        if (try_encode(ds, t, nullptr))
            return t;
        break;
    case EXS_JPEGProcess14:
    case EXS_JPEGProcess14SV1: {
        DJ_RPLossless rp(1, 0);
        if (try_encode(ds, t, &rp))
            return t;
        break;
    }
    case EXS_JPEGLSLossless: {
        /* CharLS as shipped with DCMTK 3.6.7 aborts on some signed images: keep those native. */
        if (get_int(ds, DCM_PixelRepresentation, 0) != 0)
            break;
        DJLSRepresentationParameter rp(0, OFTrue);
        if (try_encode(ds, t, &rp))
            return t;
        break;
    }
    default:
        break;
    }
    ds->chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    return EXS_LittleEndianExplicit;
}

} // namespace

/* Re-encode to the original transfer syntax where that is lossless and DCMTK can do it, with
 * every other attribute exactly as restored. */
E_TransferSyntax output_xfer(DcmDataset *ds, const std::string &ts_uid)
{
    DcmDataset before;
    for (unsigned long i = 0; i < ds->card(); i++) {
        DcmElement *el = ds->getElement(i);
        if (el && el->getTag() != DCM_PixelData)
            before.insert(OFstatic_cast(DcmElement *, el->clone()), OFTrue);
    }
    const E_TransferSyntax t = encode_as(ds, ts_uid);
    for (unsigned long i = ds->card(); i-- > 0;) {
        DcmElement *el = ds->getElement(i);
        if (el && el->getTag() != DCM_PixelData && !before.tagExists(el->getTag()))
            delete ds->remove(el);
    }
    while (before.card() > 0) {
        DcmElement *el = before.remove((unsigned long)0);
        if (el)
            ds->insert(el, OFTrue);
    }
    return t;
}

} // namespace dcmci

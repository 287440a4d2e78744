/*
 * prescan_dcmtk.cc - for test_prescan.c: the nesting depth DCMTK itself builds when it loads a
 * file, so the suite can check that the pre-scan never counts less. Only ever called on the
 * sample files (shallow), so the recursion here is harmless.
 */
#include "dcmtk/config/osconfig.h"

#include "dcmtk/dcmdata/dctk.h"
#include "dcmtk/oflog/oflog.h"

extern "C" int dcmc_test_dcmtk_depth(const char *path, unsigned *depth);

namespace {

unsigned item_depth(DcmItem *item)
{
    unsigned best = 0;
    for (unsigned long i = 0; i < item->card(); i++) {
        DcmElement *el = item->getElement(i);
        /* Pixel sequences (EVR_pixelSQ) are not sequences of data sets. */
        if (el == nullptr || el->ident() != EVR_SQ)
            continue;
        DcmSequenceOfItems *sq = static_cast<DcmSequenceOfItems *>(el);
        unsigned d = 1;
        for (unsigned long k = 0; k < sq->card(); k++) {
            unsigned sub = 1 + item_depth(sq->getItem(k));
            if (sub > d)
                d = sub;
        }
        if (d > best)
            best = d;
    }
    return best;
}

} // namespace

/* 0 and *depth (meta group and data set), or -1 when DCMTK does not load the file. */
extern "C" int dcmc_test_dcmtk_depth(const char *path, unsigned *depth)
{
    try {
        OFLog::configure(OFLogger::OFF_LOG_LEVEL);
        DcmFileFormat ff;
        if (ff.loadFile(path, EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect).bad())
            return -1;
        unsigned a = item_depth(ff.getMetaInfo()), b = item_depth(ff.getDataset());
        *depth = a > b ? a : b;
        return 0;
    } catch (...) {
        return -1;
    }
}

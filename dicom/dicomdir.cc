/*
 * dicomdir.cc - DICOMDIRs of study trees (docs/batch.md): the files one references, read as
 * untrusted input (none may leave the file-set), and a new one written over the converted
 * files with the original's File-set ID and descriptor.
 */
#include "internal.h"

#include "dcmtk/dcmdata/dcddirif.h"

#include <sys/stat.h>

#include <algorithm>

namespace dcmci {

namespace {

/* The File-set ID and File-set Descriptor File ID of the original DICOMDIR, as DCMTK will take
 * them (a DICOMDIR DCMTK cannot read gives neither). */
void fileset_attributes(const char *in, std::string &fsid, std::string &descriptor)
{
    check_nesting(in);
    DcmFileFormat ff;
    const bool ok = parsing(in, [&] {
        return ff.loadFile(in, EXS_Unknown, EGL_noChange, 4096, ERM_autoDetect).good();
    });
    if (ok) {
        fsid = get_string(ff.getDataset(), DCM_FileSetID);
        descriptor = get_string(ff.getDataset(), DCM_FileSetDescriptorFileID);
    }
    /* DCMTK takes only ISO 9660 characters in a File-set ID ("TINY ALPHA" is refused). */
    for (char &ch : fsid)
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_'))
            ch = '_';
    if (fsid.size() > 16)
        fsid.resize(16);
    for (char &ch : descriptor)
        if (ch == '\\')
            ch = '/';
}

/* The next Referenced File ID of the walk, or false at its end (inside the parse boundary:
 * DCMTK may load the values lazily). */
bool next_ref(DcmDataset *ds, DcmStack &stack, OFString &v)
{
    return parsing("a Referenced File ID", [&] {
        while (ds->search(DCM_ReferencedFileID, stack, ESM_afterStackTop, OFTrue).good()) {
            DcmElement *el = static_cast<DcmElement *>(stack.top());
            if (el->getOFStringArray(v).good() && !v.empty())
                return true;
        }
        return false;
    });
}

} // namespace

void dicomdir_refs(const char *in, std::vector<std::string> &refs)
{
    init_once();
    Loaded L;
    load(in, L, false);
    DcmStack stack;
    OFString v;
    while (next_ref(L.ds, stack, v)) {
        std::string r(v.c_str());
        for (char &ch : r)
            if (ch == '\\')
                ch = '/';
        if (r.find("..") != std::string::npos || r[0] == '/')
            fail(DCMC_ERR_FORMAT, "%s: Referenced File ID '%s' leaves the file-set", in, v.c_str());
        if (std::find(refs.begin(), refs.end(), r) == refs.end())
            refs.push_back(r);
    }
}

void dicomdir_write(const char *in, const char *out, const char *root, const char *const *files,
                    size_t n)
{
    init_once();
    std::string fsid, descriptor;
    fileset_attributes(in, fsid, descriptor);
    DicomDirInterface dd;
    dd.disableBackupMode();
    /* The objects are the tree's own: their syntax (JPEG, JPEG 2000...) and encoding stay as they
     * are, and records get placeholders where an attribute they need is missing. */
    dd.disableTransferSyntaxCheck();
    dd.disableEncodingCheck();
    dd.disableResolutionCheck();
    dd.disableConsistencyCheck();
    dd.enableInventMode();
    OFCondition c = dd.createNewDicomDir(DicomDirInterface::AP_GeneralPurpose, OFFilename(out),
                                         OFString(fsid.c_str()));
    if (c.bad())
        fail(DCMC_ERR_WRITE, "cannot create DICOMDIR %s: %s", out, c.text());
    if (!descriptor.empty()) {
        struct stat st;
        const std::string path = std::string(root) + "/" + descriptor;
        if (stat(path.c_str(), &st) == 0) /* kept only where the file came along */
            dd.setFilesetDescriptor(descriptor.c_str());
    }
    for (size_t i = 0; i < n; i++) {
        /* DCMTK parses each file it adds: inside the parse boundary. */
        c = parsing(files[i],
                    [&] { return dd.addDicomFile(OFFilename(files[i]), OFFilename(root)); });
        if (c.bad())
            fail(DCMC_ERR_FORMAT, "cannot add %s to the DICOMDIR: %s", files[i], c.text());
    }
    c = dd.writeDicomDir();
    if (c.bad())
        fail(DCMC_ERR_WRITE, "cannot write DICOMDIR %s: %s", out, c.text());
}

} // namespace dcmci

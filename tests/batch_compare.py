#!/usr/bin/python3
"""Judge a batch round trip with software we did not write (pydicom, GDCM, DCMTK's dcmdump).

    batch_compare.py ORIGINAL ENCRYPTED DECRYPTED [--missing REL ...]

For every file of ORIGINAL (except the --missing ones, which must have no output at all):
  * a DICOM object with pixel data: the encrypted object has a new SOP Instance UID and other
    pixels; the decrypted one has every attribute and every pixel value of the original (both
    decoded to native by gdcmconv --raw, then compared with pydicom);
  * a DICOMDIR: the rebuilt ones read in dcmdump, every Referenced File ID exists, and in the
    encrypted tree every record's Referenced SOP Instance UID in File is the referenced object's
    (new) SOP Instance UID;
  * a DICOM object without pixel data: the encrypted one is header-protected (a new SOP Instance
    UID, no original UID value anywhere in its bytes, an Encrypted Attributes Sequence); the
    decrypted one has every attribute of the original;
  * anything else: byte-identical in both trees.
Prints one line per problem and exits 1 if there was any.
"""
import os, subprocess, sys, tempfile

import numpy as np
import pydicom


def read(path, **kw):
    try:
        return pydicom.dcmread(path, **kw)
    except Exception:
        return None


def native(path, tmp):
    out = os.path.join(tmp, "n%d.dcm" % len(os.listdir(tmp)))
    p = subprocess.run(["gdcmconv", "--raw", "-i", path, "-o", out], capture_output=True)
    return read(out) if p.returncode == 0 else None


def attrs(ds):
    return {(e.tag, e.VR, str(e.value)) for e in ds if e.tag != 0x7FE00010 and e.tag.group != 2}


def refs(dicomdir):
    ds = read(dicomdir)
    out = []
    for rec in ds.DirectoryRecordSequence if ds is not None and "DirectoryRecordSequence" in ds else []:
        if "ReferencedFileID" in rec:
            rid = rec.ReferencedFileID
            rid = [rid] if isinstance(rid, str) else list(rid)
            out.append(("/".join(rid), str(rec.get("ReferencedSOPInstanceUIDInFile", ""))))
    return out


def uids(ds):
    """Every UI value that names an instance (not a class, syntax or coding scheme)."""
    keep = {0x00080016, 0x00081150, 0x0008010C, 0x00041510, 0x00041512, 0x00080062}
    out = set()
    for el in ds.iterall():
        if el.VR == "UI" and el.tag not in keep and el.tag.group != 2:
            vals = el.value if isinstance(el.value, (list, pydicom.multival.MultiValue)) else [el.value]
            out |= {str(v) for v in vals if v and not str(v).startswith("1.2.840.10008.")}
    return out


def header_problems(rel, po, pe, pd):
    """An object without pixel data: protected in the encrypted tree, restored in the other."""
    a, e, d = read(po), read(pe), read(pd)
    if a is None or e is None or d is None:
        return [f"{rel}: does not read (encrypted {e is not None}, decrypted {d is not None})"]
    out = []
    raw = open(pe, "rb").read()
    left = [u for u in uids(a) if u.encode() in raw]
    if left:
        out.append(f"{rel}: the encrypted copy keeps the original UID {left[0]}")
    if "EncryptedAttributesSequence" not in e:
        out.append(f"{rel}: the encrypted copy has no Encrypted Attributes Sequence")
    if attrs(a) != attrs(d):
        diff = sorted(attrs(a) ^ attrs(d), key=str)[:1]
        out.append(f"{rel}: restored attributes differ, e.g. {diff}")
    return out


def main():
    args = sys.argv[1:]
    missing = set()
    if "--missing" in args:
        i = args.index("--missing")
        missing = set(args[i + 1:])
        args = args[:i]
    orig, enc, dec = args
    problems, checked = [], {"image": 0, "dicomdir": 0, "header": 0, "other": 0}
    for root, _, names in os.walk(orig):
        for n in sorted(names):
            po = os.path.join(root, n)
            rel = os.path.relpath(po, orig)
            pe, pd = os.path.join(enc, rel), os.path.join(dec, rel)
            if rel in missing:
                for p in (pe, pd):
                    if os.path.lexists(p):
                        problems.append(f"{rel}: failed in the batch, yet {p} exists")
                continue
            if not os.path.exists(pe) or not os.path.exists(pd):
                problems.append(f"{rel}: no output")
                continue
            ds = read(po, stop_before_pixels=True)
            if ds is not None and "DirectoryRecordSequence" in ds:
                checked["dicomdir"] += 1
                for tree, path in (("encrypted", pe), ("decrypted", pd)):
                    if subprocess.run(["dcmdump", "-q", path], capture_output=True).returncode:
                        problems.append(f"{rel}: the {tree} DICOMDIR does not read in dcmdump")
                    base = os.path.dirname(path)
                    for fid, uid in refs(path):
                        target = os.path.join(base, fid)
                        if not os.path.exists(target):
                            problems.append(f"{rel} ({tree}): references {fid}, which does not exist")
                            continue
                        t = read(target, stop_before_pixels=True)
                        if t is None or str(t.get("SOPInstanceUID", "")) != uid:
                            problems.append(f"{rel} ({tree}): the record of {fid} has UID {uid}, "
                                            "the object another")
                if len(refs(pe)) != len(refs(po)) and os.path.basename(po) != "DICOMDIR-empty.dcm":
                    problems.append(f"{rel}: {len(refs(po))} references, rebuilt with {len(refs(pe))}")
                continue
            if ds is not None and "PixelData" in read(po):
                checked["image"] += 1
                with tempfile.TemporaryDirectory() as tmp:
                    a, e, d = native(po, tmp), read(pe), native(pd, tmp)
                    if a is None or d is None or e is None:
                        problems.append(f"{rel}: does not decode (original {a is not None}, "
                                        f"decrypted {d is not None})")
                        continue
                    if e.SOPInstanceUID == a.SOPInstanceUID:
                        problems.append(f"{rel}: the encrypted object kept its SOP Instance UID")
                    ep, ap, dp = e.pixel_array, a.pixel_array, d.pixel_array
                    if ep.shape == ap.shape and np.count_nonzero(ep == ap) > 0.05 * ap.size:
                        problems.append(f"{rel}: encrypted pixels too close to the original")
                    if dp.shape != ap.shape or not np.array_equal(dp, ap):
                        problems.append(f"{rel}: decrypted pixels differ from the original")
                    if attrs(a) != attrs(d):
                        diff = sorted(attrs(a) ^ attrs(d), key=str)[:1]
                        problems.append(f"{rel}: decrypted attributes differ, e.g. {diff}")
                continue
            if ds is not None:
                checked["header"] += 1
                problems += header_problems(rel, po, pe, pd)
                continue
            checked["other"] += 1
            data = open(po, "rb").read()
            for tree, p in (("encrypted", pe), ("decrypted", pd)):
                if open(p, "rb").read() != data:
                    problems.append(f"{rel}: the {tree} copy is not byte-identical")
    for p in problems:
        print(p)
    print(f"batch_compare: {checked['image']} images, {checked['dicomdir']} DICOMDIRs, "
          f"{checked['header']} objects without pixels, {checked['other']} other files; "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

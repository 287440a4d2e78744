#!/usr/bin/python3
"""Header protection and reversible de-identification, end to end, judged with software we did not
write (pydicom, DCMTK's dcmodify, dicom3tools' dciodvfy, GDCM's gdcmanon, the openssl CLI):

  1. default mode: no original instance UID anywhere in the encrypted bytes, one keyed Study
     Instance UID per study and key, the "encrypted" marks (Image Type, Series Description), no
     vendor private element, the cipher window instead of the original one, exact round trip;
  2. bound attributes: Rescale Slope, Patient Name, Study Instance UID and Window Width changed
     after encryption (dcmodify) are refused (exit 3, no output, the attribute named); an unbound
     one (Study Description) is not; pixels and block moved into another encrypted object fail;
  3. an enhanced MR object: every window at every depth is the cipher window, exact round trip;
  4. objects written by release 0.1 (tests/fuzz/seeds) still decrypt, exactly;
  5. --deidentify: planted identifying values gone, Patient Identity Removed, the method codes,
     the Encrypted Attributes Sequence, keyed pseudonyms and date shifts (same per key and
     patient, other with another key), --deid-options, exact round trip;
  6. dciodvfy finds no error in an encrypted object that the original did not have;
  7. gdcmanon interoperability: `gdcmanon -d` opens our Encrypted Attributes Sequence with a
     --recipient certificate's key, and an object gdcmanon de-identified keeps its sequence
     byte for byte through dcmencrypt/dcmdecrypt;
  8. a study tree with a structured report (--recurse): the report's references follow the
     images' new UIDs, nothing original left in it, and dcmdecrypt restores it exactly.

Usage: deid_test.py BINDIR SAMPLEDIR (SAMPLEDIR is sample-data, holding dicom/)
Prints `ok   ...` / `FAIL ...` / `SKIP ...` lines, exits 1 if anything failed.
"""
import copy, datetime, io, math, os, re, subprocess, sys

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import *  # noqa: E402,F401,F403 - the shared harness: ok/bad/check, run, compare

SAMPLES = sys.argv[2]
DICOM = os.path.join(SAMPLES, "dicom")
HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "fuzz", "seeds")
CT = os.path.join(DICOM, "pydicom_CT_small_128x128.dcm")
MR_BE = os.path.join(DICOM, "pydicom_MR_small_bigendian.dcm")
EMRI = os.path.join(DICOM, "pydicom-data_emri_small_enhancedMR_10frames.dcm")

# UIDs that name a class, a syntax or a coding scheme, not an instance (docs/dicom.md).
NON_INSTANCE_UI = {0x00080016, 0x00081150, 0x0008010C, 0x00041510, 0x00041512, 0x00080062,
                   0x0008001A, 0x0008001B, 0x04000510, 0x04000010}


def instance_uids(ds):
    out = set()
    for el in ds.iterall():
        if el.VR != "UI" or el.tag in NON_INSTANCE_UI or el.tag.group == 0x0002:
            continue
        vals = el.value if isinstance(el.value, (list, pydicom.multival.MultiValue)) else [el.value]
        for v in vals:
            v = str(v).strip("\0 ")
            if len(v) >= 8 and not v.startswith("1.2.840.10008."):
                out.add(v)
    return out


def leaked_uids(orig_ds, enc_path):
    raw = open(enc_path, "rb").read()
    return sorted(u for u in instance_uids(orig_ds) if u.encode() in raw)


def foreign_private(ds, top=True):
    """Private elements other than our own block (group 0011, creator DCMCRYPT 1, top level)."""
    out = []
    for el in ds:
        g, e = el.tag.group, el.tag.element
        if el.tag.is_private and e != 0:
            ours = False
            if top and g == 0x0011:
                creator = el.value if 0x10 <= e <= 0xFF else (ds.get((g, e >> 8)).value
                                                              if (g, e >> 8) in ds and e >= 0x1000 else None)
                ours = str(creator or "").strip() == "DCMCRYPT 1"
            if not ours:
                out.append(f"({g:04x},{e:04x})")
        if el.VR == "SQ":
            for item in el.value:
                out += foreign_private(item, False)
    return out


def all_values(ds, tag):
    """Every value of `tag` at every depth, as floats (multi-valued ones flattened)."""
    out = []
    for el in ds.iterall():
        if el.tag == tag:
            vals = el.value if isinstance(el.value, (list, pydicom.multival.MultiValue)) else [el.value]
            out += [float(v) for v in vals if v is not None and str(v) != ""]
    return out


def cipher_window(bits, signed, slope=1.0, intercept=0.0):
    """docs/dicom.md: centre the stored range's midpoint, width its span, through the rescale."""
    lo = -(1 << (bits - 1)) if signed else 0
    hi = lo + (1 << bits) - 1
    return intercept + slope * (lo + hi) / 2, abs(slope) * (hi - lo)


def near(a, b):
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-3)


def dciodvfy_errors(path):
    _, out, err = run(["dciodvfy", path])
    return {l.strip() for l in (out + err).splitlines() if l.strip().startswith("Error")}


# --- inputs made here --------------------------------------------------------------------------

def variant(src, dst, **changes):
    """A copy of src with another SOP Instance UID (unless given) and the given attributes."""
    ds = read(src)
    ds.SOPInstanceUID = changes.pop("SOPInstanceUID", generate_uid())
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for kw, v in changes.items():
        setattr(ds, kw, v)
    return save(ds, dst)


KEY = new_key("key")
KEY2 = new_key("key2")


# --- 1. default mode ---------------------------------------------------------------------------

def default_mode():
    section("1. default mode (no --deidentify): pydicom_CT_small_128x128.dcm")
    orig = read(CT)
    e1, e1b = p("ct.enc.dcm"), p("ct.enc.again.dcm")
    rc, _, err = encrypt(CT, e1, key=KEY)
    if not check(rc == 0, f"encrypt CT_small (exit {rc})", err.strip()[-300:]):
        return None
    e = read(e1)
    leak = leaked_uids(orig, e1)
    check(not leak, "no original instance UID in the encrypted bytes", f"found {leak[:3]}")
    check(str(e.SOPInstanceUID) != str(orig.SOPInstanceUID)
          and str(e.file_meta.MediaStorageSOPInstanceUID) == str(e.SOPInstanceUID),
          "new SOP Instance UID, also in the meta header")
    check(str(e.StudyInstanceUID) != str(orig.StudyInstanceUID) and str(e.StudyInstanceUID).startswith("2.25."),
          "Study Instance UID replaced by a 2.25 UID", str(e.StudyInstanceUID))

    # The same study, another instance; the same object again; another key.
    ct2 = variant(CT, p("ct2.dcm"))
    e2, e3 = p("ct2.enc.dcm"), p("ct.enc.key2.dcm")
    rc2 = encrypt(ct2, e2, key=KEY)[0]
    rc1b = encrypt(CT, e1b, key=KEY)[0]
    rc3 = encrypt(CT, e3, key=KEY2)[0]
    if check(rc2 == rc1b == rc3 == 0, "three more encryptions", f"exits {rc2} {rc1b} {rc3}"):
        x2, x1b, x3 = read(e2), read(e1b), read(e3)
        check(str(x2.StudyInstanceUID) == str(e.StudyInstanceUID)
              and str(x2.SeriesInstanceUID) == str(e.SeriesInstanceUID)
              and str(x2.SOPInstanceUID) != str(e.SOPInstanceUID),
              "two objects of one study: one new Study (and Series) UID, two SOP Instance UIDs")
        check(str(x1b.SOPInstanceUID) == str(e.SOPInstanceUID) and str(x1b.StudyInstanceUID) == str(e.StudyInstanceUID),
              "the same object encrypted again with the same key: the same UIDs")
        check(str(x3.StudyInstanceUID) != str(e.StudyInstanceUID),
              "another key: another Study Instance UID")

    it = [str(v) for v in e.get("ImageType", [])]
    check(it[:2] == ["DERIVED", "SECONDARY"] and it[-1] == "ENCRYPTED" and it[2:-1] == [str(v) for v in orig.ImageType][2:],
          "Image Type DERIVED\\SECONDARY\\...\\ENCRYPTED", "\\".join(it))
    check(str(e.get("SeriesDescription", "")).startswith("ENCRYPTED (dcmcrypt)"),
          "Series Description starts with ENCRYPTED (dcmcrypt)", repr(e.get("SeriesDescription")))
    fp = foreign_private(e)
    check(not fp, "no private element but group 0011 'DCMCRYPT 1'", f"found {fp[:6]}")
    check(str(e.get("WindowCenterWidthExplanation", "")) == "DCMCRYPT CIPHER VALUES",
          "a classic object without a window gets the cipher window")
    d1 = p("ct.dec.dcm")
    rc, _, err = decrypt(e1, d1, key=KEY)
    if check(rc == 0, f"decrypt (exit {rc})", err.strip()[-300:]):
        check_same("decrypted CT_small equals the original: every attribute (private ones, sequences), every pixel", CT, d1)

    # A window in the original: it tells the pixel range, so it goes (and comes back).
    ctw = variant(CT, p("ctw.dcm"), SOPInstanceUID=str(orig.SOPInstanceUID),
                  WindowCenter=["40", "300"], WindowWidth=["400", "1500"],
                  WindowCenterWidthExplanation=["SOFT", "BONE"], VOILUTFunction="LINEAR")
    ew, dw = p("ctw.enc.dcm"), p("ctw.dec.dcm")
    rc, _, err = encrypt(ctw, ew, key=KEY)
    if check(rc == 0, f"encrypt CT_small with a window (exit {rc})", err.strip()[-300:]):
        w = read(ew)
        wc, ww = all_values(w, 0x00281050), all_values(w, 0x00281051)
        want_c, want_w = cipher_window(int(w.BitsStored), int(w.PixelRepresentation) == 1,
                                       float(w.get("RescaleSlope", 1)), float(w.get("RescaleIntercept", 0)))
        check(wc and not {40.0, 300.0} & set(wc) and ww and not {400.0, 1500.0} & set(ww),
              "the original Window Center/Width values are gone", f"center {wc}, width {ww}")
        check(len(wc) == 1 and len(ww) == 1 and near(wc[0], want_c) and near(ww[0], want_w),
              f"one cipher window: center {want_c:g}, width {want_w:g}", f"got center {wc}, width {ww}")
        check(str(w.get("WindowCenterWidthExplanation", "")) == "DCMCRYPT CIPHER VALUES",
              "Window Center & Width Explanation is DCMCRYPT CIPHER VALUES", repr(w.get("WindowCenterWidthExplanation")))
        check("VOILUTFunction" not in w, "VOI LUT Function removed")
        check(str(w.StudyInstanceUID) == str(e.StudyInstanceUID), "the windowed copy (same study) gets the same Study UID")
        rc, _, err = decrypt(ew, dw, key=KEY)
        if check(rc == 0, f"decrypt the windowed copy (exit {rc})", err.strip()[-300:]):
            check_same("decrypted windowed copy equals it, window included", ctw, dw)
    return e1


# --- 2. bound attributes -----------------------------------------------------------------------

def bound_attributes(e1):
    section("2. bound attributes")
    if e1 is None:
        bad("no encrypted CT_small to work on")
        return
    # The message names the attribute by DCMTK's keyword and its tag (docs/dicom.md).
    cases = [("(0028,1053)=2", r"RescaleSlope \(0028,1053\)", "Rescale Slope"),
             ("(0010,0010)=SOMEONE^ELSE", r"PatientName \(0010,0010\)", "Patient Name"),
             ("(0020,000d)=1.2.826.0.1.3680043.2.1125.99.1", r"StudyInstanceUID \(0020,000[dD]\)", "Study Instance UID"),
             ("(0028,1051)=1234", r"WindowWidth \(0028,1051\)", "Window Width")]
    for i, (mod, pattern, what) in enumerate(cases):
        m, out = p(f"mod{i}.dcm"), p(f"mod{i}.dec.dcm")
        shutil.copy(e1, m)
        rc, o, err = run(["dcmodify", "-nb", "-i", mod, m])  # -i: modify, or insert when absent
        if not check(rc == 0, f"dcmodify -i {mod}", (o + err).strip()[-200:]):
            continue
        rc, _, err = decrypt(m, out, key=KEY)
        check(rc == 3 and not os.path.exists(out), f"{what} changed after encryption: exit 3, nothing written",
              f"exit {rc}, output {'written' if os.path.exists(out) else 'absent'}: {err.strip()[-200:]}")
        check(re.search(pattern, err) is not None and "changed after encryption" in err,
              f"... and the message names {what}", f"stderr: {err.strip()[-300:]!r}")

    # Study Description is not bound, by design: it is no part of the image's identity, geometry
    # or value mapping (docs/dicom.md, Bound attributes), and archives edit it freely.
    m, out = p("mod-desc.dcm"), p("mod-desc.dec.dcm")
    shutil.copy(e1, m)
    rc, o, err = run(["dcmodify", "-nb", "-i", "(0008,1030)=EDITED BY THE ARCHIVE", m])
    if check(rc == 0, "dcmodify -i (0008,1030) (Study Description)", (o + err).strip()[-200:]):
        rc, _, err = decrypt(m, out, key=KEY)
        check(rc == 0 and os.path.exists(out), f"an unbound attribute (Study Description) changed: still decrypts (exit {rc})",
              err.strip()[-300:])
    expect(0, "the unmodified encrypted object decrypts", [DEC, "--key-file", KEY, e1, p("unmod.dec.dcm")])

    # Moving pixels and block from one encrypted object into another. B: another instance of the
    # same size, a few other pixels, once of another patient and once of the same one (then only
    # the bound SOP Instance UID tells them apart).
    a_ds = read(CT)
    px = a_ds.pixel_array.copy()
    px[10:14, 10:14] += 7
    for name, pn in (("other patient", "OTHER^PATIENT"), ("same patient", str(a_ds.PatientName))):
        b = variant(CT, p("B.dcm"), PatientName=pn, PixelData=px.tobytes())
        eb, moved, out = p("B.enc.dcm"), p("moved.dcm"), p("moved.dec.dcm")
        rc = encrypt(b, eb, key=KEY)[0]
        if not check(rc == 0, f"encrypt B ({name}) (exit {rc})"):
            continue
        a, bb = read(e1), read(eb)
        for tag in [t for t in a.keys() if t.group == 0x0011]:
            del a[tag]
        for tag in [t for t in bb.keys() if t.group == 0x0011]:
            a[tag] = bb[tag]
        a.PixelData = bb.PixelData
        save(a, moved)
        rc, _, err = decrypt(moved, out, key=KEY)
        check(rc == 3 and not os.path.exists(out),
              f"B's ({name}) pixels and 0011 block moved into A's encrypted object: exit 3, nothing written",
              f"exit {rc}: {err.strip()[-200:]}")
        # B's block and pixels agree with each other (the MAC passes): what fails is the binding
        # to A's attributes, the SOP Instance UID at least.
        named = "(0010,0010)" if name == "other patient" else "(0008,0018)"
        check(named in err and "changed after encryption" in err, f"... refused as a bound attribute {named}",
              f"stderr: {err.strip()[-200:]!r}")
    control, out = p("control.dcm"), p("control.dec.dcm")
    save(read(e1), control)
    rc, _, err = decrypt(control, out, key=KEY)
    check(rc == 0, f"control: A's encrypted object read and written by pydicom still decrypts (exit {rc})",
          err.strip()[-200:])


# --- 3. enhanced MR ----------------------------------------------------------------------------

def enhanced_mr():
    section("3. enhanced MR: windows at every depth")
    ds = read(EMRI)
    n = int(ds.NumberOfFrames)
    # The sample has no functional groups: plant a shared identity rescale and a different
    # window per frame, as scanners write them.
    pvt = Dataset()
    pvt.RescaleIntercept, pvt.RescaleSlope, pvt.RescaleType = "0", "1", "US"
    ftype = Dataset()
    ftype.FrameType = ["ORIGINAL", "PRIMARY", "T1", "NONE"]
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([pvt])
    shared.MRImageFrameTypeSequence = Sequence([ftype])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    per = []
    for i in range(n):
        v = Dataset()
        v.WindowCenter, v.WindowWidth = str(900 + 13 * i), str(1700 + 7 * i)
        v.WindowCenterWidthExplanation = f"FRAME {i + 1}"
        item = Dataset()
        item.FrameVOILUTSequence = Sequence([v])
        per.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    src = save(ds, p("emr.dcm"))
    originals_c = set(all_values(ds, 0x00281050))
    originals_w = set(all_values(ds, 0x00281051))
    enc, dec = p("emr.enc.dcm"), p("emr.dec.dcm")
    rc, _, err = encrypt(src, enc, key=KEY)
    if not check(rc == 0, f"encrypt the enhanced MR (exit {rc})", err.strip()[-300:]):
        return
    e = read(enc)
    # Enhanced IODs fix Image Type and Frame Type (value 2 PRIMARY only in Enhanced MR) and make
    # attributes conditional on ORIGINAL: they keep theirs (docs/dicom.md).
    it = [str(v) for v in e.get("ImageType", [])]
    check(it == [str(v) for v in ds.ImageType], "an enhanced object keeps its Image Type", "\\".join(it))
    ft = [[str(v) for v in el.value] for el in e.iterall() if el.tag == 0x00089007]
    ft0 = [[str(v) for v in el.value] for el in ds.iterall() if el.tag == 0x00089007]
    check(ft == ft0, "... and its Frame Type at every depth", repr(ft[:2]))
    check(str(e.get("SeriesDescription", "")).startswith("ENCRYPTED (dcmcrypt)"),
          "... and says ENCRYPTED in its Series Description")
    wc, ww = all_values(e, 0x00281050), all_values(e, 0x00281051)
    want_c, want_w = cipher_window(int(e.BitsStored), int(e.PixelRepresentation) == 1)
    check(len(wc) >= n and len(ww) >= n, f"a window in each of the {n} per-frame items remains",
          f"{len(wc)} centers, {len(ww)} widths")
    check(all(near(c, want_c) for c in wc) and all(near(w, want_w) for w in ww),
          f"every Window Center/Width at every depth is the cipher window ({want_c:g}/{want_w:g})",
          f"centers {sorted(set(wc))[:5]}, widths {sorted(set(ww))[:5]}")
    check(not originals_c & set(wc) and not originals_w & set(ww), "no original per-frame window value left")
    expl = [str(el.value) for el in e.iterall() if el.tag == 0x00281055]
    check(expl and all(x == "DCMCRYPT CIPHER VALUES" for x in expl), "every explanation is DCMCRYPT CIPHER VALUES",
          repr(expl[:3]))
    leak = leaked_uids(ds, enc)
    check(not leak, "no original instance UID in the encrypted bytes", f"found {leak[:3]}")
    rc, _, err = decrypt(enc, dec, key=KEY)
    if check(rc == 0, f"decrypt the enhanced MR (exit {rc})", err.strip()[-300:]):
        check_same("decrypted enhanced MR equals the original, per-frame windows included", src, dec)


# --- 4. objects of release 0.1 -----------------------------------------------------------------

def compatibility():
    section("4. objects written by release 0.1 (tests/fuzz/seeds)")
    key42 = p("key42")
    with open(key42, "w") as f:
        f.write("42" * 32 + "\n")
    os.chmod(key42, 0o600)
    seeds = sorted(f for f in os.listdir(SEEDS) if f.startswith("enc-") and f.endswith(".dcm"))
    check(len(seeds) >= 6, f"{len(seeds)} seed objects found", ", ".join(seeds))
    exact = {"enc-pydicom_CT_small_128x128.dcm", "enc-pydicom_rtdose_32bit_15frames.dcm",
             "enc-highdicom_seg_image_ct_binary_overlap_1bit_8frames.dcm"}
    for s in seeds:
        out = p("seed-" + s)
        if s == "enc-pass-CT_small.dcm":
            rc, _, err = run([DEC, "--passphrase-env", "DCMC_SEED_PASS", os.path.join(SEEDS, s), out],
                             env={"DCMC_SEED_PASS": "fuzz pass phrase"})
        else:
            rc, _, err = decrypt(os.path.join(SEEDS, s), out, key=key42)
        if check(rc == 0, f"{s} decrypts (exit {rc})", err.strip()[-300:]) and s in exact:
            check_same(f"... and equals sample-data/dicom/{s[4:]} exactly", os.path.join(DICOM, s[4:]), out)
    # Written by 0.2 (protected attributes 3, tests/compat): each decrypts to its original exactly.
    compat = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compat")
    olds = sorted(f for f in os.listdir(compat) if f.endswith(".dcm"))
    check(len(olds) >= 3, f"{len(olds)} objects of format 3 found", ", ".join(olds))
    for s in olds:
        out, name = p("compat-" + s), re.sub(r"^v3-(deid-)?", "", s)
        rc, _, err = decrypt(os.path.join(compat, s), out, key=key42)
        if check(rc == 0, f"tests/compat/{s} decrypts (exit {rc})", err.strip()[-300:]):
            check_same(f"... and equals sample-data/dicom/{name} exactly", os.path.join(DICOM, name), out)


# --- 5. --deidentify ---------------------------------------------------------------------------

PLANTED = {
    "PatientName": "ZEBULON^KWAME^ARCHIBALD",
    "PatientID": "HOSP-ID-55117733",
    "PatientBirthDate": "19570812",
    "InstitutionName": "GREENFIELD MEMORIAL CLINIC",
    "ReferringPhysicianName": "QUIMBY^FREDERICA",
    "StationName": "SCANROOM42XZ",
    "DeviceSerialNumber": "SERIAL90817263",
    "AccessionNumber": "ACCN20230917",
    "StudyDate": "20180623",
}
NESTED = "RQPROC81726354"
PRIVATE = "VENDOR^SECRET^NOTE"


def planted(dst, **more):
    ds = read(CT)
    for kw, v in PLANTED.items():
        setattr(ds, kw, v)
    item = Dataset()
    item.RequestedProcedureID = NESTED
    ds.RequestAttributesSequence = Sequence([item])
    block = ds.private_block(0x0029, "EXAMPLE VENDOR 1", create=True)
    block.add_new(0x10, "LO", PRIVATE)
    ds.SOPInstanceUID = more.pop("SOPInstanceUID", ds.SOPInstanceUID)
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for kw, v in more.items():
        setattr(ds, kw, v)
    return save(ds, dst)


def day(da):
    return datetime.date(int(da[:4]), int(da[4:6]), int(da[6:8]))


def instant(ds, what):
    """The datetime of (what)Date and (what)Time, seconds precision."""
    t = str(ds.get(f"{what}Time", "") or "000000").split(".")[0].ljust(6, "0")
    return datetime.datetime.combine(day(str(ds.get(f"{what}Date"))),
                                     datetime.time(int(t[:2]), int(t[2:4]), int(t[4:6])))


def shift(orig, enc, what):
    return instant(enc, what) - instant(orig, what)


def deidentify():
    section("5. --deidentify")
    src = planted(p("pl.dcm"))
    # Another study of the same patient.
    src2 = planted(p("pl2.dcm"), SOPInstanceUID=generate_uid(), StudyInstanceUID=generate_uid(),
                   SeriesInstanceUID=generate_uid(), StudyDate="20210105", AccessionNumber="ACCN20210105")
    enc, enc2, again, other = p("pl.enc.dcm"), p("pl2.enc.dcm"), p("pl.again.dcm"), p("pl.key2.dcm")
    rc, _, err = encrypt(src, enc, "--deidentify", key=KEY)
    if not check(rc == 0, f"encrypt with --deidentify (exit {rc})", err.strip()[-300:]):
        return
    raw = open(enc, "rb").read()
    found = [f"{k}={v}" for k, v in list(PLANTED.items()) + [("RequestedProcedureID", NESTED), ("private", PRIVATE)]
             if v.encode() in raw]
    check(not found, "no planted identifying value in the encrypted bytes (top level, nested, private)",
          f"found {found}")
    orig = read(src)
    leak = leaked_uids(orig, enc)
    check(not leak, "no original instance UID in the encrypted bytes", f"found {leak[:3]}")
    e = read(enc)
    check(str(e.get("PatientIdentityRemoved", "")) == "YES", "Patient Identity Removed is YES",
          repr(e.get("PatientIdentityRemoved")))
    codes = {str(i.get("CodeValue", "")) for i in e.get("DeidentificationMethodCodeSequence", [])}
    want = {"113100", "113107", "113108", "113111", "113105"}
    check(want <= codes, "De-identification Method Code Sequence: 113100 and the default options' codes",
          f"missing {sorted(want - codes)}, has {sorted(codes)}")
    check(not {"113109", "113112", "113106"} & codes, "... and no code of an option not chosen", sorted(codes))
    eas = e.get("EncryptedAttributesSequence")
    check(eas is not None and len(eas) >= 1 and "EncryptedContent" in eas[0]
          and str(eas[0].get("EncryptedContentTransferSyntaxUID", "")) == "1.2.840.10008.1.2.1",
          "Encrypted Attributes Sequence: an item with explicit VR little endian content")
    # Retain Safe Private is a default option: GE's scan parameters on the profile's safe list
    # (GEMS_ACQU_01, GEMS_PARM_01 in CT_small) may stay; the planted block may not.
    kept = {f"({el.tag.group:04x},{el.tag.element:04x})" for el in e.iterall() if el.tag.group == 0x0029}
    check(not kept, "the planted vendor block (0029) 'EXAMPLE VENDOR 1' is not kept", f"found {sorted(kept)[:6]}")
    check(str(e.PatientID) and str(e.PatientID) != PLANTED["PatientID"], "Patient ID is a pseudonym", str(e.PatientID))

    rc2 = encrypt(src2, enc2, "--deidentify", key=KEY)[0]
    rca = encrypt(src, again, "--deidentify", key=KEY)[0]
    rco = encrypt(src, other, "--deidentify", key=KEY2)[0]
    if check(rc2 == rca == rco == 0, "three more --deidentify encryptions", f"exits {rc2} {rca} {rco}"):
        e2, ea, eo = read(enc2), read(again), read(other)
        check(all(str(ea.get(k, "")) == str(e.get(k, "")) for k in
                  ("PatientID", "PatientName", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "StudyDate")),
              "a second run with the same key: the same pseudonyms, UIDs and dates")
        check(str(eo.PatientID) != str(e.PatientID) and str(eo.StudyInstanceUID) != str(e.StudyInstanceUID),
              "another key: another Patient ID pseudonym and Study Instance UID",
              f"{eo.PatientID} / {eo.StudyInstanceUID}")
        check(str(e2.PatientID) == str(e.PatientID), "another study of the same patient: the same Patient ID pseudonym",
              f"{e2.PatientID} vs {e.PatientID}")
        check(str(e2.StudyInstanceUID) != str(e.StudyInstanceUID), "... and its own Study Instance UID")
        try:
            # One shift of date and time together per patient: compare instants, not days (a time
            # near midnight moves its date one day more than another's).
            o2 = read(src2)
            s1 = shift(orig, e, "Study")
            s2 = shift(o2, e2, "Study")
            check(s1 == s2 and s1, f"the Study Date/Time of both files are shifted by the same {s1}",
                  f"{s1} and {s2}")
            sd = shift(orig, e, "Series") if orig.get("SeriesDate") and e.get("SeriesDate") else None
            check(sd == s1, "Series Date/Time shifted by the same as the Study Date/Time", f"{sd} vs {s1}")
        except Exception as ex:  # noqa: BLE001
            bad(f"dates not readable after --deidentify: {ex!r:.160} (StudyDate {e.get('StudyDate')!r})")

    dec = p("pl.dec.dcm")
    rc, _, err = decrypt(enc, dec, key=KEY)
    if check(rc == 0, f"dcmdecrypt of the de-identified object (exit {rc})", err.strip()[-300:]):
        check_same("... gives back the planted object exactly (names, dates, nested, private, pixels)", src, dec)

    nsp = p("pl.nosafe.dcm")
    rc, _, err = encrypt(src, nsp, "--deid-options", "no-safe-private", key=KEY)
    if check(rc == 0, f"--deid-options no-safe-private (exit {rc})", err.strip()[-300:]):
        fp = foreign_private(read(nsp))
        check(not fp, "... no private element left but our block", f"found {fp[:6]}")
    dev = p("pl.dev.dcm")
    rc, _, err = encrypt(src, dev, "--deid-options", "device-identity", key=KEY)
    if check(rc == 0, f"--deid-options device-identity (exit {rc})", err.strip()[-300:]):
        d = read(dev)
        check(str(d.get("StationName", "")) == PLANTED["StationName"], "... keeps Station Name", repr(d.get("StationName")))
        codes = {str(i.get("CodeValue", "")) for i in d.get("DeidentificationMethodCodeSequence", [])}
        check("113109" in codes, "... and says so (113109)", sorted(codes))
    nod = p("pl.nodates.dcm")
    rc, _, err = encrypt(src, nod, "--deid-options", "no-modified-dates", key=KEY)
    if check(rc == 0, f"--deid-options no-modified-dates (exit {rc})", err.strip()[-300:]):
        d = read(nod)
        sd = str(d.get("StudyDate", "") or "")
        shifted = read(enc).get("StudyDate")
        check(sd == "" and PLANTED["StudyDate"].encode() not in open(nod, "rb").read(),
              "... Study Date removed or empty (not shifted, not kept)", f"Study Date {sd!r} (shifted one: {shifted})")
        codes = {str(i.get("CodeValue", "")) for i in d.get("DeidentificationMethodCodeSequence", [])}
        check("113107" not in codes, "... and 113107 is not claimed", sorted(codes))


# --- 6. dciodvfy -------------------------------------------------------------------------------

def iod_validity():
    section("6. dciodvfy: no new error")
    for src in (CT, MR_BE, EMRI):
        name = os.path.basename(src)
        native = p("native-" + name)
        before = dciodvfy_errors(src)
        if run(["dcmconv", "+te", src, native])[0] == 0:
            before |= dciodvfy_errors(native)
        for mode, extra in (("default", []), ("--deidentify", ["--deidentify"])):
            enc = p(f"iod-{mode.strip('-')}-{name}")
            rc, _, err = encrypt(src, enc, *extra, key=KEY)
            if not check(rc == 0, f"{name} ({mode}): encrypt (exit {rc})", err.strip()[-300:]):
                continue
            new = sorted(dciodvfy_errors(enc) - before)
            if not check(not new, f"{name} ({mode}): dciodvfy reports no error the original did not have",
                         f"{len(new)} new errors:"):
                for line in new:
                    print(f"       {line}")


# --- 7. gdcmanon -------------------------------------------------------------------------------

def gdcmanon():
    section("7. gdcmanon interoperability")
    if not shutil.which("gdcmanon"):
        skip("gdcmanon is not installed (libgdcm-tools): interoperability not tested")
        return
    k, c = p("rsa.key.pem"), p("rsa.cert.pem")
    rc, _, err = run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", k, "-out", c,
                      "-days", "2", "-subj", "/CN=test"])
    if not check(rc == 0, "openssl makes an RSA key and a self-signed certificate", err.strip()[-200:]):
        return
    src = planted(p("gd.dcm"))
    o = read(src)
    # (a) our sequence, opened by gdcmanon with the recipient's private key.
    enc, re_id = p("gd.enc.dcm"), p("gd.reid.dcm")
    rc, _, err = encrypt(src, enc, "--deidentify", "--recipient", c, key=KEY)
    if check(rc == 0, f"dcmencrypt --deidentify --recipient CERT (exit {rc})", err.strip()[-300:]):
        eas = read(enc).get("EncryptedAttributesSequence", [])
        check(len(eas) == 1, "one Encrypted Attributes Sequence item", f"{len(eas)} items")
        rc, out, err = run(["gdcmanon", "-d", "-k", k, "-i", enc, "-o", re_id])
        if check(rc == 0 and os.path.exists(re_id), f"gdcmanon -d -k KEY opens it (exit {rc})", (out + err).strip()[-300:]):
            r = read(re_id)
            for kw in ("PatientName", "PatientID", "StudyDate", "InstitutionName", "StudyInstanceUID"):
                check(str(r.get(kw, "")) == str(o.get(kw, "")), f"... and restores {kw}",
                      f"{r.get(kw)!r}, original {o.get(kw)!r}")
    # (b) gdcmanon's own sequence through dcmencrypt and dcmdecrypt.
    anon, enc, dec, re_id = p("gd.anon.dcm"), p("gd.anon.enc.dcm"), p("gd.anon.dec.dcm"), p("gd.anon.reid.dcm")
    rc, out, err = run(["gdcmanon", "-e", "-c", c, "-i", src, "-o", anon])
    if not check(rc == 0 and os.path.exists(anon), f"gdcmanon -e -c CERT de-identifies (exit {rc})", (out + err).strip()[-300:]):
        return
    rc, _, err = encrypt(anon, enc, key=KEY)
    if not check(rc == 0, f"dcmencrypt of gdcmanon's output (exit {rc})", err.strip()[-300:]):
        return
    rc, _, err = decrypt(enc, dec, key=KEY)
    if not check(rc == 0, f"dcmdecrypt of it (exit {rc})", err.strip()[-300:]):
        return
    a, d = read(anon), read(dec)
    ia, idd = a.get("EncryptedAttributesSequence", []), d.get("EncryptedAttributesSequence", [])
    check(len(ia) >= 1 and len(ia) == len(idd) and all(
        bytes(x.EncryptedContent) == bytes(y.EncryptedContent)
        and str(x.get("EncryptedContentTransferSyntaxUID")) == str(y.get("EncryptedContentTransferSyntaxUID"))
        for x, y in zip(ia, idd)), "gdcmanon's Encrypted Attributes Sequence comes back byte for byte",
        f"{len(ia)} items before, {len(idd)} after")
    check_same("... and the whole gdcmanon output comes back exactly", anon, dec)
    rc, out, err = run(["gdcmanon", "-d", "-k", k, "-i", dec, "-o", re_id])
    if check(rc == 0 and os.path.exists(re_id), f"gdcmanon -d -k KEY on our decrypted output (exit {rc})",
             (out + err).strip()[-300:]):
        check(str(read(re_id).get("PatientName", "")) == PLANTED["PatientName"], "... restores the original Patient Name",
              repr(read(re_id).get("PatientName")))


# --- 8. a study tree with a structured report --------------------------------------------------

def basic_text_sr(images, dst):
    first = read(images[0])
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.Modality = "SR"
    for kw in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
               "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName"):
        setattr(ds, kw, first.get(kw, ""))
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber, ds.InstanceNumber = 99, 1
    ds.Manufacturer = "dcmcrypt tests"
    ds.ContentDate, ds.ContentTime = "20040119", "080000"
    ds.ValueType, ds.ContinuityOfContent = "CONTAINER", "SEPARATE"
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    title = Dataset()
    title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning = "18748-4", "LN", "Diagnostic Imaging Report"
    ds.ConceptNameCodeSequence = Sequence([title])
    refs, content = [], []
    for path in images:
        im = read(path)
        r = Dataset()
        r.ReferencedSOPClassUID, r.ReferencedSOPInstanceUID = im.SOPClassUID, im.SOPInstanceUID
        refs.append(r)
        item = Dataset()
        item.RelationshipType, item.ValueType = "CONTAINS", "IMAGE"
        name = Dataset()
        name.CodeValue, name.CodingSchemeDesignator, name.CodeMeaning = "121233", "DCM", "Source image for segmentation"
        item.ConceptNameCodeSequence = Sequence([name])
        item.ReferencedSOPSequence = Sequence([copy.deepcopy(r)])
        content.append(item)
    text = Dataset()
    text.RelationshipType, text.ValueType, text.TextValue = "CONTAINS", "TEXT", "No acute finding."
    tname = Dataset()
    tname.CodeValue, tname.CodingSchemeDesignator, tname.CodeMeaning = "121071", "DCM", "Finding"
    text.ConceptNameCodeSequence = Sequence([tname])
    ds.ContentSequence = Sequence(content + [text])
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    series.ReferencedSOPSequence = Sequence(refs)
    study = Dataset()
    study.StudyInstanceUID = first.StudyInstanceUID
    study.ReferencedSeriesSequence = Sequence([series])
    ds.CurrentRequestedProcedureEvidenceSequence = Sequence([study])
    ds.preamble = b"\0" * 128
    ds.save_as(dst, write_like_original=False)
    return dst


def study_tree():
    section("8. a study tree with a structured report (--recurse)")
    tin, tout, tdec = p("tree-in"), p("tree-enc"), p("tree-dec")
    os.makedirs(os.path.join(tin, "series1"))
    os.makedirs(os.path.join(tin, "reports"))
    im1 = shutil.copy(CT, os.path.join(tin, "series1", "ct1.dcm"))
    im2 = variant(CT, os.path.join(tin, "series1", "ct2.dcm"))
    sr = basic_text_sr([im1, im2], os.path.join(tin, "reports", "sr.dcm"))
    rc, out, err = run([ENC, "--key-file", KEY, "--recurse", "-j", "2", tin, tout])
    if not check(rc == 0, f"dcmencrypt --recurse of images and a Basic Text SR (exit {rc})", (out + err).strip()[-400:]):
        return
    e1, e2 = read(os.path.join(tout, "series1", "ct1.dcm")), read(os.path.join(tout, "series1", "ct2.dcm"))
    esr_path = os.path.join(tout, "reports", "sr.dcm")
    esr, osr = read(esr_path), read(sr)
    check(str(esr.StudyInstanceUID) == str(e1.StudyInstanceUID) == str(e2.StudyInstanceUID)
          and str(esr.StudyInstanceUID) != str(osr.StudyInstanceUID),
          "the report has the encrypted images' new Study Instance UID")
    want = [str(e1.SOPInstanceUID), str(e2.SOPInstanceUID)]
    ev = esr.CurrentRequestedProcedureEvidenceSequence[0]
    got_ev = [str(r.ReferencedSOPInstanceUID) for r in ev.ReferencedSeriesSequence[0].ReferencedSOPSequence]
    check(got_ev == want, "evidence sequence: the referenced SOP Instance UIDs are the encrypted images'",
          f"{got_ev} vs {want}")
    check(str(ev.StudyInstanceUID) == str(e1.StudyInstanceUID)
          and str(ev.ReferencedSeriesSequence[0].SeriesInstanceUID) == str(e1.SeriesInstanceUID),
          "evidence sequence: study and series UIDs are the encrypted images'")
    got_ct = [str(i.ReferencedSOPSequence[0].ReferencedSOPInstanceUID) for i in esr.ContentSequence if i.ValueType == "IMAGE"]
    check(got_ct == want, "content tree: the IMAGE items reference the encrypted images", f"{got_ct} vs {want}")
    orig_uids = instance_uids(osr) | instance_uids(read(im1)) | instance_uids(read(im2))
    raw = open(esr_path, "rb").read()
    leak = sorted(u for u in orig_uids if u.encode() in raw)
    check(not leak, "no original UID in the report's output bytes", f"found {leak[:3]}")
    check(str(esr.SOPInstanceUID) != str(osr.SOPInstanceUID), "the report has a new SOP Instance UID")
    check("EncryptedAttributesSequence" in esr, "the report carries its originals in an Encrypted Attributes Sequence")
    marks = [str(el.value) for el in esr if el.tag.group == 0x0011 and el.tag.element >= 0x1000]
    check(any(m.startswith("HEADER PROTECTED (dcmcrypt)") for m in marks), "... and says HEADER PROTECTED (dcmcrypt)",
          repr(marks))
    fp = foreign_private(esr)
    check(not fp, "the report has no private element but our block", f"found {fp[:6]}")

    rc, out, err = run([DEC, "--key-file", KEY, "--recurse", "-j", "2", tout, tdec])
    if check(rc == 0, f"dcmdecrypt --recurse (exit {rc})", (out + err).strip()[-400:]):
        check_same("the report comes back exactly", sr, os.path.join(tdec, "reports", "sr.dcm"))
        check_same("image 1 comes back exactly", im1, os.path.join(tdec, "series1", "ct1.dcm"))
        check_same("image 2 comes back exactly", im2, os.path.join(tdec, "series1", "ct2.dcm"))
    one = p("sr.single.dec.dcm")
    rc, _, err = decrypt(esr_path, one, key=KEY)
    if check(rc == 0, f"single-file dcmdecrypt of the protected report (exit {rc})", err.strip()[-300:]):
        check_same("... restores it exactly", sr, one)
    # Given alone to dcmencrypt, the report is protected the same way: same bytes' meaning.
    alone = p("sr.single.enc.dcm")
    rc, _, err = encrypt(sr, alone, key=KEY)
    if check(rc == 0, f"single-file dcmencrypt of the report protects its header (exit {rc})", err.strip()[-300:]):
        a = read(alone)
        check(str(a.SOPInstanceUID) == str(esr.SOPInstanceUID) and "EncryptedAttributesSequence" in a,
              "... with the same new UIDs as in the tree")
        rc, _, err = decrypt(alone, p("sr.single.alone.dcm"), key=KEY)
        if check(rc == 0, f"... and dcmdecrypt restores it (exit {rc})", err.strip()[-300:]):
            check_same("... exactly", sr, p("sr.single.alone.dcm"))
    rc, _, err = decrypt(esr_path, p("sr.wrong.dcm"), key=KEY2)
    check(rc == 3 and not os.path.exists(p("sr.wrong.dcm")), f"the report with a wrong key: exit 3, nothing written (exit {rc})",
          err.strip()[-200:])


# --- 9. the passphrase as a CMS password recipient -------------------------------------------

def password_recipient():
    section("9. --password-recipient: the passphrase opens the sequence with openssl cms")
    src = os.path.join(SAMPLES, "dicom", "pydicom_CT_small_128x128.dcm")
    enc = p("pw.enc.dcm")
    env = {"DCMC_TEST_PW": "correct horse battery staple 42"}
    expect(1, "--password-recipient with a key file is refused",
           [ENC, "--key-file", KEY, "--deidentify", "--password-recipient", src, p("pw.x.dcm")])
    rc, _ = expect(0, "dcmencrypt --passphrase-env --deidentify --password-recipient",
                   [ENC, "--passphrase-env", "DCMC_TEST_PW", "--deidentify", "--password-recipient",
                    src, enc], env)
    if rc != 0:
        return
    der = bytes(read(enc).EncryptedAttributesSequence[0].EncryptedContent)
    with open(p("pw.der"), "wb") as f:
        f.write(der)
    rc, out, err = run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", p("pw.der"),
                        "-pwri_password", env["DCMC_TEST_PW"], "-binary", "-out", p("pw.plain")])
    if check(rc == 0, "openssl cms -decrypt -pwri_password opens it", (out + err).strip()[-300:]):
        from pydicom.filereader import read_dataset
        with open(p("pw.plain"), "rb") as f:
            content = read_dataset(io.BytesIO(f.read()), is_implicit_VR=False, is_little_endian=True)
        item = content.ModifiedAttributesSequence[0]
        orig = read(src)
        check(str(item.PatientName) == str(orig.PatientName) and
              str(item.SOPInstanceUID) == str(orig.SOPInstanceUID),
              "... to the original Patient Name and SOP Instance UID")
    rc, out, err = run(["openssl", "cms", "-decrypt", "-inform", "DER", "-in", p("pw.der"),
                        "-pwri_password", "wrong", "-binary", "-out", p("pw.bad")])
    check(rc != 0, "... and not with another password")
    expect(0, "dcmdecrypt with the passphrase", [DEC, "--passphrase-env", "DCMC_TEST_PW", enc,
                                                  p("pw.dec.dcm")], env)
    check_same("... gives back the original", src, p("pw.dec.dcm"))


def main():
    state = {}
    return run_steps(
        (("default_mode", lambda: state.update(e1=default_mode())),
         ("bound_attributes", lambda: bound_attributes(state.get("e1"))),
         ("enhanced_mr", enhanced_mr), ("compatibility", compatibility), ("deidentify", deidentify),
         ("iod_validity", iod_validity), ("gdcmanon", gdcmanon), ("study_tree", study_tree),
         ("password_recipient", password_recipient)), headings=False)


if __name__ == "__main__":
    sys.exit(main())

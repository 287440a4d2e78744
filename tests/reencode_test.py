#!/usr/bin/python3
"""Encrypted objects in archives that re-encode, end to end, judged with software we did not write
(DCMTK's dcmcjpls/dcmcjpeg/dcmcrle/dcmconv, GDCM's gdcmconv, pydicom):

  1. every lossless re-encoding an archive applies (JPEG-LS, JPEG lossless SV1, RLE, JPEG 2000,
     deflate, big endian) still decrypts, to exactly what the untouched object decrypts to, also
     where GDCM edits the header while it re-encodes (UIDs invented, SOP class changed);
  2. a lossy re-encoding is refused as such (exit 3, "lossy recompression", nothing written);
  3. the private block removed (an anonymizer dropping private elements): exit 3 saying so, and
     dcmencrypt refuses to encrypt those cipher values again; the block damaged: exit 3 saying
     so; another key: exit 3 saying so;
  4. compact output: native by default; with --transfer-syntax keep a lossless-compressed
     original's encrypted object keeps its family and is smaller than native; every
     --transfer-syntax writes that syntax and decrypts exactly; an unknown one is a usage error;
  5. UIDs stored with VR UN are mapped like any UID, and the round trip is exact;
  6. a lossy JPEG 2000 original without Lossy Image Compression decrypts flagged "01" with its
     method; trailing padding (FFFC,FFFC) leaves the encrypted object and comes back exactly.

Usage: reencode_test.py BINDIR SAMPLEDIR (SAMPLEDIR is sample-data, holding dicom/)
Prints `ok   ...` / `FAIL ...` / `SKIP ...` lines, exits 1 if anything failed.
"""
import os, subprocess, sys

import numpy as np
from pydicom.encaps import encapsulate, generate_pixel_data_frame
from pydicom.tag import Tag

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import *  # noqa: E402,F401,F403 - the shared harness: ok/bad/check, run, compare

DICOM = os.path.join(sys.argv[2], "dicom")
CT = os.path.join(DICOM, "pydicom_CT_small_128x128.dcm")
JLS = os.path.join(DICOM, "dcm_qa_ts_7_JPEG-LS.dcm")
EMRI = os.path.join(DICOM, "pydicom-data_emri_small_enhancedMR_10frames.dcm")
RGB = os.path.join(DICOM, "pydicom_SC_rgb_small_odd_3x3.dcm")
KEY, KEY2 = new_key("key"), new_key("key2")

SAMPLES = [CT, JLS, EMRI, RGB, os.path.join(DICOM, "dcm_qa_12bit_12bitSigned_0x0F0F.dcm"),
           os.path.join(DICOM, "pydicom_MR_small_bigendian.dcm"),
           os.path.join(DICOM, "dcm_qa_ts_9_J2K-lossless.dcm"),
           os.path.join(DICOM, "highdicom_seg_image_ct_binary_overlap_1bit_8frames.dcm")]

REENCODERS = {
    "JPEG-LS lossless": lambda i, o: ["dcmcjpls", i, o],
    "JPEG lossless SV1": lambda i, o: ["dcmcjpeg", "+e1", i, o],
    "RLE": lambda i, o: ["dcmcrle", i, o],
    "JPEG 2000 lossless": lambda i, o: ["gdcmconv", "--j2k", "-i", i, "-o", o],
    "deflate": lambda i, o: ["dcmconv", "+td", i, o],
    "big endian": lambda i, o: ["dcmconv", "+tb", i, o],
}


# --- 1. lossless re-encodings --------------------------------------------------------------------

def lossless_reencodings():
    for src in SAMPLES:
        name = os.path.basename(src)
        enc, dec = p(name + ".enc"), p(name + ".dec")
        if not check(encrypt(src, enc, "--transfer-syntax", "explicit", key=KEY)[0] == 0 and
                     decrypt(enc, dec, key=KEY)[0] == 0, f"{name}: encrypted and decrypted"):
            continue
        enc_px = pixel_values(enc)
        for what, cmd in REENCODERS.items():
            t, out = p(name + ".t"), p(name + ".t.dec")
            for f in (t, out):
                if os.path.exists(f):
                    os.unlink(f)
            if run(cmd(enc, t))[0] != 0 or not os.path.exists(t):
                skip(f"{name}: {what}: the re-encoder refused it")
                continue
            t_px = pixel_values(t)
            if t_px is None or enc_px is None or not np.array_equal(t_px, enc_px):
                skip(f"{name}: {what}: the re-encoder itself was not lossless here")
                continue
            rc, _, err = decrypt(t, out, key=KEY)
            if check(rc == 0, f"{name}: decrypts after {what} re-encoding", err.strip()[-300:]):
                check_same(f"{name}: ... exactly as without it", dec, out, meta=False)


def archive_edits():
    """GDCM's JPEG 2000 re-encoding edits headers: it invents Study/Series Instance UIDs where an
    object has none and moves a multi-frame object out of a single-frame class. Undone exactly."""
    ds = read(EMRI)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"  # MR Image
    for kw in ("StudyInstanceUID", "SeriesInstanceUID"):
        delattr(ds, kw)
    src = save(ds, p("mr-multiframe.dcm"))
    enc, t, dec, out = p("mf.enc"), p("mf.j2k"), p("mf.dec"), p("mf.j2k.dec")
    if not check(encrypt(src, enc, key=KEY)[0] == 0 and decrypt(enc, dec, key=KEY)[0] == 0,
                 "a multi-frame MR Image object without study and series UIDs: encrypted, decrypted"):
        return
    if run(["gdcmconv", "--j2k", "-i", enc, "-o", t])[0] != 0:
        skip("gdcmconv --j2k refused it")
        return
    g = read(t)
    info = f"GDCM wrote SOP class {g.get('SOPClassUID')}, Study UID {'StudyInstanceUID' in g}"
    rc, _, err = decrypt(t, out, key=KEY)
    if check(rc == 0, f"decrypts after gdcmconv --j2k ({info})", err.strip()[-300:]):
        check_same("... exactly as without it", dec, out, meta=False)


# --- 2, 3. what cannot be decrypted, said clearly --------------------------------------------------

def refused(name, path, want_rc, want_text, key=KEY):
    out = p("refused.dcm")
    if os.path.exists(out):
        os.unlink(out)
    rc, _, err = decrypt(path, out, key=key)
    check(rc == want_rc and want_text in err.lower() and not os.path.exists(out),
          f"{name}: exit {want_rc}, '{want_text}', nothing written", f"exit {rc}: {err.strip()[-300:]}")


def without(src, dst, pred):
    ds = read(src)
    for tag in [t for t in ds.keys() if pred(Tag(t))]:
        del ds[tag]
    return save(ds, dst)


def diagnosis():
    enc = p("rgb.enc")
    encrypt(RGB, enc, key=KEY)
    lossy = p("rgb.lossy")
    if run(["dcmcjpeg", "+eb", enc, lossy])[0] == 0:
        refused("JPEG baseline re-encoding", lossy, 3, "lossy recompression")
    else:
        bad("dcmcjpeg +eb could not make the lossy copy")
    enc_ct, lossy_ct = p("ct.enc"), p("ct.lossyj2k")
    encrypt(EMRI, enc_ct, key=KEY)
    if run(["gdcmconv", "--j2k", "--lossy", "-q", "30", "-i", enc_ct, "-o", lossy_ct])[0] == 0:
        refused("lossy JPEG 2000 re-encoding", lossy_ct, 3, "lossy recompression")
    else:
        skip("gdcmconv --j2k --lossy could not make the lossy copy")
    # What an anonymizer's Basic Profile leaves of an enhanced object: no private block, no
    # descriptions or comments (its Image Type was never marked); the windows stay.
    gone = without(enc_ct, p("noblock.dcm"), lambda t: t.group == 0x0011 or t in (
        Tag(0x0008, 0x103E), Tag(0x0020, 0x4000), Tag(0x0008, 0x2111)))
    refused("private block and descriptions removed", gone, 3, "was removed")
    rc, _, err = encrypt(gone, p("again.dcm"), key=KEY)
    check(rc == 2 and "cipher values" in err, "dcmencrypt refuses cipher values whose block was removed",
          f"exit {rc}: {err.strip()[-200:]}")
    damaged = without(enc_ct, p("damaged.dcm"), lambda t: t.group == 0x0011 and t.element & 0xFF == 0x01
                      and t.element > 0xFF)
    refused("header element of the block removed", damaged, 3, "damaged")
    refused("another key", enc_ct, 3, "another", key=KEY2)
    # A re-encoded object whose header (not yet authenticated) and dataset claim 30000 frames: the
    # decompression-bomb limit holds on the decryption path too, before any decoder runs.
    jls = p("ct.jls")
    if run(["dcmcjpls", enc_ct, jls])[0] == 0:
        ds = read(jls)
        for el in ds:
            if el.tag.group == 0x0011 and el.tag.element > 0xFF and el.tag.element & 0xFF == 0x01:
                h = bytearray(el.value)
                h[82:86] = (30000).to_bytes(4, "little")  # frames (format.md, header)
                el.value = bytes(h)
        ds.NumberOfFrames = 30000
        bomb = save(ds, p("bomb.dcm"))
        rc, _, err = run(["/usr/bin/time", "-f", "%M", DEC, "--key-file", KEY, bomb, p("bomb.out")])
        kb = int(err.strip().splitlines()[-1]) if err.strip().splitlines()[-1].isdigit() else -1
        check(rc == 2 and "decompression bomb" in err and 0 < kb < 100000,
              f"a re-encoded object claiming 30000 frames: refused as a bomb (exit {rc}, {kb} KB)", err.strip()[-200:])
    # A codestream its decoder cannot read (Orthanc 1.10's JPEG-LS encoder writes such copies):
    # damaged after encryption, exit 3 like any other damage, not "cannot be decoded here".
    j2k = p("ct.j2k")
    if run(["gdcmconv", "--j2k", "-i", enc_ct, "-o", j2k])[0] != 0:
        bad("gdcmconv --j2k could not re-encode the encrypted object")
    for name, src in (("JPEG-LS", jls), ("JPEG 2000", j2k)):
        if not os.path.exists(src):
            continue
        ds = read(src)
        frames = list(generate_pixel_data_frame(ds.PixelData, int(ds.NumberOfFrames)))
        frames[0] = frames[0][:64]  # the first frame cut short: its header, no data
        ds.PixelData = encapsulate(frames)
        refused(f"{name} codestream cut short", save(ds, p(f"cut-{name}.dcm")), 3, "does not decode")


# --- 4. compact output ------------------------------------------------------------------------------

def syntax_of(path):
    return str(read(path).file_meta.TransferSyntaxUID)


def compact_output():
    native, deflated, kept = p("jls.native"), p("jls.deflated"), p("jls.kept")
    if check(encrypt(JLS, native, key=KEY)[0] == 0 and
             encrypt(JLS, kept, "--transfer-syntax", "keep", key=KEY)[0] == 0 and
             encrypt(JLS, deflated, "--transfer-syntax", "deflated", key=KEY)[0] == 0,
             "a JPEG-LS original encrypted by default, with --transfer-syntax keep and deflated"):
        check(syntax_of(native) == "1.2.840.10008.1.2.1", "by default it is native", syntax_of(native))
        check(syntax_of(kept) == "1.2.840.10008.1.2.4.80", "keep: it stays JPEG-LS lossless", syntax_of(kept))
        check(syntax_of(deflated) == "1.2.840.10008.1.2.1.99", "deflated: deflated", syntax_of(deflated))
        n = os.path.getsize(native)
        for what, f in (("deflated", deflated), ("JPEG-LS", kept)):
            check(os.path.getsize(f) < 0.9 * n, f"{what} is smaller than native ({os.path.getsize(f)} vs {n} bytes)")
            dec = f + ".dec"
            check(decrypt(f, dec, key=KEY)[0] == 0, f"{what}: decrypted")
            check_same(f"{what}: ... to the original exactly", JLS, dec, meta=False)
    enc = p("ct.keep")
    if check(encrypt(CT, enc, "--transfer-syntax", "keep", key=KEY)[0] == 0, "a native original with keep"):
        check(syntax_of(enc) == "1.2.840.10008.1.2.1", "... stays native", syntax_of(enc))
    for name, uid in (("jpeg-ls", "1.2.840.10008.1.2.4.80"), ("jpeg-lossless", "1.2.840.10008.1.2.4.70"),
                      ("rle", "1.2.840.10008.1.2.5"), ("j2k", "1.2.840.10008.1.2.4.90"),
                      ("deflated", "1.2.840.10008.1.2.1.99"), ("1.2.840.10008.1.2.4.90", None)):
        enc, dec = p(f"emri.{name}"), p(f"emri.{name}.dec")
        rc, _, err = encrypt(EMRI, enc, "--transfer-syntax", name, key=KEY)
        if not check(rc == 0, f"--transfer-syntax {name} (exit {rc})", err.strip()[-200:]):
            continue
        check(syntax_of(enc) == (uid or name), f"... writes {uid or name}", syntax_of(enc))
        check(decrypt(enc, dec, key=KEY)[0] == 0, "... decrypts")
        check_same("... exactly", EMRI, dec, meta=False)
    rc, _, err = encrypt(EMRI, p("x.dcm"), "--transfer-syntax", "jpeg-baseline", key=KEY)
    check(rc == 1 and not os.path.exists(p("x.dcm")), f"--transfer-syntax jpeg-baseline: usage error (exit {rc})")


# --- 5, 6. UN, lossy flag, padding ----------------------------------------------------------------

def un_uids():
    ds = read(CT)
    for kw in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
        el = ds.data_element(kw)
        raw = str(el.value).encode()
        ds.add_new(el.tag, "UN", raw + b"\0" * (len(raw) % 2))
    ds.is_implicit_VR, ds.is_little_endian = False, True
    src = save(ds, p("un.dcm"))
    orig = read(CT)
    enc, dec = p("un.enc"), p("un.dec")
    rc, _, err = encrypt(src, enc, key=KEY)
    if check(rc == 0, "UIDs with VR UN: encrypted", err.strip()[-200:]):
        e = read(enc)
        check(str(e.StudyInstanceUID) != str(orig.StudyInstanceUID) and
              str(e.SeriesInstanceUID) != str(orig.SeriesInstanceUID), "... the UN UIDs are mapped too")
        check(decrypt(enc, dec, key=KEY)[0] == 0, "... decrypted")
        check_same("... to the original exactly (pydicom reads UN as the dictionary VR too)", src, dec, meta=False)


def lossy_flag():
    j2k = p("lossy.j2k.dcm")
    if run(["gdcmconv", "--j2k", "--lossy", "-q", "40", "-i", CT, "-o", j2k])[0] != 0:
        skip("gdcmconv could not make a lossy JPEG 2000 object")
        return
    ds = read(j2k)
    for kw in ("LossyImageCompression", "LossyImageCompressionMethod", "LossyImageCompressionRatio"):
        if kw in ds:
            delattr(ds, kw)
    src = save(ds, p("lossy.noflag.dcm"))
    enc, dec = p("lossy.enc"), p("lossy.dec")
    if check(encrypt(src, enc, key=KEY)[0] == 0 and decrypt(enc, dec, key=KEY)[0] == 0,
             "a lossy JPEG 2000 object without Lossy Image Compression: encrypted, decrypted"):
        d = read(dec)
        check(str(d.get("LossyImageCompression")) == "01" and
              "ISO_15444_1" in str(d.get("LossyImageCompressionMethod")),
              "... decrypted as flagged lossy: 01, ISO_15444_1",
              f"{d.get('LossyImageCompression')!r} {d.get('LossyImageCompressionMethod')!r}")


def padding():
    ds = read(CT)
    ds.add_new(0xFFFCFFFC, "OB", bytes(range(64)))
    src = save(ds, p("pad.dcm"))
    enc, dec = p("pad.enc"), p("pad.dec")
    if check(encrypt(src, enc, key=KEY)[0] == 0, "an object with trailing padding: encrypted"):
        check(0xFFFCFFFC not in read(enc), "... the padding is not in the encrypted object")
        check(decrypt(enc, dec, key=KEY)[0] == 0, "... decrypted")
        check_same("... with the padding back, exactly", src, dec, meta=False)


def main():
    return run_steps((("lossless re-encodings", lossless_reencodings), ("archive edits", archive_edits),
                      ("diagnosis", diagnosis),
                      ("compact output", compact_output), ("UN", un_uids),
                      ("lossy flag", lossy_flag), ("padding", padding)))


if __name__ == "__main__":
    sys.exit(main())

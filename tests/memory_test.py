#!/usr/bin/python3
"""Peak memory of dcmencrypt and dcmdecrypt on large objects (docs/dicom.md, "Streaming";
docs/scaling.md, "Memory"): a 1000-frame 512x512 16-bit object (524 MB of pixel data, built here
a frame at a time) must encrypt and decrypt in less than 200 MB of resident memory, and one
4096x4096 16-bit frame (the network runs in bands of rows) in less than 300 MB, exactly, with
nothing left beside the output; a tampered last frame and a wrong key must give exit 3 and no
output file.

Usage: memory_test.py BINDIR [--frames N] [--limit-mb MB] [--large-limit-mb MB]
Prints `ok   ...` / `FAIL ...` lines and the measured peaks, exits 1 if anything failed. Long
(ctest -L long): about 3 minutes of CPU on 2 cores and 2 GB of scratch disk.
"""
import argparse, io, os, struct, subprocess, sys, time

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e import COUNT, DEC, ENC, check, new_key, p  # noqa: E402 - the shared harness

def frame(k, rows):
    """Frame k of rows x rows 16-bit words, 12 bits stored: every word canonical."""
    y, x = np.mgrid[0:rows, 0:rows]
    return ((x * 3 + y * 5 + k * 7) % 4096).astype("<u2").tobytes()


def build(path, frames, rows):
    """A multi-frame secondary capture, written a frame at a time (pydicom would hold it whole).
    Returns the offset of the Pixel Data value, the last element."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"  # multi-frame grayscale word SC
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "OT", "Test^Memory", "MEM1"
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.NumberOfFrames = frames
    head = io.BytesIO()
    ds.save_as(head, write_like_original=False)
    n = frames * rows * rows * 2
    with open(path, "wb") as f:
        f.write(head.getvalue())
        f.write(b"\xe0\x7f\x10\x00OW\x00\x00" + struct.pack("<I", n))
        at = f.tell()
        for k in range(frames):
            f.write(frame(k, rows))
    return at


def measured(cmd):
    """Run cmd; (exit status, peak resident memory of that process in MB, seconds, stderr).
    Through GNU time where there is one: the peak a forked child reports counts what its parent
    held before the exec, and this script holds frames now and then."""
    t0 = time.monotonic()
    report = p("time.txt")
    timed = os.path.exists("/usr/bin/time")
    pre = ["/usr/bin/time", "-f", "%M", "-o", report] if timed else []
    proc = subprocess.Popen([str(c) for c in pre + cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    err = proc.stderr.read().decode(errors="replace")
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    kb = ru.ru_maxrss
    if timed:
        with open(report) as f:
            kb = int(f.read().split()[-1])
        os.unlink(report)
    return proc.returncode, kb / 1024.0, time.monotonic() - t0, err


def same_tail(a, b, n):
    """The last n bytes of two files are equal (each file's Pixel Data is its last element)."""
    with open(a, "rb") as fa, open(b, "rb") as fb:
        fa.seek(-n, os.SEEK_END)
        fb.seek(-n, os.SEEK_END)
        while n > 0:
            k = min(n, 16 << 20)
            if fa.read(k) != fb.read(k):
                return False
            n -= k
    return True


def leftovers(keep):
    return sorted(set(os.listdir(p())) - set(keep))


def case(key, other, frames, rows, limit):
    """Encrypt, decrypt, refuse a wrong key and a tampered last frame, within limit MB."""
    src, enc, dec = p("mf.dcm"), p("mf.enc.dcm"), p("mf.dec.dcm")
    build(src, frames, rows)
    pixels = frames * rows * rows * 2
    files = ["key", "other", "mf.dcm"]
    print(f"object: {frames} frames of {rows}x{rows}, 16 bits: {pixels / 1e6:.0f} MB of pixel data",
          flush=True)

    rc, mb, s, err = measured([ENC, "--key-file", key, src, enc])
    print(f"dcmencrypt: peak {mb:.1f} MB, {s:.1f} s", flush=True)
    if not check(rc == 0, f"encrypted (exit {rc})", err.strip()[-400:]):
        return
    files.append("mf.enc.dcm")
    check(mb < limit, f"dcmencrypt peak {mb:.1f} MB < {limit:g} MB")
    check(not same_tail(src, enc, rows * rows * 2), "the last frame is encrypted")
    check(leftovers(files) == [], "nothing left beside the encrypted object", leftovers(files))

    rc, mb, s, err = measured([DEC, "--key-file", key, enc, dec])
    print(f"dcmdecrypt: peak {mb:.1f} MB, {s:.1f} s", flush=True)
    check(rc == 0, f"decrypted (exit {rc})", err.strip()[-400:])
    check(mb < limit, f"dcmdecrypt peak {mb:.1f} MB < {limit:g} MB")
    check(os.path.exists(dec) and same_tail(src, dec, pixels), "every pixel back exactly")
    files.append("mf.dec.dcm")
    check(leftovers(files) == [], "nothing left beside the decrypted object", leftovers(files))
    os.unlink(dec)
    files.remove("mf.dec.dcm")

    rc, mb, s, err = measured([DEC, "--key-file", other, enc, dec])
    check(rc == 3 and not os.path.exists(dec), f"wrong key: exit {rc}, nothing written",
          err.strip()[-400:])
    with open(enc, "r+b") as f:  # one bit of the last frame's last word
        f.seek(-1, os.SEEK_END)
        last = f.read(1)[0]
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last ^ 0x04]))
    rc, mb, s, err = measured([DEC, "--key-file", key, enc, dec])
    print(f"dcmdecrypt of the tampered object: peak {mb:.1f} MB, {s:.1f} s", flush=True)
    check(rc == 3 and not os.path.exists(dec) and "integrity" in err,
          f"last frame tampered: exit {rc}, nothing written", err.strip()[-400:])
    check(leftovers(files) == [], "nothing left after the refusals", leftovers(files))
    os.unlink(src)
    os.unlink(enc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bindir")
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--limit-mb", type=float, default=200)
    ap.add_argument("--large-limit-mb", type=float, default=300)
    a = ap.parse_args()
    key, other = new_key("key"), new_key("other")
    case(key, other, a.frames, 512, a.limit_mb)
    case(key, other, 1, 4096, a.large_limit_mb)

    print(f"{COUNT['passed']} passed, {COUNT['failed']} failed")
    return 1 if COUNT["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The measurements behind docs/scaling.md's "Busy machines" and "Memory" tables.

Usage: scripts/scaling.py --bin build/bin [--slices 100] [--frames 10,100,1000] [--sizes 512,2048,4096]

1. Cipher only: `dcmcrypt-bench --bits 16 --preset at-resnet-cm` at 1 and 2 threads, idle and
   `--contended` (a busy thread on every core), 512x512 16-bit frames.
2. End to end: `dcmencrypt --recurse` of a series of N 512x512 16-bit CT slices (made here from
   one synthetic slice, every slice different) at `-j 1 --threads 1`, `-j 1 --threads 2` and the
   default (`-j 2`), idle and with a busy process on every core (`yes > /dev/null`), against the
   cipher-only time of as many frames.
3. Peak resident memory (`/usr/bin/time -f %M`) of dcmencrypt and dcmdecrypt on multi-frame
   objects of 512x512 16-bit frames, by frame count, and of dcmcrypt-bench by frame size.

Prints markdown tables; nothing is asserted (speed is measured, not tested). Needs pydicom and
numpy (Debian python3-pydicom, python3-numpy). Run it on an otherwise idle machine.
"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def dataset(rows, frames, k=0):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3" if frames > 1 else "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.2.3.4", "1.2.3.4.5"
    ds.Modality, ds.PatientName, ds.PatientID, ds.InstanceNumber = ("CT" if frames == 1 else "OT"), "Scale^Test", "S1", k + 1
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if frames > 1:
        ds.NumberOfFrames = frames
    y, x = np.mgrid[0:rows, 0:rows]
    body = (((x - rows / 2) ** 2 + (y - rows / 2) ** 2) < (rows / 2.3) ** 2) * 1000
    return ds, (body + (x * 3 + y * 5) % 97).astype(np.uint16)


def write_series(d, n):
    os.makedirs(d)
    for k in range(n):
        ds, img = dataset(512, 1, k)
        ds.PixelData = np.roll(img, k, axis=0).tobytes()
        ds.save_as(os.path.join(d, f"IM{k:04d}.dcm"), write_like_original=False)


def write_multiframe(path, n):
    ds, img = dataset(512, n)
    with open(path + ".px", "wb") as f:  # frames one after another without holding them all
        for k in range(n):
            f.write(np.roll(img, k, axis=1).tobytes())
    ds.PixelData = b""
    ds.save_as(path, write_like_original=False)
    # Pixel Data last: rewrite its length and append the frames.
    raw = open(path, "rb").read()
    tag = b"\xe0\x7f\x10\x00OW\x00\x00"
    at = raw.rindex(tag)
    size = os.path.getsize(path + ".px")
    with open(path, "wb") as f:
        f.write(raw[:at] + tag + size.to_bytes(4, "little"))
        with open(path + ".px", "rb") as px:
            shutil.copyfileobj(px, f, 1 << 24)
    os.unlink(path + ".px")


class Busy:
    """A busy process on every core while it is open."""

    def __enter__(self):
        self.procs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(os.cpu_count() or 1)]
        return self

    def __exit__(self, *a):
        for p in self.procs:
            p.kill()
            p.wait()


def bench(bin_dir, *args):
    out = subprocess.run([os.path.join(bin_dir, "dcmcrypt-bench"), *args], capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        if line.startswith("preset="):
            rows.append(dict(kv.split("=", 1) for kv in line.split()))
    return rows


def timed(cmd, env=None):
    t0 = time.monotonic()
    r = subprocess.run(["/usr/bin/time", "-f", "%M %U %S", *cmd], capture_output=True, text=True, env=env)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr[-400:]}")
    kb, user, sys_ = r.stderr.strip().splitlines()[-1].split()
    return wall, int(kb) / 1024, float(user) + float(sys_)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--slices", type=int, default=100)
    ap.add_argument("--frames", default="10,100,1000")
    ap.add_argument("--sizes", default="512,2048,4096")
    a = ap.parse_args()
    enc, dec = os.path.join(a.bin, "dcmencrypt"), os.path.join(a.bin, "dcmdecrypt")
    tmp = tempfile.mkdtemp(prefix="dcmc-scaling-")
    try:
        key = os.path.join(tmp, "key")
        with open(key, "w") as f:
            f.write("ab" * 32 + "\n")
        os.chmod(key, 0o600)

        print("## Cipher only and end to end (512x512 16-bit, at-resnet-cm)\n")
        cipher = {}
        for cont in (0, 1):
            for r in bench(a.bin, "--frames", "20", "--bits", "16", "--preset", "at-resnet-cm", *(["--contended"] if cont else [])):
                cipher[(int(r["threads"]), cont)] = float(r["ms_per_frame"])
        series = os.path.join(tmp, "series")
        write_series(series, a.slices)
        print(f"| run | idle: s for {a.slices} slices | busy machine | cipher only (bench), idle / busy |")
        print("| --- | ---: | ---: | --- |")
        for label, opts, thr in (("`-j 1 --threads 1`", ["-j", "1", "--threads", "1"], 1),
                                 ("`-j 1 --threads 2`", ["-j", "1", "--threads", "2"], 2),
                                 ("`-j 2` (default)", [], 2)):
            res = []
            for cont in (0, 1):
                out = os.path.join(tmp, "out")
                shutil.rmtree(out, ignore_errors=True)
                cmd = [enc, "--key-file", key, "--recurse", "-q", *opts, series, out]
                if cont:
                    with Busy():
                        res.append(timed(cmd)[0])
                else:
                    res.append(timed(cmd)[0])
            ci = [cipher[(thr, c)] * a.slices / 1000 for c in (0, 1)]
            print(f"| {label} | {res[0]:.2f} | {res[1]:.2f} | {ci[0]:.2f} / {ci[1]:.2f} s ({thr} thread{'s' if thr > 1 else ''}) |")
        print()
        print("| threads | idle ms/frame | busy ms/frame |")
        print("| --- | ---: | ---: |")
        for t in (1, 2):
            print(f"| {t} | {cipher[(t, 0)]:.1f} | {cipher[(t, 1)]:.1f} |")

        print("\n## Peak resident memory\n")
        print("| object | dcmencrypt | dcmdecrypt | time enc / dec |")
        print("| --- | ---: | ---: | --- |")
        for n in [int(x) for x in a.frames.split(",")]:
            src, e, d = (os.path.join(tmp, f"mf{n}{s}.dcm") for s in ("", ".enc", ".dec"))
            write_multiframe(src, n)
            we, me, _ = timed([enc, "--key-file", key, src, e])
            wd, md, _ = timed([dec, "--key-file", key, e, d])
            mb = os.path.getsize(src) / 1e6
            print(f"| {n} frames 512x512 16-bit ({mb:.0f} MB) | {me:.0f} MiB | {md:.0f} MiB | {we:.1f} / {wd:.1f} s |")
            for f in (src, e, d):
                os.unlink(f)
        print("\n| frame (dcmcrypt-bench, 2 frames, 2 threads) | peak |")
        print("| --- | ---: |")
        for size in [int(x) for x in a.sizes.split(",")]:
            r = bench(a.bin, "--frames", "2", "--bits", "16", "--preset", "at-resnet-cm", "--threads", "2", "--size", str(size))[0]
            print(f"| {size}x{size} 16-bit | {float(r['peak_mib']):.0f} MiB |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

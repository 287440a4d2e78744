#!/usr/bin/python3
"""The size table of docs/scaling.md: every compressed DICOM object under the given folders
(encapsulated or deflated transfer syntax), its size, and the size of its encrypted object as
dcmencrypt writes it by default (native) and with --transfer-syntax keep and deflated, plus the
transfer syntax `keep` wrote. Prints a Markdown table and the totals.

Usage: scripts/sizes.py [--bin build/bin] FOLDER...
"""
import argparse, hashlib, os, subprocess, sys, tempfile

import pydicom

NAMES = {
    "1.2.840.10008.1.2.1": "explicit", "1.2.840.10008.1.2.1.99": "deflated", "1.2.840.10008.1.2.5": "RLE",
    "1.2.840.10008.1.2.4.50": "JPEG baseline", "1.2.840.10008.1.2.4.51": "JPEG extended",
    "1.2.840.10008.1.2.4.57": "JPEG lossless", "1.2.840.10008.1.2.4.70": "JPEG lossless SV1",
    "1.2.840.10008.1.2.4.80": "JPEG-LS", "1.2.840.10008.1.2.4.81": "JPEG-LS near",
    "1.2.840.10008.1.2.4.90": "J2K lossless", "1.2.840.10008.1.2.4.91": "J2K",
    "1.2.840.10008.1.2.4.201": "HTJ2K lossless", "1.2.840.10008.1.2.4.203": "HTJ2K",
}


def syntax(path):
    try:
        return str(pydicom.dcmread(path, stop_before_pixels=True, force=True).file_meta.TransferSyntaxUID)
    except Exception:  # noqa: BLE001 - not DICOM: not in the table
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("folders", nargs="+")
    a = ap.parse_args()
    enc = os.path.join(a.bin, "dcmencrypt")
    tmp = tempfile.mkdtemp(prefix="dcmc-sizes-")
    key = os.path.join(tmp, "key")
    with open(key, "w") as f:
        f.write(hashlib.sha256(b"dcmcrypt sizes").hexdigest() + "\n")
    os.chmod(key, 0o600)
    rows, tot = [], [0, 0, 0, 0]
    for folder in a.folders:
        for root, _, names in os.walk(folder):
            for n in sorted(names):
                path = os.path.join(root, n)
                ts = syntax(path)
                if ts is None or not (ts.startswith("1.2.840.10008.1.2.4") or ts in ("1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.99")):
                    continue
                sizes, kept_ts = [], ""
                for mode in ("explicit", "keep", "deflated"):
                    out = os.path.join(tmp, mode + ".dcm")
                    if os.path.exists(out):
                        os.unlink(out)
                    r = subprocess.run([enc, "--key-file", key, "--transfer-syntax", mode, path, out],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    sizes.append(os.path.getsize(out) if r.returncode == 0 and os.path.exists(out) else None)
                    if mode == "keep" and sizes[-1]:
                        kept_ts = NAMES.get(syntax(out), syntax(out))
                if None in sizes:
                    continue
                orig = os.path.getsize(path)
                rows.append((n, NAMES.get(ts, ts), orig, *sizes, kept_ts))
                for i, v in enumerate((orig, *sizes)):
                    tot[i] += v
    print("| object | syntax | original | encrypted (default) | `keep` | as | `deflated` |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: |")
    for n, ts, o, e, k, d, kts in rows:
        print(f"| {n[:48]} | {ts} | {o / 1e3:.0f} KB | {e / 1e3:.0f} KB | {k / 1e3:.0f} KB | {kts} | {d / 1e3:.0f} KB |")
    mb = [t / 1e6 for t in tot]
    print(f"| **{len(rows)} objects** | | **{mb[0]:.1f} MB** | **{mb[1]:.1f} MB** | **{mb[2]:.1f} MB** | | **{mb[3]:.1f} MB** |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

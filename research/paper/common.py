"""What the scripts here share: OpenMP set up before torch loads, and reading the images they train on.

Images are single-channel PNG (Pillow) and DICOM (pydicom), as stored integers.

Depth: a PNG is 8 or 16 bits (Pillow mode L, or I / I;16); a DICOM image is its Bits Stored, first
frame, stored values (signed ones shifted up by 2^(BitsStored-1)); colour and palette images are skipped.
"""
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "sample-data", "png"))


def passive_openmp():
    """Starts this script again with OMP_WAIT_POLICY=PASSIVE unless it or GOMP_SPINCOUNT is set.

    Call it before torch is imported: libgomp reads the variable when it loads, and OpenMP workers that
    spin at barriers cost several times their work on a shared machine (apps/runtime.c does the same).
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
        os.execv(sys.executable, [sys.executable] + sys.argv)


def import_torch():
    """PyTorch, after passive_openmp(); a script without it exits 3 with a line saying what to install."""
    passive_openmp()
    try:
        import torch
    except ImportError:
        print(f"{os.path.basename(sys.argv[0])}: PyTorch is not installed (Debian: python3-torch)", file=sys.stderr)
        sys.exit(3)
    return torch


def read_png(path):
    from PIL import Image
    with Image.open(path) as im:
        if im.mode == "L":
            return np.asarray(im, dtype=np.uint16), 8
        if im.mode in ("I", "I;16", "I;16B", "I;16L"):
            a = np.asarray(im).astype(np.int64)
            if a.min() < 0 or a.max() > 65535:
                raise ValueError("16-bit PNG with values outside 0..65535")
            return a.astype(np.uint16), 16
        raise ValueError(f"Pillow mode {im.mode}: not single-channel 8- or 16-bit")


def read_dicom(path):
    import pydicom
    ds = pydicom.dcmread(path)
    if "PixelData" not in ds:
        raise ValueError("no pixel data")
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        raise ValueError("not single-channel")
    bits = int(ds.BitsStored)
    if bits > 16:
        raise ValueError(f"Bits Stored {bits}: more than 16")
    a = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        a = a[0]
    a = a.astype(np.int64)
    if int(ds.get("PixelRepresentation", 0)) == 1:
        a = a + (1 << (bits - 1))
    if a.min() < 0 or a.max() >= (1 << bits):
        raise ValueError(f"values outside {bits} bits")
    return a.astype(np.uint16), bits


def read_image(path):
    """(uint16 array [H,W], depth in bits); ValueError (or the reader's own error) if it is not usable."""
    if path.lower().endswith(".png"):
        return read_png(path)
    return read_dicom(path)


def load_folder(folder, bits):
    """Every file below folder (sorted): ([(path, array)] of depth bits, [(path, why skipped)])."""
    found, skipped = [], []
    paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(folder) for f in fs)
    for path in paths:
        try:
            a, depth = read_image(path)
        except Exception as e:  # any unreadable file is reported and skipped, never fatal
            skipped.append((path, f"{type(e).__name__}: {e}"))
            continue
        if depth != bits:
            skipped.append((path, f"{depth}-bit, training for {bits}"))
            continue
        found.append((path, a))
    return found, skipped

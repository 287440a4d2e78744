#!/usr/bin/python3
"""research/paper: a one-epoch training run, the weight file, the shipped weights and fixtures.

  1. one epoch (16 steps of 64 16x16 crops) on two small 8-bit images, a PNG and a DICOM written here
     (a 16-bit PNG beside them must be skipped): the loss is finite and the evaluation loss after the
     epoch is below the one before; the curve PNG and CSV are written; two short runs with the same
     seed give the same file byte for byte;
  2. the weight file: save -> load gives the same tensors for both variants and an odd shape, load ->
     save gives the same bytes; a flipped byte anywhere, a truncated or extended file is refused;
  3. an independent reader and forward pass in numpy, written from README.md alone (not from
     model.py), gives the shipped fixtures' outputs from the shipped weight files;
  4. fixture.py --check: the shipped fixtures are what the shipped weights give under PyTorch.

Usage: paper_train_test.py SOURCEDIR. Prints `ok   ...` / `FAIL ...` lines, exits 1 if anything
failed, 77 (ctest SKIP_RETURN_CODE) with one SKIP line when PyTorch is not installed.
"""
import hashlib
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

SRC = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
PAPER = os.path.join(SRC, "research", "paper")
PNG = os.path.join(SRC, "sample-data", "png")
VARIANTS = ("at-resnet-cm", "resnet-cm")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
try:
    import matplotlib  # noqa: F401
    import PIL  # noqa: F401
    import torch
except ImportError as missing:
    print(f"SKIP: {missing.name} not installed (Debian packages python3-torch, python3-pil, python3-matplotlib: "
          "DCMCRYPT_EXTRAS=1 scripts/install-deps.sh): research/paper not tested")
    sys.exit(77)
torch.set_num_threads(2)
sys.path.insert(0, PAPER)
import model as M  # noqa: E402

FAILS = 0
START = time.monotonic()


def check(cond, what):
    global FAILS
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    FAILS += 0 if cond else 1
    return cond


def run(*args):
    return subprocess.run([sys.executable] + list(args), capture_output=True, text=True)


def small_images(tmp):
    from PIL import Image
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    chest = np.asarray(Image.open(os.path.join(PNG, "nema-wg04_CT1_chest_512x512_gray8.png")))
    brain = np.asarray(Image.open(os.path.join(PNG, "nema-wg04_MR1_brain_512x512_gray8.png")))
    Image.fromarray(chest[200:248, 160:200]).save(os.path.join(tmp, "chest.png"))
    Image.fromarray(np.zeros((20, 20), np.uint16) + 4000, mode="I;16").save(os.path.join(tmp, "deep.png"))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(os.path.join(tmp, "brain.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.is_little_endian, ds.is_implicit_VR = True, False
    px = np.ascontiguousarray(brain[230:270, 200:248])
    ds.Rows, ds.Columns = px.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = px.tobytes()
    ds.save_as(os.path.join(tmp, "brain.dcm"), write_like_original=False)


def training(tmp):
    data = os.path.join(tmp, "data")
    os.mkdir(data)
    small_images(data)
    out, curve = os.path.join(tmp, "w.bin"), os.path.join(tmp, "curve.png")
    t = time.monotonic()
    r = run(os.path.join(PAPER, "train.py"), "--data", data, "--epochs", "1", "--seed", "3",
            "--out", out, "--curve", curve)
    if not check(r.returncode == 0, f"train.py, one epoch on two small images ({time.monotonic() - t:.0f} s)"):
        print(r.stdout + r.stderr)
        return None
    check("skip " in r.stdout and "deep.png: 16-bit" in r.stdout and r.stdout.count("use  ") == 2,
          "the 16-bit PNG skipped, the 8-bit PNG and DICOM used")
    rows = open(os.path.splitext(curve)[0] + ".csv").read().split()
    check(rows[0] == "epoch,train_mse,eval_mse,eval_psnr_db,seconds" and len(rows) == 3, "CSV: header, epochs 0 and 1")
    e0, e1 = float(rows[1].split(",")[2]), float(rows[2].split(",")[2])
    tr = float(rows[2].split(",")[1])
    check(np.isfinite([e0, e1, tr]).all() and 0 < tr < 1, f"losses finite (train {tr:.4g})")
    check(e1 < e0, f"evaluation loss decreases over the epoch ({e0:.5g} -> {e1:.5g})")
    with open(curve, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(curve) > 10000, "curve PNG written")
    again = os.path.join(tmp, "w2.bin")
    r = run(os.path.join(PAPER, "train.py"), "--data", data, "--epochs", "2", "--crops-per-epoch", "64",
            "--seed", "4", "--out", again, "--quiet")
    r2 = run(os.path.join(PAPER, "train.py"), "--data", data, "--epochs", "2", "--crops-per-epoch", "64",
             "--seed", "4", "--out", out + ".2", "--quiet")
    check(r.returncode == 0 and r2.returncode == 0 and open(out + ".2", "rb").read() == open(again, "rb").read(),
          "the same seed trains the same weights, byte for byte")
    return out


def refused(path, what):
    try:
        M.load(path)
    except M.WeightFileError as e:
        return check(True, f"{what} refused ({e})".replace(path, os.path.basename(path)))
    return check(False, f"{what} refused")


def weight_file(tmp, trained):
    torch.manual_seed(5)
    for cfg in (M.Config(True), M.Config(False), M.Config(True, features=8, blocks=1, reduction=2, kernel=3, bits=12)):
        m = M.PaperModel(cfg)
        path = os.path.join(tmp, "rt.bin")
        size = M.save(m, path)
        back = M.load(path)
        same = back.cfg.fields() == cfg.fields() and all(
            torch.equal(a, b) for a, b in zip(m.tensors(), back.tensors()))
        n = sum(t.numel() for t in m.tensors())
        check(same and size == 40 + 4 * n + 32, f"save -> load, same tensors: {cfg} ({size} bytes)")
    if trained:
        m = M.load(trained)
        again = os.path.join(tmp, "again.bin")
        M.save(m, again)
        check(open(again, "rb").read() == open(trained, "rb").read(), "load -> save gives the same bytes")
    data = open(path, "rb").read()
    bad = os.path.join(tmp, "bad.bin")
    for pos, where in ((0, "magic"), (12, "attention flag"), (39, "value count"), (40, "first weight"),
                       (len(data) // 2, "middle weight"), (len(data) - 33, "last weight"), (len(data) - 1, "SHA-256")):
        open(bad, "wb").write(data[:pos] + bytes([data[pos] ^ 0x10]) + data[pos + 1:])
        refused(bad, f"a flipped bit in the {where} (byte {pos})")
    open(bad, "wb").write(data[:-1])
    refused(bad, "a file one byte short")
    open(bad, "wb").write(data + b"\0")
    refused(bad, "a file one byte long")


# ---- an independent implementation, from README.md alone ----

def read_weights(path):
    data = open(path, "rb").read()
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    magic, version, att, f, b, r, k, bits, n = struct.unpack_from("<8s8I", data)
    assert magic == b"DCMCPAPR" and version == 1 and len(data) == 40 + 4 * n + 32
    vals = np.frombuffer(data, "<f4", n, 40).astype(np.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        size = int(np.prod(shape))
        t = vals[pos:pos + size].reshape(shape)
        pos += size
        return t

    def net():
        stem = (take(f, 1, 3, 3), take(f))
        blocks = []
        for _ in range(b):
            blk = {"c1": (take(f, f, 3, 3), take(f)), "c2": (take(f, f, 3, 3), take(f))}
            if att:
                blk.update(fc1=(take(f // r, f), take(f // r)), fc2=(take(f, f // r), take(f)),
                           s=(take(1, 2, k, k), take(1)))
            blocks.append(blk)
        return stem, blocks, (take(1, f, 3, 3), take(1))

    enc, dec = net(), net()
    assert pos == n
    return bits, enc, dec


def conv(x, wb):
    """x [C,H,W]; weight [O,C,kh,kw], zero padding kh//2: cross-correlation, as PyTorch."""
    w, bias = wb
    o, c, kh, kw = w.shape
    h, wd = x.shape[1:]
    p = np.zeros((c, h + kh - 1, wd + kw - 1))
    p[:, kh // 2:kh // 2 + h, kw // 2:kw // 2 + wd] = x
    out = np.zeros((o, h, wd)) + bias[:, None, None]
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("oc,chw->ohw", w[:, :, i, j], p[:, i:i + h, j:j + wd])
    return out


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def forward(net, x):
    stem, blocks, head = net
    h = np.maximum(conv(x[None], stem), 0)
    for blk in blocks:
        y = conv(np.maximum(conv(h, blk["c1"]), 0), blk["c2"])
        if "fc1" in blk:
            def mlp(v):
                return blk["fc2"][0] @ np.maximum(blk["fc1"][0] @ v + blk["fc1"][1], 0) + blk["fc2"][1]
            y = y * sigmoid(mlp(y.mean(axis=(1, 2))) + mlp(y.max(axis=(1, 2))))[:, None, None]
            y = y * sigmoid(conv(np.stack([y.mean(axis=0), y.max(axis=0)]), blk["s"]))
        h = np.maximum(h + y, 0)
    return sigmoid(conv(h, head))[0]


def independent(fixture):
    sys.path.insert(0, PAPER)
    from fixture import unpack
    for v in VARIANTS:
        wpath = os.path.join(PAPER, "weights", f"{v}.bin")
        fpath = os.path.join(SRC, "tests", "paper", f"{v}.fix")
        if not check(os.path.exists(wpath) and os.path.exists(fpath), f"{v}: shipped weights and fixture present"):
            continue
        bits, enc, dec = read_weights(wpath)
        fx = unpack(open(fpath, "rb").read())
        levels = (1 << bits) - 1
        e = forward(enc, fx["x"] / levels)
        d = forward(dec, fx["q"] / levels)
        ee, ed = np.abs(e - fx["e"]).max(), np.abs(d - fx["d"]).max()
        qd = np.round(e * levels) != fx["q"]
        check(ee < 1e-6 and ed < 1e-6 and not qd.any() and (np.round(d * levels) == fx["y"]).all(),
              f"{v}: numpy from README.md gives the fixture (max error E {ee:.2g}, D {ed:.2g})")
        r = run(os.path.join(PAPER, "fixture.py"), "--check", wpath, fpath)
        check(r.returncode == 0, f"{v}: fixture.py --check: {r.stdout.strip()}{r.stderr.strip()}")


def main():
    with tempfile.TemporaryDirectory(prefix="dcmc-paper-") as tmp:
        trained = training(tmp)
        weight_file(tmp, trained)
        independent(tmp)
    print(f"{FAILS} failed in {time.monotonic() - START:.0f} s")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())

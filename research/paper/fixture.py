#!/usr/bin/python3
"""Writes (or checks) the C-vs-PyTorch fixture of a weight file: a small input and every stage's output.

  fixture.py WEIGHTS.bin OUT.fix [--image PNG] [--at ROW COL] [--size H W]
  fixture.py --check WEIGHTS.bin FIXTURE.fix     recompute and compare (exit 1 on a difference)

The reference is computed in float64 from the float32 weights; README.md ("Fixture") gives the byte
layout and the tolerance a float32 port must meet.
"""
import argparse
import hashlib
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

torch = common.import_torch()

import model as M  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_IMAGE = os.path.join(common.DEFAULT_DATA, "nema-wg04_CT1_chest_512x512_gray8.png")
MAGIC = b"DCMCPFIX"
VERSION = 1
# magic, u32 version, u32 H, u32 W, u32 bits, u32 row and column of the crop, SHA-256 of the weight file
HEADER = struct.Struct("<8s6I32s")
# What the check of a regenerated fixture allows: float64 sums in another order, stored as float32.
CHECK_TOL = 1e-6


def compute(model, x):
    """x: integer array [H,W] -> (e, q, d, y) of the float64 reference."""
    m = M.PaperModel(model.cfg)
    m.load_state_dict(model.state_dict())
    m = m.double().eval()
    xt = M.normalise(x, model.cfg.bits)[None, None]
    with torch.no_grad():
        e = m.encode(xt)
        q = m.to_levels(e)
        d = m.decode(q)
    y = M.to_pixels(d, model.cfg.bits)
    return [t[0, 0].numpy() for t in (e, q, d, y)]


def pack(weights_sha, bits, at, x, e, q, d, y):
    h, w = x.shape
    body = HEADER.pack(MAGIC, VERSION, h, w, bits, at[0], at[1], weights_sha)
    body += x.astype("<u2").tobytes() + e.astype("<f4").tobytes() + q.astype("<u2").tobytes()
    body += d.astype("<f4").tobytes() + y.astype("<u2").tobytes()
    return body + hashlib.sha256(body).digest()


def unpack(data):
    body, digest = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != digest:
        raise ValueError("fixture: SHA-256 mismatch")
    magic, version, h, w, bits, row, col, wsha = HEADER.unpack_from(body)
    if magic != MAGIC or version != VERSION:
        raise ValueError("fixture: not a version 1 fixture")
    n, pos, out = h * w, HEADER.size, {}
    for name, dt, size in (("x", "<u2", 2), ("e", "<f4", 4), ("q", "<u2", 2), ("d", "<f4", 4), ("y", "<u2", 2)):
        out[name] = np.frombuffer(body, dtype=dt, count=n, offset=pos).reshape(h, w)
        pos += n * size
    if pos != len(body):
        raise ValueError("fixture: size does not match its header")
    out.update(bits=bits, at=(row, col), weights_sha=wsha)
    return out


def near_half(v, levels, tol):
    """Where round(v * levels) may go either way for a port within tol of v."""
    frac = v.astype(np.float64) * levels - np.floor(v.astype(np.float64) * levels)
    return np.abs(frac - 0.5) <= tol * levels


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("weights")
    p.add_argument("fixture")
    p.add_argument("--check", action="store_true")
    p.add_argument("--image", default=DEFAULT_IMAGE)
    p.add_argument("--at", type=int, nargs=2, default=(236, 180), metavar=("ROW", "COL"))
    p.add_argument("--size", type=int, nargs=2, default=(40, 56), metavar=("H", "W"))
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    model = M.load(a.weights)
    with open(a.weights, "rb") as f:
        wsha = hashlib.sha256(f.read()).digest()
    levels = model.cfg.levels

    if a.check:
        with open(a.fixture, "rb") as f:
            fx = unpack(f.read())
        if fx["weights_sha"] != wsha:
            print(f"FAIL {a.fixture}: made for another weight file than {a.weights}")
            return 1
        e, q, d, y = compute(model, fx["x"].astype(np.int64))
        bad = []
        for name, ref, got in (("e", fx["e"], e), ("d", fx["d"], d)):
            err = float(np.abs(ref.astype(np.float64) - got).max())
            if err > CHECK_TOL:
                bad.append(f"{name} differs by {err:.3g}")
        for name, ref, got, src in (("q", fx["q"], q, fx["e"]), ("y", fx["y"], y, fx["d"])):
            diff = ref.astype(np.int64) != got
            if (diff & ~near_half(src, levels, CHECK_TOL)).any() or (np.abs(ref - got) > 1).any():
                bad.append(f"{name} differs at {int(diff.sum())} pixels")
        verdict = "FAIL " + "; ".join(bad) + ": " if bad else "ok   "
        print(f"{verdict}{a.fixture} against {a.weights}")
        return 1 if bad else 0

    img, bits = common.read_image(a.image)
    if bits != model.cfg.bits:
        print(f"fixture.py: {a.image} is {bits}-bit, the model is for {model.cfg.bits}", file=sys.stderr)
        return 2
    (r, c), (h, w) = a.at, a.size
    if r + h > img.shape[0] or c + w > img.shape[1]:
        print("fixture.py: the crop is outside the image", file=sys.stderr)
        return 2
    x = img[r:r + h, c:c + w].astype(np.int64)
    e, q, d, y = compute(model, x)
    data = pack(wsha, bits, (r, c), x, e, q, d, y)
    with open(a.fixture, "wb") as f:
        f.write(data)
    f32 = M.load(a.weights)
    with torch.no_grad():
        xt = M.normalise(x, bits).float()[None, None]
        e32 = f32.encode(xt)[0, 0].numpy()
        d32 = f32.decode(torch.from_numpy(q).float()[None, None])[0, 0].numpy()
    print(f"wrote {a.fixture} ({len(data)} bytes): {h}x{w} at ({r}, {c}) of {os.path.basename(a.image)}; "
          f"PyTorch float32 vs this float64 reference: e {np.abs(e32 - e).max():.2g}, d {np.abs(d32 - d).max():.2g}; "
          f"pixels within 1e-4 of a rounding half: q {int(near_half(e, levels, 1e-4).sum())}, "
          f"y {int(near_half(d, levels, 1e-4).sum())}; reconstruction max |y - x| {int(np.abs(y - x).max())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Reference values for every metric in src/metrics, computed independently with numpy.

The C test (tests/test_stats.c, "metrics against numpy") rebuilds the same input images from
the formula below and compares each metric with the value here. Nothing here calls or copies
the C code: the metrics are written from their textbook definitions with numpy primitives
(bincount, corrcoef, mean/var with ddof=1), and the critical values from the normal quantile
of Python's statistics module. The only shared convention is how positions are *sampled*
(the sampled correlation and the local-entropy blocks): xorshift64*, as docs/evaluation.md
describes, since a different draw would give a different, equally valid number.

    refgen.py          print the reference file
    refgen.py --write  rewrite tests/metrics/refs.txt
    refgen.py --check  exit 1 if tests/metrics/refs.txt differs from what this computes
"""
import os
import sys
from statistics import NormalDist

import numpy as np

M64 = (1 << 64) - 1

# name, width, height, bits, seed, noise amplitude, flip mask (image b = a ^ flips on some pixels)
CASES = [
    ("smooth8", 64, 48, 8, 1, 9, 0x3),
    ("noise12", 100, 90, 12, 2, 4096, 0xFF),
    ("ct16", 96, 90, 16, 3, 300, 0x101),
    ("flat8", 88, 88, 8, 4, 1, 0x1),
]


def lcg_images(w, h, bits, seed, amp, flip):
    """a: a smooth ramp plus noise; b: a with low bits flipped on about one pixel in four."""
    mask = (1 << bits) - 1
    s = seed
    a = np.zeros((h, w), dtype=np.int64)
    b = np.zeros((h, w), dtype=np.int64)
    for y in range(h):
        for x in range(w):
            s = (s * 6364136223846793005 + 1442695040888963407) & M64
            r = s >> 33
            v = ((x * 3 + y * 2 + ((x * y) >> 4)) * (mask // 255) + r % amp) & mask
            a[y, x] = v
            b[y, x] = v ^ (flip if (r >> 20) & 3 == 0 else 0)
    return a, b


def xorshift(s):
    s ^= s >> 12
    s ^= (s << 25) & M64
    s ^= s >> 27
    return s, (s * 0x2545F4914F6CDD1D) & M64


def entropy(v, bits):
    p = np.bincount(v.ravel(), minlength=1 << bits) / v.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def chi2(v, bits):
    e = v.size / (1 << bits)
    c = np.bincount(v.ravel(), minlength=1 << bits)
    return float(((c - e) ** 2 / e).sum())


DIRS = [(1, 0), (0, 1), (1, 1), (-1, 1)]  # horizontal, vertical, diagonal, anti-diagonal


def corr(v, d):
    dx, dy = DIRS[d]
    h, w = v.shape
    if dx >= 0:
        p, q = v[: h - dy, : w - dx], v[dy:, dx:]
    else:
        p, q = v[: h - dy, 1:], v[dy:, : w - 1]
    return float(np.corrcoef(p.ravel().astype(float), q.ravel().astype(float))[0, 1])


def corr_sampled(v, d, pairs, seed):
    dx, dy = DIRS[d]
    h, w = v.shape
    x0 = 1 if dx < 0 else 0
    xn = w if dx == 0 else w - 1
    yn = h - dy
    s = seed | 1
    p, q = [], []
    for _ in range(pairs):
        s, r1 = xorshift(s)
        s, r2 = xorshift(s)
        x, y = x0 + r1 % xn, r2 % yn
        p.append(v[y, x])
        q.append(v[y + dy, x + dx])
    return float(np.corrcoef(np.array(p, float), np.array(q, float))[0, 1])


def local_entropy(v, bits, k, b, seed):
    h, w = v.shape
    bw, bh = w // b, h // b
    idx = list(range(bw * bh))
    s = seed | 1
    vals = []
    for i in range(k):
        s, r = xorshift(s)
        j = i + r % (len(idx) - i)
        idx[i], idx[j] = idx[j], idx[i]
        bx, by = idx[i] % bw, idx[i] // bw
        vals.append(entropy(v[by * b:(by + 1) * b, bx * b:(bx + 1) * b], bits))
    return float(np.mean(vals))


def npcr_uaci(a, b, bits):
    top = (1 << bits) - 1
    return float(np.mean(a != b)), float(np.mean(np.abs(a - b)) / top)


def psnr(a, b, bits):
    mse = np.mean((a - b).astype(float) ** 2)
    return float(10 * np.log10(((1 << bits) - 1) ** 2 / mse))


def ssim(a, b, bits, win=8, step=4):
    L = (1 << bits) - 1
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    h, w = a.shape
    out = []
    for y in range(0, h - win + 1, step):
        for x in range(0, w - win + 1, step):
            p = a[y:y + win, x:x + win].astype(float).ravel()
            q = b[y:y + win, x:x + win].astype(float).ravel()
            cov = np.cov(p, q, ddof=1)
            out.append((2 * p.mean() * q.mean() + c1) * (2 * cov[0, 1] + c2)
                       / ((p.mean() ** 2 + q.mean() ** 2 + c1) * (cov[0, 0] + cov[1, 1] + c2)))
    return float(np.mean(out))


def critical(n, bits, alpha):
    """Wu, Noonan & Agaian (2011), equations for NPCR* and UACI*- / UACI*+."""
    L = (1 << bits) - 1
    z1 = NormalDist().inv_cdf(1 - alpha)
    z2 = NormalDist().inv_cdf(1 - alpha / 2)
    npcr = L / (L + 1) - z1 * np.sqrt(L / (n * (L + 1) ** 2))
    mu = (L + 2) / (3 * L + 3)
    sd = np.sqrt((L + 2) * (L * L + 2 * L + 3) / (18 * (L + 1) ** 2 * n * L))
    return float(npcr), float(mu - z2 * sd), float(mu + z2 * sd)


def generate():
    out = ["# metric references from tests/metrics/refgen.py (numpy %s); do not edit" % np.__version__]
    for name, w, h, bits, seed, amp, flip in CASES:
        a, b = lcg_images(w, h, bits, seed, amp, flip)
        hb = min(bits, 16)
        vals = [("entropy", entropy(a, hb)), ("chi2", chi2(a, hb))]
        for d in range(4):
            vals.append(("corr%d" % d, corr(a, d)))
        for d in range(4):
            vals.append(("corr_sampled%d" % d, corr_sampled(a, d, 500, 7 + d)))
        vals.append(("lse", local_entropy(a, hb, 4, 22, 5)))
        n_, u_ = npcr_uaci(a, b, bits)
        vals += [("npcr", n_), ("uaci", u_), ("psnr", psnr(a, b, bits)), ("ssim", ssim(a, b, bits))]
        for alpha in (0.05, 0.01, 0.001):
            c = critical(w * h, bits, alpha)
            tag = str(alpha).replace("0.", "")
            vals += [("npcr_crit_" + tag, c[0]), ("uaci_lo_" + tag, c[1]), ("uaci_hi_" + tag, c[2])]
        out.append("case %s %d %d %d %d %d %d" % (name, w, h, bits, seed, amp, flip))
        out += ["%s %.17g" % kv for kv in vals]
    return "\n".join(out) + "\n"


def main():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "refs.txt")
    text = generate()
    if "--write" in sys.argv:
        with open(path, "w") as f:
            f.write(text)
    elif "--check" in sys.argv:
        with open(path) as f:
            old = f.read()
        # The first line names the numpy version; values must agree to 12 digits.
        a, b = old.splitlines()[1:], text.splitlines()[1:]
        same = len(a) == len(b) and all(
            x == y or (x.split()[0] == y.split()[0] and
                       abs(float(x.split()[1]) - float(y.split()[1])) <= 1e-12 * max(1, abs(float(y.split()[1]))))
            for x, y in zip(a, b))
        if not same:
            sys.stderr.write("tests/metrics/refs.txt is out of date: run refgen.py --write\n")
            sys.exit(1)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()

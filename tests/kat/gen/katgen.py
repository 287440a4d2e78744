#!/usr/bin/python3
"""Known-answer vectors for the dcmcrypt cipher, format version 1.

A second implementation of docs/format.md, written from that text in Python and numpy: exact
integers everywhere (Python ints for the 128-bit logistic products, int64 numpy arrays for the
network), ChaCha20 from python3-cryptography, HMAC/HKDF/scrypt from the standard library. It
shares no code with the C library. It encrypts every vector, decrypts it again (asserting the
round trip), and writes tests/kat/vectors/NAME.kat; tests/test_kat.c checks the C library
against those files bit for bit.

Run:  /usr/bin/python3 tests/kat/gen/katgen.py          (Debian: python3-numpy python3-cryptography)
      /usr/bin/python3 tests/kat/gen/katgen.py --check  (compare with the committed vectors; CI)
"""
import hashlib
import hmac
import os
import struct
import sys

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors")

# ---------------------------------------------------------------- section 3: keys and subkeys


def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk, info, length=32):
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def subkey(prk, label, frame):
    return hkdf_expand(prk, b"dcmcrypt/1/" + label.encode() + struct.pack(">I", frame))


def chacha20(key, n):
    """n bytes of the RFC 7539 keystream, counter 0, nonce 0 (16-byte IV of zeros)."""
    enc = Cipher(algorithms.ChaCha20(key, b"\0" * 16), mode=None).encryptor()
    return enc.update(b"\0" * n)


# ---------------------------------------------------------------- section 2: layout and values


def frame_bytes(L, ba):
    return (L + 7) // 8 if ba == 1 else L * ba // 8


def words_of(frame, L, ba):
    if ba == 1:
        return [(frame[j // 8] >> (j % 8)) & 1 for j in range(L)]
    b = ba // 8
    return [int.from_bytes(frame[j * b:(j + 1) * b], "little") for j in range(L)]


def frame_of(words, ba, nbytes):
    if ba == 1:
        out = bytearray(nbytes)
        for j, w in enumerate(words):
            out[j // 8] |= (w & 1) << (j % 8)
        return bytes(out)
    b = ba // 8
    return b"".join(w.to_bytes(b, "little") for w in words)


class Layout:
    def __init__(self, rows, cols, samples, planar, ba, bs, hb, signed):
        self.rows, self.cols, self.S, self.planar = rows, cols, samples, planar
        self.ba, self.bs, self.hb, self.signed = ba, bs, hb, signed
        self.N = rows * cols
        self.L = self.S * self.N
        self.M = 1 << bs
        self.low = hb - bs + 1
        assert 1 <= rows <= 65535 and 1 <= cols <= 65535 and samples in (1, 3)
        assert ba in (1, 8, 16, 32) and 1 <= bs <= ba and bs - 1 <= hb <= ba - 1

    def tuple(self):
        return (self.rows, self.cols, self.S, self.planar, self.ba, self.bs, self.hb, self.signed)

    def word_index(self, s, i):
        return s * self.N + i if self.planar else i * self.S + s

    def value(self, w):
        return (w >> self.low) % self.M

    def canonical(self, v):
        w = v << self.low
        if self.signed and (v >> (self.bs - 1)) & 1:
            for bit in range(self.hb + 1, self.ba):
                w |= 1 << bit
        return w

    def values(self, words):
        return [self.value(words[self.word_index(s, i)]) for s in range(self.S) for i in range(self.N)]

    def words(self, values):
        w = [0] * self.L
        for s in range(self.S):
            for i in range(self.N):
                w[self.word_index(s, i)] = self.canonical(values[s * self.N + i])
        return w


# ---------------------------------------------------------------- sections 5-7: the network


def rs(v, s):
    """rs(v, s) = floor((v + 2^(s-1)) / 2^s); numpy's >> on int64 is floor division."""
    return v if s == 0 else (v + (1 << (s - 1))) >> s


def sig(t):
    a = np.abs(t)
    y = np.where(a >= 80, 256, np.where(a >= 38, a // 2 + 216, np.where(a >= 16, 2 * a + 160, 4 * a + 128)))
    return np.where(t >= 0, y, 256 - y)


def q(v, bs):
    return v >> (bs - 8) if bs >= 8 else v << (8 - bs)


class Stream:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def weights(self, shape):
        n = int(np.prod(shape))
        b = np.frombuffer(self.data[self.pos:self.pos + n], dtype=np.uint8).astype(np.int64)
        self.pos += n
        return (b // 2 - 64).reshape(shape)

    def biases(self, n):
        out = []
        for _ in range(n):
            v = struct.unpack("<h", self.data[self.pos:self.pos + 2])[0]
            self.pos += 2
            out.append(v // 4)  # floor division, also for negative v
        return np.array(out, dtype=np.int64)


def weight_bytes(p, S):
    C, cin = p["channels"], 2 * S
    H, K = C // p["ca_reduction"], p["sa_kernel"]
    block = 2 * (9 * C * C + 2 * C) + (2 * H * C + 2 * K * K + 2 if p["attention"] else 0)
    return 2 * p["rounds"] * (9 * cin * C + 2 * C + p["blocks"] * block + 9 * C * cin + 2 * cin)


def load_networks(stream, p, S):
    C, cin = p["channels"], 2 * S
    H, K = C // p["ca_reduction"], p["sa_kernel"]
    nets = []
    for _ in range(2 * p["rounds"]):
        net = {"Ws": stream.weights((C, 3, 3, cin)), "bs": stream.biases(C), "blocks": []}
        for _ in range(p["blocks"]):
            blk = {"W1": stream.weights((C, 3, 3, C)), "b1": stream.biases(C),
                   "W2": stream.weights((C, 3, 3, C)), "b2": stream.biases(C)}
            if p["attention"]:
                blk["A1"] = stream.weights((H, C))
                blk["A2"] = stream.weights((C, H))
                blk["Wsa"] = stream.weights((2, K, K))
                blk["bsa"] = stream.biases(1)[0]
            net["blocks"].append(blk)
        net["Wh"] = stream.weights((cin, 3, 3, C))
        net["bh"] = stream.biases(cin)
        nets.append(net)
    assert stream.pos == len(stream.data)
    return nets


def conv(W, b, X, k):
    """conv(W, b, X)[o][y][x] = b[o] + sum W[o][ky][kx][i] * X[i][y+ky-(k-1)/2][x+kx-(k-1)/2]."""
    cin, h, w = X.shape
    r = (k - 1) // 2
    Xp = np.zeros((cin, h + 2 * r, w + 2 * r), dtype=np.int64)
    Xp[:, r:r + h, r:r + w] = X
    out = np.zeros((W.shape[0], h, w), dtype=np.int64) + b.reshape(-1, 1, 1)
    for ky in range(k):
        for kx in range(k):
            out += np.einsum("oi,ihw->ohw", W[:, ky, kx, :], Xp[:, ky:ky + h, kx:kx + w])
    return out


def network(net, p, A, bs):
    """Section 7: A is (Cin, h, w) of values mod M; returns N(A) mod M."""
    C = p["channels"]
    _, h, w = A.shape
    T = np.clip(rs(conv(net["Ws"], net["bs"], q(A, bs), 3), p["shift_stem"]), 0, 255)
    for blk in net["blocks"]:
        U = np.clip(rs(conv(blk["W1"], blk["b1"], T, 3), p["shift_conv"]), 0, 255)
        Hh = np.clip(rs(conv(blk["W2"], blk["b2"], U, 3), p["shift_conv"]), -32768, 32767)
        if p["attention"]:
            avg = Hh.reshape(C, -1).sum(axis=1) // (h * w)
            mx = Hh.reshape(C, -1).max(axis=1)
            za = np.clip(rs(blk["A1"] @ avg, p["shift_ca"]), 0, 32767)
            zm = np.clip(rs(blk["A1"] @ mx, p["shift_ca"]), 0, 32767)
            ca = sig(rs(blk["A2"] @ (za + zm), p["shift_ca"]))
            G = rs(Hh * ca.reshape(C, 1, 1), 8)
            mean = G.sum(axis=0) // C
            mxc = G.max(axis=0)
            Wsa = np.transpose(blk["Wsa"], (1, 2, 0)).reshape(1, p["sa_kernel"], p["sa_kernel"], 2)
            sacc = conv(Wsa, np.array([blk["bsa"]]), np.stack([mean, mxc]), p["sa_kernel"])[0]
            sa = sig(rs(sacc, p["shift_sa"]))
            R = rs(G * sa.reshape(1, h, w), 8)
        else:
            R = Hh
        T = np.clip(T + R, 0, 255)
    return conv(net["Wh"], net["bh"], T, 3) % (1 << bs)


# ---------------------------------------------------------------- section 8: coupling


def split_cells(vals, lay):
    h, w = lay.rows // 2, lay.cols // 2
    P = np.array(vals, dtype=np.int64).reshape(lay.S, lay.rows, lay.cols)
    A = np.zeros((2 * lay.S, h, w), dtype=np.int64)
    B = np.zeros((2 * lay.S, h, w), dtype=np.int64)
    for s in range(lay.S):
        A[2 * s] = P[s, 0:2 * h:2, 0:2 * w:2]
        A[2 * s + 1] = P[s, 0:2 * h:2, 1:2 * w:2]
        B[2 * s] = P[s, 1:2 * h:2, 0:2 * w:2]
        B[2 * s + 1] = P[s, 1:2 * h:2, 1:2 * w:2]
    return P, A, B


def join_cells(P, A, B, lay):
    h, w = lay.rows // 2, lay.cols // 2
    for s in range(lay.S):
        P[s, 0:2 * h:2, 0:2 * w:2] = A[2 * s]
        P[s, 0:2 * h:2, 1:2 * w:2] = A[2 * s + 1]
        P[s, 1:2 * h:2, 0:2 * w:2] = B[2 * s]
        P[s, 1:2 * h:2, 1:2 * w:2] = B[2 * s + 1]
    return [int(v) for v in P.reshape(-1)]


def coupling(vals, lay, p, prk, f, decrypt, trace=None):
    if lay.rows // 2 == 0 or lay.cols // 2 == 0:
        return vals
    nets = load_networks(Stream(chacha20(subkey(prk, "net", f), weight_bytes(p, lay.S))), p, lay.S)
    P, A, B = split_cells(vals, lay)
    M = lay.M
    if trace is not None:
        trace["net_f0_out"] = network(nets[0], p, A, lay.bs)
    if not decrypt:
        for r in range(p["rounds"]):
            B = (B + network(nets[2 * r], p, A, lay.bs)) % M
            A = (A + network(nets[2 * r + 1], p, B, lay.bs)) % M
    else:
        for r in reversed(range(p["rounds"])):
            A = (A - network(nets[2 * r + 1], p, B, lay.bs)) % M
            B = (B - network(nets[2 * r], p, A, lay.bs)) % M
    return join_cells(P, A, B, lay)


# ---------------------------------------------------------------- section 9: keystream, diffusion


class Logistic:
    def __init__(self, k):
        x = int.from_bytes(k[0:8], "little")
        if x < 2 ** 56 or x > 2 ** 64 - 2 ** 56:
            x ^= 2 ** 63
        self.x = x
        self.delta = 2 ** 50 + int.from_bytes(k[8:16], "little") % 2 ** 57
        self.n = 0
        for _ in range(1024):
            self.step()

    def step(self):
        self.n += 1
        p = (self.x * (2 ** 64 - self.x)) >> 64
        self.x = ((4 * p - ((self.delta * p) >> 64)) ^ (self.n % 2 ** 16))
        assert 0 <= self.x < 2 ** 64
        return (self.x >> 8) % 2 ** 32

    def take(self, n):
        return [self.step() for _ in range(n)]


def keystreams(prk, f, L, M, standard):
    o1 = Logistic(subkey(prk, "chaos", f)).take(L)
    if standard:
        cb = chacha20(subkey(prk, "chacha", f), 4 * L)
        c = [int.from_bytes(cb[4 * i:4 * i + 4], "little") for i in range(L)]
    else:
        c = [0] * L
    o2 = Logistic(subkey(prk, "diffusion", f)).take(L)
    return [(a ^ b) % M for a, b in zip(o1, c)], [v % M for v in o2]


def rot(v, bs):
    rho = (bs + 1) // 3
    return ((v << rho) | (v >> (bs - rho))) % (1 << bs) if rho else v


def diffuse(Y, k, d, bs):
    M, L = 1 << bs, len(Y)
    u = [0] * L
    for i in range(L):
        u1 = u[i - 1] if i >= 1 else 0
        u2 = u[i - 2] if i >= 2 else 0
        u[i] = ((Y[i] + rot(u1, bs) + u2) % M) ^ k[i]
    c = [0] * L
    for i in reversed(range(L)):
        c1 = c[i + 1] if i + 1 < L else 0
        c2 = c[i + 2] if i + 2 < L else 0
        c[i] = ((u[i] + rot(c1, bs) + c2) % M) ^ d[i]
    return c


def undiffuse(c, k, d, bs):
    M, L = 1 << bs, len(c)
    u = [((c[i] ^ d[i]) - rot(c[i + 1] if i + 1 < L else 0, bs) - (c[i + 2] if i + 2 < L else 0)) % M
         for i in range(L)]
    return [((u[i] ^ k[i]) - rot(u[i - 1] if i >= 1 else 0, bs) - (u[i - 2] if i >= 2 else 0)) % M
            for i in range(L)]


# ---------------------------------------------------------------- sections 10-12: image level


def residue_of(frame, lay):
    fb = frame_bytes(lay.L, lay.ba)
    if lay.ba == 1:
        res = bytearray(fb)
        if lay.L % 8:
            res[-1] = frame[-1] & ~((1 << (lay.L % 8)) - 1) & 0xFF
        return bytes(res)
    words = words_of(frame, lay.L, lay.ba)
    return frame_of([w ^ lay.canonical(lay.value(w)) for w in words], lay.ba, fb)


def header_bytes(v, lay, frames, payload_len, mac):
    p, kdf = v["preset"], v["kdf"]
    h = b"DCMCRYPT" + struct.pack("<II", 1, v["flags"])
    h += bytes([p[n] for n in PRESET_FIELDS]) + b"\0"
    h += bytes(kdf[:4]) + kdf[4]
    h += v["nonce"] + v["kcv"]
    h += struct.pack("<HH", lay.rows, lay.cols) + bytes([lay.S, lay.planar, lay.ba, lay.bs, lay.hb, lay.signed])
    h += struct.pack("<IQ", frames, payload_len) + b"\0\0" + mac
    assert len(h) == 128
    return h


PRESET_FIELDS = ["id", "channels", "blocks", "rounds", "attention", "ca_reduction", "sa_kernel",
                 "shift_stem", "shift_conv", "shift_ca", "shift_sa"]


def encrypt_image(v, trace):
    lay, p, frames = v["layout"], v["preset"], v["frames"]
    K, prk = v["key"], hkdf_extract(v["nonce"], v["key"])
    v["kcv"] = subkey(prk, "kcv", 0)[:8]
    fb = frame_bytes(lay.L, lay.ba)
    plain = v["plain"]
    res = b"".join(residue_of(plain[f * fb:(f + 1) * fb], lay) for f in range(frames))
    flag = 1 if any(res) else 0
    pt = struct.pack("<I", len(v["attrs"])) + v["attrs"] + bytes([flag]) + (res if flag else b"")
    payload = bytes(a ^ b for a, b in zip(pt, chacha20(subkey(prk, "payload", 0), len(pt))))
    cipher = b""
    for f in range(frames):
        X = lay.values(words_of(plain[f * fb:(f + 1) * fb], lay.L, lay.ba))
        Y = coupling(X, lay, p, prk, f, False, trace if f == 0 else None)
        k, d = keystreams(prk, f, lay.L, lay.M, v["flags"] & 1)
        if f == 0:
            trace["coupled_0"] = Y
        cipher += frame_of(lay.words(diffuse(Y, k, d, lay.bs)), lay.ba, fb)
    hdr = header_bytes(v, lay, frames, len(payload), b"\0" * 32)
    mac = hmac.new(subkey(prk, "mac", 0), hdr[:96] + payload + cipher, hashlib.sha256).digest()
    trace["subkey_net_0"] = subkey(prk, "net", 0)
    trace["o1_0"] = Logistic(subkey(prk, "chaos", 0)).take(8)
    trace["o2_0"] = Logistic(subkey(prk, "diffusion", 0)).take(8)
    return cipher, payload, header_bytes(v, lay, frames, len(payload), mac)


def decrypt_image(v, cipher, payload, header):
    lay, p, frames = v["layout"], v["preset"], v["frames"]
    prk = hkdf_extract(header[48:64], v["key"])
    assert hmac.compare_digest(subkey(prk, "kcv", 0)[:8], header[64:72])
    mac = hmac.new(subkey(prk, "mac", 0), header[:96] + payload + cipher, hashlib.sha256).digest()
    assert hmac.compare_digest(mac, header[96:128])
    pt = bytes(a ^ b for a, b in zip(payload, chacha20(subkey(prk, "payload", 0), len(payload))))
    alen = struct.unpack("<I", pt[:4])[0]
    attrs, flag, res = pt[4:4 + alen], pt[4 + alen], pt[5 + alen:]
    fb = frame_bytes(lay.L, lay.ba)
    out = b""
    for f in range(frames):
        C = lay.values(words_of(cipher[f * fb:(f + 1) * fb], lay.L, lay.ba))
        k, d = keystreams(prk, f, lay.L, lay.M, v["flags"] & 1)
        Y = undiffuse(C, k, d, lay.bs)
        X = coupling(Y, lay, p, prk, f, True)
        fr = frame_of(lay.words(X), lay.ba, fb)
        if flag:
            fr = bytes(a ^ b for a, b in zip(fr, res[f * fb:(f + 1) * fb]))
        out += fr
    return out, attrs


# ---------------------------------------------------------------- the vectors

AT = dict(zip(PRESET_FIELDS, [1, 16, 2, 2, 1, 4, 7, 8, 8, 6, 6]))
RES = dict(zip(PRESET_FIELDS, [2, 16, 2, 2, 0, 4, 7, 8, 8, 6, 6]))


JUNK1 = 0xD6  # pattern for the unused bits after the last word of a 1-bit frame


def plain_for(lay, frames, rng, junk=False, smooth=False):
    """junk: False, True (every frame) or the indices of the frames that get junk. Words of more
    than one bit get bits outside the stored field; a 1-bit frame gets the unused high bits of its
    last byte set (section 10: only those bits can be non-canonical in a 1-bit frame)."""
    fb = frame_bytes(lay.L, lay.ba)
    out = b""
    for f in range(frames):
        if smooth:
            yy, xx = np.mgrid[0:lay.rows, 0:lay.cols]
            vals = ((yy * 900 + xx * 1300 + rng.integers(0, 200, size=yy.shape)) % lay.M).reshape(-1)
            vals = [int(v) for v in vals] * lay.S
        else:
            vals = [int(v) for v in rng.integers(0, lay.M, size=lay.L, dtype=np.uint64)]
        words = lay.words(vals)
        junk_here = junk is True or (junk is not False and f in junk)
        if junk_here and lay.ba > 1:
            words = [w | (0x5000 if j % 3 == 0 else 0) for j, w in enumerate(words)]
        frame = frame_of(words, lay.ba, fb)
        if junk_here and lay.ba == 1:
            assert lay.L % 8, "a byte-aligned 1-bit frame has no unused bits"
            frame = frame[:-1] + bytes([frame[-1] | (JUNK1 & ~((1 << (lay.L % 8)) - 1) & 0xFF)])
        out += frame
        assert len(out) % fb == 0
    return out


def vectors():
    V = []

    def add(name, layout, frames=1, preset=AT, flags=1, attrs=b"", junk=False, smooth=False,
            passphrase=None):
        seed = sum(name.encode())
        rng = np.random.default_rng(seed)
        lay = Layout(*layout)
        v = {"name": name, "layout": lay, "frames": frames, "preset": preset, "flags": flags,
             "attrs": attrs, "nonce": hashlib.sha256(b"nonce " + name.encode()).digest()[:16],
             "passphrase": passphrase}
        if passphrase:
            salt = hashlib.sha256(b"salt " + name.encode()).digest()[:16]
            v["kdf"] = (1, 10, 8, 1, salt)
            v["key"] = hashlib.scrypt(passphrase.encode(), salt=salt, n=1 << 10, r=8, p=1,
                                      maxmem=1 << 26, dklen=32)
        else:
            v["kdf"] = (0, 0, 0, 0, b"\0" * 16)
            v["key"] = hashlib.sha256(b"key " + name.encode()).digest()
        v["plain"] = plain_for(lay, frames, rng, junk, smooth)
        V.append(v)

    add("gray8_6x8", (6, 8, 1, 0, 8, 8, 7, 0))
    add("u12_7x5", (7, 5, 1, 0, 16, 12, 11, 0))
    add("s16_9x9", (9, 9, 1, 0, 16, 16, 15, 1))
    add("rgb8_p0_4x6_2f", (4, 6, 3, 0, 8, 8, 7, 0), frames=2)
    add("rgb8_p1_5x4", (5, 4, 3, 1, 8, 8, 7, 0))
    add("bit1_5x7_2f", (5, 7, 1, 0, 1, 1, 0, 0), frames=2)
    add("u32_4x4", (4, 4, 1, 0, 32, 32, 31, 0))
    add("gray8_1x1", (1, 1, 1, 0, 8, 8, 7, 0))
    add("resnet_u16_8x8_nostd", (8, 8, 1, 0, 16, 16, 15, 0), preset=RES, flags=0)
    add("residue_u12_6x6", (6, 6, 1, 0, 16, 12, 11, 0), junk=True, attrs=b"original attributes")
    add("s12_hb13_6x5", (6, 5, 1, 0, 16, 12, 13, 1))
    add("u16_32x32", (32, 32, 1, 0, 16, 16, 15, 0), smooth=True)
    add("pass_gray8_4x4", (4, 4, 1, 0, 8, 8, 7, 0), passphrase="correct horse battery staple")
    add("gray8_64x48_2r_3b", (64, 48, 1, 0, 8, 8, 7, 0), preset=dict(AT, blocks=3))
    # Payload of odd length (4 + 14 + 1 = 19 bytes): a container pads it (DICOM: one zero byte
    # after (0011,xx02)); the header's payload bytes and the MAC count the 19 bytes only.
    add("odd_payload_gray8_5x3", (5, 3, 1, 0, 8, 8, 7, 0), attrs=b"original attrs")
    # 1-bit frames of L = 15 words, not a multiple of 8: each frame buffer is 2 bytes, bit 7 of
    # its second byte unused. Frames 0 and 2 carry junk there, frame 1 does not: residue_flag 1,
    # the residue is 3 x 2 bytes, only the last byte of frames 0 and 2 non-zero (section 10).
    add("bit1_3x5_3f_junk", (3, 5, 1, 0, 1, 1, 0, 0), frames=3, junk=(0, 2))
    return V


def ints(xs):
    return " ".join(str(int(x)) for x in xs)


def main():
    check = "--check" in sys.argv[1:]
    os.makedirs(OUT, exist_ok=True)
    mismatches = 0
    for v in vectors():
        trace = {}
        cipher, payload, header = encrypt_image(v, trace)
        back, attrs = decrypt_image(v, cipher, payload, header)
        assert back == v["plain"] and attrs == v["attrs"], v["name"]
        lay, p, kdf = v["layout"], v["preset"], v["kdf"]
        net = trace.get("net_f0_out")
        lines = [
            ("name", v["name"]),
            ("key", v["key"].hex()),
            ("passphrase", v["passphrase"] or "-"),
            ("kdf", "%d %d %d %d %s" % (kdf[0], kdf[1], kdf[2], kdf[3], kdf[4].hex())),
            ("nonce", v["nonce"].hex()),
            ("flags", str(v["flags"])),
            ("preset", ints(p[n] for n in PRESET_FIELDS)),
            ("layout", ints(lay.tuple())),
            ("frames", str(v["frames"])),
            ("attrs", v["attrs"].hex() or "-"),
            ("plain", v["plain"].hex()),
            ("cipher", cipher.hex()),
            ("payload", payload.hex()),
            ("header", header.hex()),
            ("kcv", v["kcv"].hex()),
            ("subkey_net_0", trace["subkey_net_0"].hex()),
            ("o1_0", ints(trace["o1_0"])),
            ("o2_0", ints(trace["o2_0"])),
            ("net_f0_out", ints(net.reshape(-1)) if net is not None else "-"),
            ("coupled_0", ints(trace["coupled_0"])),
        ]
        text = "".join("%s %s\n" % (k, val) for k, val in lines)
        path = os.path.join(OUT, v["name"] + ".kat")
        if check:
            if os.path.exists(path):
                with open(path) as f:
                    same = f.read() == text
                verdict = "same" if same else "DIFFERS"
            else:
                same, verdict = False, "MISSING"
            mismatches += not same
            print("%s %s" % (verdict, v["name"]), file=sys.stderr)
        else:
            with open(path, "w") as f:
                f.write(text)
            print("wrote", v["name"], file=sys.stderr)
    if mismatches:
        print("katgen: %d vector(s) differ from the committed files" % mismatches, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

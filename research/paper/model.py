"""The AT-ResNet-CM paper's encoder/decoder (and its ResNet-CM ablation) in PyTorch, and its weight file.

README.md in this folder specifies every operation and every byte of the weight file; a float C port
is written from that page, so this code keeps to exactly what it says (no batch norm, zero padding,
one fixed tensor order). Only research: the product's cipher is keyed, integer and exact.
"""
import hashlib
import struct

import numpy
import torch
import torch.nn as nn

MAGIC = b"DCMCPAPR"
VERSION = 1
# magic, then u32: version, attention, F, B, r, k, bits, number of float32 values
HEADER = struct.Struct("<8s8I")
SHA_LEN = 32
VARIANTS = {"at-resnet-cm": True, "resnet-cm": False}


class Config:
    """The shape of one model: what the weight file's header records."""

    def __init__(self, attention=True, features=32, blocks=2, reduction=8, kernel=7, bits=8):
        if features < 1 or blocks < 0 or reduction < 1 or features % reduction:
            raise ValueError("features must be a positive multiple of reduction; blocks >= 0")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError("the spatial kernel must be odd")
        if not 1 <= bits <= 16:
            raise ValueError("bits must be 1..16")
        self.attention, self.features, self.blocks = bool(attention), features, blocks
        self.reduction, self.kernel, self.bits = reduction, kernel, bits

    @property
    def levels(self):
        return (1 << self.bits) - 1

    def fields(self):
        return (int(self.attention), self.features, self.blocks, self.reduction, self.kernel, self.bits)

    def __repr__(self):
        return ("Config(attention={}, features={}, blocks={}, reduction={}, kernel={}, bits={})"
                .format(*self.fields()))


class Block(nn.Module):
    """y = conv2(relu(conv1(x))); [channel attention; spatial attention]; out = relu(x + y)."""

    def __init__(self, cfg):
        super().__init__()
        f = cfg.features
        self.conv1 = nn.Conv2d(f, f, 3, padding=1)
        self.conv2 = nn.Conv2d(f, f, 3, padding=1)
        self.attention = cfg.attention
        if cfg.attention:
            self.fc1 = nn.Linear(f, f // cfg.reduction)  # "FC1 compress"
            self.fc2 = nn.Linear(f // cfg.reduction, f)  # "FC2 stretch"
            self.sconv = nn.Conv2d(2, 1, cfg.kernel, padding=cfg.kernel // 2)

    def mlp(self, v):
        return self.fc2(torch.relu(self.fc1(v)))

    def forward(self, x):
        y = self.conv2(torch.relu(self.conv1(x)))
        if self.attention:
            avg = y.mean(dim=(2, 3))
            mx = y.amax(dim=(2, 3))
            y = y * torch.sigmoid(self.mlp(avg) + self.mlp(mx))[:, :, None, None]
            pooled = torch.cat([y.mean(dim=1, keepdim=True), y.amax(dim=1, keepdim=True)], dim=1)
            y = y * torch.sigmoid(self.sconv(pooled))
        return torch.relu(x + y)


class Net(nn.Module):
    """One network (the encoder or the decoder): stem, blocks, head; [N,1,H,W] in [0,1] -> the same."""

    def __init__(self, cfg):
        super().__init__()
        self.stem = nn.Conv2d(1, cfg.features, 3, padding=1)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.blocks))
        self.head = nn.Conv2d(cfg.features, 1, 3, padding=1)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        for b in self.blocks:
            h = b(h)
        return torch.sigmoid(self.head(h))

    def tensors(self):
        """Every parameter in the weight file's order (README.md, "Weight file")."""
        out = [self.stem.weight, self.stem.bias]
        for b in self.blocks:
            out += [b.conv1.weight, b.conv1.bias, b.conv2.weight, b.conv2.bias]
            if b.attention:
                out += [b.fc1.weight, b.fc1.bias, b.fc2.weight, b.fc2.bias, b.sconv.weight, b.sconv.bias]
        return out + [self.head.weight, self.head.bias]


def quantise(e, levels):
    """round(e * levels) / levels in the forward pass, identity gradient (straight-through).

    torch.round rounds halves to even; e comes out of a sigmoid, so exact halves do not occur in practice.
    """
    return e + (torch.round(e * levels) / levels - e).detach()


class PaperModel(nn.Module):
    """Encoder E and decoder D; between them the cipher image q = round(E(x) * levels) (XOR is done in C)."""

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.encoder = Net(cfg)
        self.decoder = Net(cfg)

    def encode(self, x):
        return self.encoder(x)

    def to_levels(self, e):
        """The integer image (as floats) the keystream is XORed with."""
        return torch.round(e * self.cfg.levels)

    def decode(self, q):
        """q: integer levels (as floats), after the XOR has been undone."""
        return self.decoder(q / self.cfg.levels)

    def forward(self, x):
        return self.decoder(quantise(self.encoder(x), self.cfg.levels))

    def tensors(self):
        return self.encoder.tensors() + self.decoder.tensors()


def save(model, path):
    """Writes the weight file (README.md, "Weight file"); returns its size in bytes."""
    flat = torch.cat([t.detach().to(torch.float32).reshape(-1) for t in model.tensors()])
    body = HEADER.pack(MAGIC, VERSION, *model.cfg.fields(), flat.numel())
    body += flat.numpy().astype("<f4").tobytes()
    data = body + hashlib.sha256(body).digest()
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


class WeightFileError(ValueError):
    pass


def load(path):
    """Reads a weight file back into a PaperModel (float32, eval mode); WeightFileError if it is not one."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size + SHA_LEN:
        raise WeightFileError(f"{path}: {len(data)} bytes: too short for a weight file")
    magic, version, att, feat, blocks, red, kern, bits, count = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise WeightFileError(f"{path}: not a dcmcrypt paper weight file (magic {magic!r})")
    if version != VERSION:
        raise WeightFileError(f"{path}: format version {version}, this reader knows {VERSION}")
    if len(data) != HEADER.size + 4 * count + SHA_LEN:
        raise WeightFileError(f"{path}: {len(data)} bytes, the header says {HEADER.size + 4 * count + SHA_LEN}")
    body = data[:-SHA_LEN]
    if hashlib.sha256(body).digest() != data[-SHA_LEN:]:
        raise WeightFileError(f"{path}: SHA-256 mismatch: the file is damaged")
    if att > 1:
        raise WeightFileError(f"{path}: attention flag {att}")
    try:
        cfg = Config(att == 1, feat, blocks, red, kern, bits)
    except ValueError as e:
        raise WeightFileError(f"{path}: {e}") from None
    model = PaperModel(cfg)
    tensors = model.tensors()
    if sum(t.numel() for t in tensors) != count:
        raise WeightFileError(f"{path}: {count} values, {cfg} has {sum(t.numel() for t in tensors)}")
    flat = torch.from_numpy(numpy.frombuffer(body, dtype="<f4", offset=HEADER.size).astype(numpy.float32))
    if not torch.isfinite(flat).all():
        raise WeightFileError(f"{path}: a weight is not finite")
    pos = 0
    with torch.no_grad():
        for t in tensors:
            t.copy_(flat[pos:pos + t.numel()].view_as(t))
            pos += t.numel()
    return model.eval()


def normalise(pixels, bits):
    """Integer pixels -> float tensor [N,1,H,W] in [0,1]."""
    return torch.as_tensor(pixels, dtype=torch.float64).div((1 << bits) - 1)


def reconstruct(model, x):
    """The full lossy round trip without the XOR: x' = D(round(E(x) * levels)), in [0,1]."""
    with torch.no_grad():
        return model.decode(model.to_levels(model.encode(x)))


def to_pixels(y, bits):
    """[0,1] floats -> integer pixels round(y * levels) (halves to even), as int64."""
    return torch.round(y * ((1 << bits) - 1)).to(torch.int64)

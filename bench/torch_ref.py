#!/usr/bin/python3
"""PyTorch reference of the dcmcrypt network, for speed comparison only.

The same architecture as the cipher's networks (docs/format.md section 7), in float32 with
random weights: stem conv3x3 (2S -> 16) + ReLU; residual blocks [conv3x3, ReLU, conv3x3, channel
attention (avg and max pooling -> shared MLP 16 -> 4 -> 16 -> sigmoid), spatial attention
(channel mean and max -> 7x7 conv -> sigmoid), + skip, ReLU]; head conv3x3 (16 -> 2S). A frame is
two coupling rounds, i.e. four network evaluations at half resolution (256x256 for 512x512):
b = b + F0(a); a = a + G0(b); b = b + F1(a); a = a + G1(b).

It runs with glibc's MALLOC_MMAP_THRESHOLD_=1073741824, MALLOC_TRIM_THRESHOLD_=4294967296 and
MALLOC_TOP_PAD_=1073741824 (it re-executes itself with them if missing): otherwise glibc maps and
unmaps every large activation buffer on each call, or gives the top of the heap back and faults
it in again, and the timing measures page faults. With the mmap threshold alone, one process in
two ran at 300-450 ms a frame instead of 68-78 (2 threads, 3 times the minor faults). Channels-last, torch.jit.trace + torch.jit.freeze, after warm-up.
`dcmcrypt-bench --torch` runs this script and prints the ratio of the two times.

Prints one line:
  torch preset=at-resnet-cm bits=NA threads=2 ms_per_frame=58.1 frames_per_s=17.2 gflop_per_frame=5.24
"""
import argparse
import os
import sys
import time

MALLOC = {"MALLOC_MMAP_THRESHOLD_": "1073741824", "MALLOC_TRIM_THRESHOLD_": "4294967296",
          "MALLOC_TOP_PAD_": "1073741824"}
if any(os.environ.get(k) != v for k, v in MALLOC.items()):
    os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, **MALLOC))

try:
    import torch
    import torch.nn as nn
except ImportError:
    print("torch_ref.py: PyTorch is not installed (Debian: python3-torch)", file=sys.stderr)
    sys.exit(3)

C = 16


class ChannelAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = nn.Sequential(nn.Conv2d(C, C // 4, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(C // 4, C, 1, bias=False))

    def forward(self, x):
        avg = torch.mean(x, dim=(2, 3), keepdim=True)
        mx = torch.amax(x, dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.mlp(avg) + self.mlp(mx))


class SpatialAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        s = torch.cat([torch.mean(x, dim=1, keepdim=True), torch.amax(x, dim=1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(s))


class Block(nn.Module):
    def __init__(self, attention):
        super().__init__()
        self.c1 = nn.Conv2d(C, C, 3, padding=1)
        self.c2 = nn.Conv2d(C, C, 3, padding=1)
        self.att = nn.Sequential(ChannelAttention(), SpatialAttention()) if attention else nn.Identity()

    def forward(self, x):
        return torch.relu(x + self.att(self.c2(torch.relu(self.c1(x)))))


class Net(nn.Module):
    def __init__(self, planes, attention, blocks=2):
        super().__init__()
        self.stem = nn.Conv2d(planes, C, 3, padding=1)
        self.blocks = nn.Sequential(*[Block(attention) for _ in range(blocks)])
        self.head = nn.Conv2d(C, planes, 3, padding=1)

    def forward(self, x):
        return self.head(self.blocks(torch.relu(self.stem(x))))


class Frame(nn.Module):
    """Two coupling rounds: four networks."""

    def __init__(self, planes, attention):
        super().__init__()
        self.nets = nn.ModuleList([Net(planes, attention) for _ in range(4)])

    def forward(self, a, b):
        b = b + self.nets[0](a)
        a = a + self.nets[1](b)
        b = b + self.nets[2](a)
        a = a + self.nets[3](b)
        return a, b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--size", type=int, default=512, help="frame side (networks run at half)")
    ap.add_argument("--samples", type=int, default=1, choices=(1, 3))
    ap.add_argument("--no-attention", action="store_true", help="the resnet-cm preset")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    planes, h = 2 * args.samples, args.size // 2
    model = Frame(planes, not args.no_attention).eval().to(memory_format=torch.channels_last)
    a = torch.rand(1, planes, h, h).to(memory_format=torch.channels_last)
    b = torch.rand(1, planes, h, h).to(memory_format=torch.channels_last)
    with torch.inference_mode():
        traced = torch.jit.freeze(torch.jit.trace(model, (a, b)))
        # TorchScript's profiling executor specialises and fuses the graph over the first calls;
        # until it has, single calls take up to 10x longer (seen: 65 to 520 ms per frame after 5).
        for _ in range(20):
            traced(a, b)
        t0 = time.perf_counter()
        for _ in range(args.frames):
            traced(a, b)
        ms = (time.perf_counter() - t0) * 1e3 / args.frames
    macs = h * h * (9 * planes * C + 2 * 2 * 9 * C * C + 9 * C * planes)
    print("torch preset=%s bits=NA threads=%d ms_per_frame=%.2f frames_per_s=%.2f gflop_per_frame=%.2f"
          % ("resnet-cm" if args.no_attention else "at-resnet-cm", args.threads, ms, 1e3 / ms,
             2 * macs * 4 / 1e9))


if __name__ == "__main__":
    main()

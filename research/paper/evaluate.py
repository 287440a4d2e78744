#!/usr/bin/python3
"""Reconstruction quality of weight files on whole images: x' = D(round(E(x) * levels)), no XOR (it cancels).

  evaluate.py WEIGHTS.bin... [--data DIR]     one Markdown table row per (weight file, image)

PSNR with the peak 2^bits - 1, on the integer reconstruction round(x' * levels) (halves to even).
"""
import argparse
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

torch = common.import_torch()

import model as M  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("weights", nargs="+")
    p.add_argument("--data", default=common.DEFAULT_DATA)
    a = p.parse_args(argv)
    torch.set_num_threads(2)
    print("| weights | image | PSNR (dB) | MSE (levels^2) | mean abs error (levels) | pixels off by > 10 levels "
          "| max abs error (levels) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for wpath in a.weights:
        model = M.load(wpath)
        bits = model.cfg.bits
        found, _ = common.load_folder(a.data, bits)
        for path, img in found:
            x = img.astype(np.int64)
            y = M.to_pixels(M.reconstruct(model, M.normalise(x, bits).float()[None, None]), bits)[0, 0].numpy()
            err = (y - x).astype(np.float64)
            mse = float((err ** 2).mean())
            peak = (1 << bits) - 1
            db = 10 * math.log10(peak * peak / mse) if mse else float("inf")
            print(f"| {os.path.basename(wpath)} | {os.path.basename(path)} | {db:.2f} | {mse:.2f} | "
                  f"{np.abs(err).mean():.2f} | {100 * (np.abs(err) > 10).mean():.2f} % | {int(np.abs(err).max())} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Trains the paper's encoder/decoder jointly (Adam, MSE, straight-through quantisation) on random crops.

An epoch is a fixed number of crops (--crops-per-epoch, default 1024: 16 batches of 64), drawn from a
generator seeded by --seed, so a run is repeatable. README.md in this folder has the details, the
exact commands of the shipped weights and their results.

  train.py --variant at-resnet-cm --epochs 300 --out at.bin --curve at.png
"""
import argparse
import csv
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

torch = common.import_torch()

import model as M  # noqa: E402



def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=common.DEFAULT_DATA, help="folder of PNG and DICOM files (default: %(default)s)")
    p.add_argument("--bits", type=int, default=8,
                   help="pixel depth the model is trained for; only images of that depth are used (default 8)")
    p.add_argument("--variant", choices=sorted(M.VARIANTS), default="at-resnet-cm")
    p.add_argument("--attention", dest="attention", action="store_true", default=None,
                   help="same as --variant at-resnet-cm")
    p.add_argument("--no-attention", dest="attention", action="store_false", help="same as --variant resnet-cm")
    p.add_argument("--epochs", type=int, default=50, help="the paper: 300 (default %(default)s)")
    p.add_argument("--batch", type=int, default=64, help="crops per step (default and the paper: 64)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (default and the paper: 1e-4)")
    p.add_argument("--crop", type=int, default=16, help="square crop side in pixels (default %(default)s)")
    p.add_argument("--crops-per-epoch", type=int, default=1024, help="(default %(default)s)")
    p.add_argument("--eval-crops", type=int, default=64,
                   help="fixed crops the per-epoch evaluation loss is measured on (default %(default)s)")
    p.add_argument("--features", type=int, default=32)
    p.add_argument("--blocks", type=int, default=2)
    p.add_argument("--reduction", type=int, default=8)
    p.add_argument("--kernel", type=int, default=7)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default %(default)s)")
    p.add_argument("--out", required=True, help="weight file to write (README.md, \"Weight file\")")
    p.add_argument("--curve", help="training curve PNG to write; the numbers go to the same name with .csv")
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    if a.attention is not None:
        a.variant = "at-resnet-cm" if a.attention else "resnet-cm"
    if a.epochs < 1 or a.batch < 1 or a.crop < 1 or a.crops_per_epoch < a.batch or a.eval_crops < 1:
        p.error("epochs, batch, crop and eval-crops must be positive and crops-per-epoch at least one batch")
    return a


def draw_crops(rng, imgs, count, side):
    """count crops [count,1,side,side]: an image chosen uniformly, then a position uniformly."""
    out = np.empty((count, 1, side, side), dtype=np.float32)
    which = rng.integers(0, len(imgs), size=count)
    for i, k in enumerate(which):
        h, w = imgs[k].shape
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        out[i, 0] = imgs[k][y:y + side, x:x + side]
    return torch.from_numpy(out)


def psnr(mse):
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


def write_curve(path, rows, title):
    csv_path = os.path.splitext(path)[0] + ".csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "train_mse", "eval_mse", "eval_psnr_db", "seconds"])
        for r in rows:
            w.writerow([r[0], "" if r[1] is None else f"{r[1]:.8g}", f"{r[2]:.8g}", f"{psnr(r[2]):.3f}",
                        f"{r[3]:.1f}"])
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    tr = [r for r in rows if r[1] is not None]
    ax.plot([r[0] for r in tr], [r[1] for r in tr], "o-", ms=3, label="training loss (mean over the epoch's batches)")
    ax.plot([r[0] for r in rows], [r[2] for r in rows], "s--", ms=3,
            label="evaluation loss (fixed crops, after the epoch)")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE on [0, 1] pixels (log scale)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    sec = ax.secondary_yaxis("right", functions=(lambda m: 10 * np.log10(1 / np.maximum(m, 1e-30)),
                                                 lambda p: 10 ** (-p / 10)))
    sec.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(range(0, 100, 5)))
    sec.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%d"))
    sec.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    sec.set_ylabel("PSNR (dB)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return csv_path


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    torch.use_deterministic_algorithms(True)
    say = (lambda *m: None) if a.quiet else (lambda *m: print(*m, flush=True))

    found, skipped = common.load_folder(a.data, a.bits)
    for path, why in skipped:
        say(f"skip {path}: {why}")
    used = [(path, img) for path, img in found if min(img.shape) >= a.crop]
    if not used:
        print(f"train.py: no {a.bits}-bit image of at least {a.crop}x{a.crop} in {a.data}", file=sys.stderr)
        return 2
    for path, img in used:
        say(f"use  {path}: {img.shape[1]}x{img.shape[0]}")
    levels = (1 << a.bits) - 1
    imgs = [img.astype(np.float32) / levels for _, img in used]

    cfg = M.Config(M.VARIANTS[a.variant], a.features, a.blocks, a.reduction, a.kernel, a.bits)
    model = M.PaperModel(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    crop_rng = np.random.default_rng(a.seed)
    eval_x = draw_crops(np.random.default_rng([a.seed, 1]), imgs, a.eval_crops, a.crop)

    def evaluate():
        model.eval()
        with torch.no_grad():
            loss = torch.nn.functional.mse_loss(model(eval_x), eval_x).item()
        model.train()
        return loss

    start = time.monotonic()
    rows = [(0, None, evaluate(), 0.0)]
    say(f"{a.variant} {cfg}: {sum(t.numel() for t in model.tensors())} weights; epoch 0 eval_mse {rows[0][2]:.6g}")
    steps = a.crops_per_epoch // a.batch
    for epoch in range(1, a.epochs + 1):
        total = 0.0
        for _ in range(steps):
            x = draw_crops(crop_rng, imgs, a.batch, a.crop)
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(model(x), x)
            loss.backward()
            opt.step()
            total += loss.item()
        train = total / steps
        if not math.isfinite(train):
            print(f"train.py: the loss is {train} at epoch {epoch}", file=sys.stderr)
            return 1
        rows.append((epoch, train, evaluate(), time.monotonic() - start))
        say(f"epoch {epoch}/{a.epochs} train_mse {train:.6g} eval_mse {rows[-1][2]:.6g} "
            f"({psnr(rows[-1][2]):.2f} dB) {rows[-1][3]:.0f} s")

    size = M.save(model, a.out)
    say(f"wrote {a.out} ({size} bytes)")
    if a.curve:
        title = (f"{a.variant}: F={a.features} B={a.blocks} r={a.reduction} k={a.kernel}, Adam lr={a.lr:g}, "
                 f"batch {a.batch} of {a.crop}x{a.crop} crops,\n{a.crops_per_epoch} crops per epoch, "
                 f"seed {a.seed}, {len(imgs)} {a.bits}-bit images")
        say(f"wrote {a.curve} and {write_curve(a.curve, rows, title)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""The figures dcmcryptstat drew for the 8-bit 512x512 brain MRI (stat_test.sh): PNG and SVG of
each kind, linked from the report, and what a reader sees in them. The PNG is decoded here (zlib
and the PNG filters, no imaging library); the SVG's text layer says where each label and panel
is, and the PNG must hold ink there: removing the axes, the labels or the bars fails a check.
Usage: stat_figures.py OUTDIR STEM"""
import os
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

SVG = "{http://www.w3.org/2000/svg}"
SIZES = {"triplet": (2006, 640), "hist": (1276, 484), "scatter": (1276, 676)}


def png_pixels(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit gray or RGB PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    idat, pos = b"", 8
    while pos < len(data):
        n, typ = struct.unpack(">I4s", data[pos:pos + 8])
        if typ == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", data[pos + 8:pos + 18])
        elif typ == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    assert depth == 8 and ctype in (0, 2), (path, depth, ctype)
    bpp = 1 if ctype == 0 else 3
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
            p = a + b - c
            pr = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
            line[x] = (line[x] + [0, a, b, (a + b) // 2, pr][f]) & 255
        rows.append([tuple(line[i:i + 3]) if bpp == 3 else (line[i],) * 3 for i in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def svg_layer(path):
    """The SVG's size, title, texts (class, panel, box, text) and panels {id: (x, y, w, h)}."""
    root = ET.parse(path).getroot()
    vb = [float(v) for v in root.get("viewBox").split()]
    title = root.find(SVG + "title").text
    layer = [g for g in root.iter(SVG + "g") if g.get("id") == "text-layer"]
    assert len(layer) == 1, path
    texts = [(t.get("class"), t.get("data-panel"), [float(v) for v in t.get("data-box").split()], t.text)
             for t in layer[0].iter(SVG + "text")]
    panels = {r.get("id")[6:]: tuple(float(r.get(k)) for k in ("x", "y", "width", "height"))
              for r in layer[0].iter(SVG + "rect")}
    return (vb[2], vb[3]), title, texts, panels


def dark(px):
    return sum(px) < 3 * 128


def check_ink(rows, texts, name):
    """Every label is drawn: dark pixels inside its box."""
    for cls, panel, (x, y, w, h), text in texts:
        ink = sum(dark(rows[j][i]) for j in range(int(y), int(y + h)) for i in range(int(x), int(x + w)))
        assert ink >= 3, (name, cls, panel, text, "no ink")


def check_axes(rows, panels, name):
    """Left and bottom axis lines, just outside each panel's area, dark along their length."""
    for pid, (x, y, w, h) in panels.items():
        left = [dark(rows[j][int(x) - 1]) for j in range(int(y), int(y + h))]
        bottom = [dark(rows[int(y + h)][i]) for i in range(int(x), int(x + w))]
        assert all(left) and all(bottom), (name, pid, "axis lines missing")


def texts_of(texts, cls, panel=None):
    return [t for c, p, _, t in texts if c == cls and (panel is None or p == panel)]


def check_triplet(rows, texts, panels):
    for k in ("original", "encrypted", "decrypted"):
        assert k in texts_of(texts, "label", k), k
        assert texts_of(texts, "axis-y", k) == ["stored value"], k
        assert any(t.startswith("window ") for t in texts_of(texts, "note", k)), k
        assert len(texts_of(texts, "tick-y", k)) >= 3, k
    img = {}
    for k, (x, y, w, h) in panels.items():
        assert (w, h) == (512, 512), (k, w, h)
        img[k] = [r[int(x):int(x + w)] for r in rows[int(y):int(y + h)]]
    assert img["original"] == img["decrypted"], "decrypted panel differs from the original"
    same = sum(a == b for l, m in zip(img["original"], img["encrypted"]) for a, b in zip(l, m))
    assert same < 512 * 512 // 64, same


def columns(rows, panel, colour):
    """Per column of the panel's area, how many pixels have the colour."""
    x, y, w, h = (int(v) for v in panel)
    return [sum(rows[j][i] == colour for j in range(y, y + h)) for i in range(x, x + w)]


def check_hist(rows, texts, panels):
    for k in ("plain", "cipher"):
        assert k in texts_of(texts, "label", k), k
        assert texts_of(texts, "axis-x", k) == ["pixel value"], k
        assert texts_of(texts, "axis-y", k) == ["count (pixels per bin)"], k
    assert texts_of(texts, "note", "cipher") == ["256 bins of 1 level, 0 to 255"]
    assert texts_of(texts, "note", "plain") == ["225 bins of 1 level, 31 to 255"]
    assert texts_of(texts, "legend", "cipher") == ["uniform: 1024 per bin"]
    # One y scale: the same tick values on both panels.
    yp, yc = texts_of(texts, "tick-y", "plain"), texts_of(texts, "tick-y", "cipher")
    assert yp == yc and len(yp) >= 4, (yp, yc)
    # The cipher's bars flat and low, the plain's tall, on that scale.
    bar = (76, 76, 76)  # cairo_set_source_rgb(0.3, 0.3, 0.3)
    hp, hc = columns(rows, panels["plain"], bar), columns(rows, panels["cipher"], bar)
    assert max(hp) > 0.8 * panels["plain"][3], max(hp)
    assert max(hc) < 0.3 * max(hp) and min(hc) > 0.7 * max(hc), (min(hc), max(hc), max(hp))
    # The uniform line sits at the cipher bars' mean height (red pixels: the dashes).
    x, y, w, h = panels["cipher"]
    red = [j for j in range(int(y), int(y + h)) if sum(rows[j][i][0] > 150 and rows[j][i][1] < 100
                                                       for i in range(int(x), int(x + w // 2))) > 20]
    assert red, "no uniform line"
    mean = sum(hc) / len(hc)
    assert abs((y + h - red[0]) - mean) < 0.15 * mean, (y + h - red[0], mean)


def check_scatter(rows, texts, panels):
    for k in ("plain", "cipher"):
        assert k in texts_of(texts, "label", k), k
        assert texts_of(texts, "axis-x", k) == ["value at (x,y)"], k
        assert texts_of(texts, "axis-y", k) == ["value at (x+1,y)"], k
    dot = (31, 120, 181)
    spread = {}
    for k, (x, y, w, h) in panels.items():
        pts = [(i - x, y + h - j) for j in range(int(y), int(y + h)) for i in range(int(x), int(x + w))
               if abs(rows[j][i][0] - dot[0]) + abs(rows[j][i][2] - dot[2]) < 30]
        assert len(pts) > 1000, (k, len(pts))
        near = sum(abs(a - b) < 0.1 * w for a, b in pts) / len(pts)
        quads = [sum((a >= w / 2) == qx and (b >= h / 2) == qy for a, b in pts) / len(pts)
                 for qx in (0, 1) for qy in (0, 1)]
        spread[k] = near, min(quads)
    assert spread["plain"][0] > 0.8, spread  # neighbours alike: along the diagonal
    assert spread["cipher"][1] > 0.15 and spread["cipher"][0] < 0.4, spread  # everywhere


def main():
    d, stem = sys.argv[1], sys.argv[2]
    report = open(os.path.join(d, "report.md")).read()
    for kind, size in SIZES.items():
        base = os.path.join(d, "%s.%s" % (stem, kind))
        assert "(%s.%s.png)" % (stem, kind) in report, kind
        w, h, rows = png_pixels(base + ".png")
        assert (w, h) == size, (kind, w, h)
        svg_size, title, texts, panels = svg_layer(base + ".svg")
        assert svg_size == size, (kind, svg_size)
        assert stem.split(".")[0] in title and stem.split(".")[1] in title, title
        check_ink(rows, texts, kind)
        if kind != "triplet":
            check_axes(rows, panels, kind)
        {"triplet": check_triplet, "hist": check_hist, "scatter": check_scatter}[kind](rows, texts, panels)
    print("ok   figures: PNG + SVG, sizes, labels and axes drawn, one histogram scale, "
          "scatter shapes, decrypted panel equals the original")


if __name__ == "__main__":
    main()

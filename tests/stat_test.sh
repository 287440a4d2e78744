#!/bin/sh
# dcmcryptstat as a script uses it: JSON lines with the documented fields, the default scheme
# passing the differential tests on a real 512x512 image and the plain XOR baseline failing
# them, a Markdown report with figures directory, and the keystream mode.
# Usage: stat_test.sh BINDIR SAMPLEDIR
set -u
bin=$1
samples=$2
t=$(mktemp -d /tmp/dcmc-stat-XXXXXX)
trap 'rm -rf "$t"' EXIT
fails=0
img=$samples/png/nema-wg04_MR1_brain_512x512_gray8.png
"$bin/dcmcryptstat" --json --trials 50 --schemes at-resnet-cm,logistic-xor "$img" >"$t/j" 2>"$t/e" || { echo "FAIL exit $?: $(cat "$t/e")"; exit 1; }
/usr/bin/python3 - "$t/j" <<'PY' || fails=$((fails + 1))
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
need = "file scheme entropy chi2 corr_h corr_v corr_d corr_a lse npcr uaci npcr_key uaci_key psnr max_error ms".split()
assert len(rows) == 2, rows
for r in rows:
    missing = [k for k in need if k not in r]
    assert not missing, missing
d = {r["scheme"]: r for r in rows}
a, x = d["at-resnet-cm"], d["logistic-xor"]
assert a["npcr"] >= a["npcr_crit"] and a["uaci_lo"] <= a["uaci"] <= a["uaci_hi"], a
assert a["psnr"] == "inf" and a["max_error"] == 0 and a["entropy"] >= 7.999, a
assert x["npcr"] < 1 and x["uaci"] < 1, x          # the XOR baseline fails visibly
print("ok   json fields, default passes, XOR baseline fails")
PY
# The paper's trained system (research/paper): rows with a finite PSNR and the largest error,
# the weights found in the source tree by default; a missing weight directory skips the schemes
# with one line when they were not named, and is an error (exit 2) when they were.
ct8=$samples/png/nema-wg04_CT1_chest_512x512_gray8.png
"$bin/dcmcryptstat" --json --trials 20 --schemes paper-at-resnet-cm,paper-resnet-cm "$ct8" >"$t/p" 2>"$t/e" || { echo "FAIL paper schemes exit $?: $(cat "$t/e")"; fails=$((fails + 1)); }
/usr/bin/python3 - "$t/p" <<'PY' || fails=$((fails + 1))
import json, math, sys
d = {r["scheme"]: r for r in map(json.loads, open(sys.argv[1]))}
assert sorted(d) == ["paper-at-resnet-cm", "paper-resnet-cm"], d
for r in d.values():
    assert isinstance(r["psnr"], float) and math.isfinite(r["psnr"]) and 20 < r["psnr"] < 60, r
    assert 0 < r["max_error"] <= 255 and 0 < r["ssim"] < 1, r
    assert r["fails"]["decrypt"] == 1 and r["entropy"] > 7, r   # lossy, as published
# research/paper/README.md's evaluate.py figures for this image (PyTorch, float32)
assert abs(d["paper-at-resnet-cm"]["psnr"] - 27.34) < 0.01 and d["paper-at-resnet-cm"]["max_error"] == 205
assert abs(d["paper-resnet-cm"]["psnr"] - 29.43) < 0.01 and d["paper-resnet-cm"]["max_error"] == 219
print("ok   paper schemes: finite PSNR and largest error, as PyTorch measured them")
PY
"$bin/dcmcryptstat" --json --trials 20 --paper-weights "$t/none" --schemes paper-resnet-cm "$ct8" >/dev/null 2>"$t/e"; rc=$?
[ $rc -eq 2 ] && grep -q "resnet-cm.bin" "$t/e" && echo "ok   named paper scheme without weights: exit 2" || { echo "FAIL named, no weights: exit $rc $(cat "$t/e")"; fails=$((fails + 1)); }
"$bin/dcmcryptstat" --json --trials 20 --paper-weights "$t/none" "$samples/png/nema-wg04_MR1_brain_512x512_gray8.png" >"$t/a" 2>"$t/e"; rc=$?
[ $rc -eq 0 ] && [ "$(grep -c skipping "$t/e")" -eq 2 ] && ! grep -q '"paper-' "$t/a" && [ "$(wc -l <"$t/a")" -eq 6 ] \
  && echo "ok   default run without weights: paper schemes skipped, one line each" || { echo "FAIL default, no weights: exit $rc $(cat "$t/e")"; fails=$((fails + 1)); }
"$bin/dcmcryptstat" --trials 20 --schemes at-resnet-cm -o "$t/out" "$img" 2>"$t/e" && grep -q "| at-resnet-cm |" "$t/out/report.md" \
  && echo "ok   markdown report" || { echo "FAIL report: $(cat "$t/e")"; fails=$((fails + 1)); }
# The figures: PNGs of the documented sizes that the report links, and the triplet's middle
# panel (the cipher image) is not the original.
/usr/bin/python3 - "$t/out" <<'PY' || fails=$((fails + 1))
import os, re, struct, sys, zlib
d = sys.argv[1]
report = open(os.path.join(d, "report.md")).read()
stem = "nema-wg04_MR1_brain_512x512_gray8.at-resnet-cm"
want = {"triplet": (3 * 512 + 48, 512), "hist": (2 * (16 + 512) + 24 + 16, 256 + 34),
        "scatter": (2 * (16 + 512) + 24 + 16, 512 + 34)}
for kind, size in want.items():
    name = "%s.%s.png" % (stem, kind)
    assert "(%s)" % name in report, name
    data = open(os.path.join(d, name), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", name
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    assert (w, h, depth, ctype) == size + (8, 0), (name, w, h, depth, ctype)
# Decode the triplet (8-bit gray, filter bytes per row) and compare the three panels.
data = open(os.path.join(d, stem + ".triplet.png"), "rb").read()
idat, pos = b"", 8
while pos < len(data):
    n, typ = struct.unpack(">I4s", data[pos:pos + 8])
    if typ == b"IDAT":
        idat += data[pos + 8:pos + 8 + n]
    pos += 12 + n
raw, w = zlib.decompress(idat), 3 * 512 + 48
rows, prev = [], bytearray(w)
for y in range(512):
    f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
    for x in range(w):
        a = line[x - 1] if x else 0
        b, c = prev[x], (prev[x - 1] if x else 0)
        p = a + b - c
        pr = a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c) else b if abs(p - b) <= abs(p - c) else c
        line[x] = (line[x] + [0, a, b, (a + b) // 2, pr][f]) & 255
    rows.append(bytes(line))
    prev = line
left = [r[:512] for r in rows]; mid = [r[536:1048] for r in rows]; right = [r[1072:1584] for r in rows]
assert left == right, "decrypted panel differs from the original"
same = sum(a == b for l, m in zip(left, mid) for a, b in zip(l, m))
assert same < 512 * 512 // 64, same
print("ok   figures: sizes, linked from the report, decrypted panel equals the original")
PY
# Several runs: failure counts and verdicts in JSON; the XOR baseline fails, the default passes.
"$bin/dcmcryptstat" --json --runs 5 --trials 20 --schemes at-resnet-cm,logistic-xor "$img" >"$t/r" 2>"$t/e" || { echo "FAIL --runs: $(cat "$t/e")"; fails=$((fails + 1)); }
/usr/bin/python3 - "$t/r" <<'PY' || fails=$((fails + 1))
import json, sys
d = {r["scheme"]: r for r in map(json.loads, open(sys.argv[1]))}
a, x = d["at-resnet-cm"], d["logistic-xor"]
assert a["runs"] == 5 and a["fails"]["decrypt"] == 0 and a["pass"]["npcr"] and a["pass"]["uaci"], a
assert x["fails"]["npcr"] == 5 and x["fails"]["uaci"] == 5 and x["pass_all"] is False, x
print("ok   --runs: failure counts and verdicts")
PY
: >"$t/file"   # an output directory below a regular file: cannot be created, even by root
"$bin/dcmcryptstat" --trials 20 --schemes logistic-xor -o "$t/file/x" "$img" >/dev/null 2>&1; rc=$?
[ $rc -eq 4 ] && echo "ok   unwritable output exit 4" || { echo "FAIL unwritable output exit $rc"; fails=$((fails + 1)); }
n=$("$bin/dcmcryptstat" --keystream 100000 | wc -c)
[ "$n" -eq 100000 ] && echo "ok   keystream mode" || { echo "FAIL keystream wrote $n bytes"; fails=$((fails + 1)); }
"$bin/dcmcryptstat" "$t/nothere.png" 2>/dev/null; [ $? -eq 2 ] && echo "ok   missing input exit 2" || { echo "FAIL missing input"; fails=$((fails + 1)); }
echo "$fails failed"
[ "$fails" -eq 0 ]

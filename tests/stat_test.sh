#!/bin/sh
# dcmcryptstat as a script uses it: JSON lines with the documented fields, the default scheme
# passing the differential tests on a real 512x512 image and the plain XOR baseline failing
# them, a Markdown report with its figures (PNG and SVG), and the keystream mode.
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
# The figures: PNG and SVG of each kind, linked from the report, with their axes, labels, one
# histogram scale and the decrypted panel equal to the original (stat_figures.py).
/usr/bin/python3 "$(dirname "$0")/stat_figures.py" "$t/out" nema-wg04_MR1_brain_512x512_gray8.at-resnet-cm \
  || fails=$((fails + 1))
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

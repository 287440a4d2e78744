#!/bin/sh
# A tree of a few thousand synthetic-but-valid objects made from corpus objects (pydicom gives
# each copy its own SOP Instance UID and instance number, in 40 series of 6 studies), encrypted
# with --recurse at -j 1 and -j 2, then decrypted: prints files/s, MB/s and CPU use (user + sys
# over wall time: 2.0 means both cores busy) and checks that every object came through and that
# progress lines were printed (stderr is not a terminal here).
# Usage: batch_scale.sh BINDIR SAMPLEDIR [N]     (default N = 3000; labelled long)
set -u
bin=$1
samples=$2
n=${3:-3000}
t=$(mktemp -d /tmp/dcmc-scale-XXXXXX)
trap 'rm -rf "$t"' EXIT
openssl rand -hex 32 >"$t/key"
chmod 600 "$t/key" # a key others can read gets a warning on stderr, which is checked below
/usr/bin/python3 - "$samples" "$t/in" "$n" <<'PY'
import os, sys, pydicom
from pydicom.uid import generate_uid
samples, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
# Mostly small CT slices (as a CT series is), one in ten a 384x384 MR slice.
ct = pydicom.dcmread(os.path.join(samples, "dicom", "pydicom_CT_small_128x128.dcm"))
mr = pydicom.dcmread(os.path.join(samples, "study-tree", "dcm_qa_stc_test_session", "ax", "axasc35",
                                  "MR.1.3.12.2.1107.5.2.32.35131.2014031012493950715786673"))
studies = [generate_uid() for _ in range(6)]
series = [generate_uid() for _ in range(40)]
for i in range(n):
    ds = mr if i % 10 == 9 else ct
    s = i % 40
    ds.StudyInstanceUID = studies[s % 6]
    ds.SeriesInstanceUID = series[s]
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstanceNumber = i
    d = os.path.join(out, "ST%02d" % (s % 6), "SE%02d" % s)
    os.makedirs(d, exist_ok=True)
    ds.save_as(os.path.join(d, "IM%05d" % i), write_like_original=False)
PY
files=$(find "$t/in" -type f | wc -l)
mb=$(du -sm "$t/in" | cut -f1)
echo "tree: $files objects, $mb MB"
fails=0
for j in 1 2; do
  /usr/bin/time -f "%e %U %S" -o "$t/time" "$bin/dcmencrypt" --key-file "$t/key" --recurse -j $j \
    --report "$t/r$j.jsonl" "$t/in" "$t/enc$j" 2>"$t/err$j"
  rc=$?
  # Not a terminal: plain progress lines every 10 s (a run of N >= 3000 lasts longer than that).
  if [ "$n" -ge 3000 ] && ! grep -q '^dcmencrypt: progress: [0-9]*/[0-9]* files, .* MB/s, ETA' "$t/err$j"; then
    echo "FAIL -j $j: no progress line: $(head -2 "$t/err$j")"; fails=$((fails + 1))
  fi
  read -r wall user sys <"$t/time"
  done=$(grep -c '"status":"encrypted"' "$t/r$j.jsonl")
  echo "$j" "$wall" "$user" "$sys" "$files" "$mb" | awk '{printf "encrypt -j %d: %d files in %.1f s: %.1f files/s, %.1f MB/s, CPU use %.2f cores\n", $1, $5, $2, $5/$2, $6/$2, ($3+$4)/$2}'
  if [ "$rc" -ne 0 ] || [ "$done" -ne "$files" ]; then echo "FAIL -j $j: exit $rc, $done of $files encrypted"; fails=$((fails + 1)); fi
done
/usr/bin/time -f "%e %U %S" -o "$t/time" "$bin/dcmdecrypt" --key-file "$t/key" --recurse -q -j 2 \
  --report "$t/d.jsonl" "$t/enc2" "$t/dec"
rc=$?
read -r wall user sys <"$t/time"
echo 2 "$wall" "$user" "$sys" "$files" "$mb" | awk '{printf "decrypt -j %d: %d files in %.1f s: %.1f files/s, %.1f MB/s, CPU use %.2f cores\n", $1, $5, $2, $5/$2, $6/$2, ($3+$4)/$2}'
[ "$rc" -eq 0 ] && [ "$(grep -c '"status":"decrypted"' "$t/d.jsonl")" -eq "$files" ] || { echo "FAIL decrypt: exit $rc"; fails=$((fails + 1)); }
# Every decrypted object has its original pixels (spot check one in 50 with pydicom).
/usr/bin/python3 - "$t/in" "$t/dec" <<'PY' || fails=$((fails + 1))
import os, sys, numpy as np, pydicom
a, b = sys.argv[1], sys.argv[2]
bad = checked = 0
for root, _, names in os.walk(a):
    for k, name in enumerate(sorted(names)):
        if k % 50:
            continue
        p = os.path.join(root, name)
        q = os.path.join(b, os.path.relpath(p, a))
        checked += 1
        if not np.array_equal(pydicom.dcmread(p).pixel_array, pydicom.dcmread(q).pixel_array):
            bad += 1
print(f"spot check: {checked} objects, {bad} differ")
sys.exit(1 if bad else 0)
PY
[ "$fails" -eq 0 ] && { echo "batch-scale: all passed"; exit 0; }
echo "batch-scale: $fails failed"; exit 1

#!/bin/sh
# Hostile and odd input, as an attacker or an old writer makes it: every file here once crashed a
# tool, made it allocate gigabytes or run for minutes before any check, or lost data. Each must
# now give its documented exit code, leave nothing behind, and (the resource rule) any file of
# at most 64 KB, encrypted or not, must cost under 256 MB and one second of CPU. The memory
# bound is checked in builds without sanitizers, the time bound in optimised builds only. A
# passphrase adds its own cost, scrypt at the default parameters (128 MiB, about half a second
# to a second of CPU on this class of machine, more when the machine is loaded): the passphrase
# cases get one second more for it, so the rule still says the file costs under a second.
# Usage: hostile_test.sh BINDIR SAMPLEDIR   (env: DCMC_BUILD_TYPE, DCMC_SANITIZE)
set -u
bin=$1
samples=$2
here=$(cd "$(dirname "$0")" && pwd)
prefix=dcmc-hostile
. "$here/testlib.sh"
enc="$bin/dcmencrypt"
dec="$bin/dcmdecrypt"
py=/usr/bin/python3
openssl rand -hex 32 >"$t/key"
printf 'hostile pass phrase\n' >"$t/pass"
chmod 600 "$t/key" "$t/pass"
check_mem=1; check_time=0
[ "${DCMC_SANITIZE:-OFF}" = ON ] && check_mem=0
[ "${DCMC_BUILD_TYPE:-}" = Release ] && [ "$check_mem" = 1 ] && check_time=1
no_leftovers() { # no_leftovers DIR NAME: nothing but what the test put there
  n=$(find "$1" -name '*.dcmcrypt-*' | wc -l)
  if [ "$n" -eq 0 ]; then ok "$2: no temporary file left"; else bad "$2: $n temporary files left"; fi
}

# bounded CODE NAME CMD...: exit CODE (any: a documented one, 0-5), at most 256 MB resident
# and $cpu_limit s of CPU, not killed by a signal.
cpu_limit=1.0
bounded() {
  want=$1; name=$2; shift 2
  /usr/bin/time -f '%M %U %S' -o "$t/rusage" "$@" >"$t/out" 2>"$t/err"; got=$?
  # time(1) reports a killed child as "Command terminated by signal N" in its output file.
  if grep -q 'signal' "$t/rusage"; then bad "$name: killed by a signal ($(head -1 "$t/rusage"))"; return; fi
  set -- $(tail -1 "$t/rusage")
  kb=$1; cpu=$(awk "BEGIN { print $2 + $3 }")
  if { [ "$want" = any ] && [ "$got" -gt 5 ]; } || { [ "$want" != any ] && [ "$got" -ne "$want" ]; }; then
    bad "$name: exit $got, wanted $want: $(tail -c 300 "$t/err")"
  elif [ "$check_mem" = 1 ] && [ "$kb" -gt 262144 ]; then
    bad "$name: $((kb / 1024)) MB resident (limit 256)"
  elif [ "$check_time" = 1 ] && awk "BEGIN { exit !($cpu > $cpu_limit) }"; then
    bad "$name: $cpu s of CPU (limit $cpu_limit)"
  else
    ok "$name (exit $got, $((kb / 1024)) MB, $cpu s)"
  fi
}

mkdir -p "$t/plain" "$t/tampered" "$t/tamperedp" "$t/nested" "$t/o"

# 1. Crafted plain objects: declared sizes far beyond the data, a deflate bomb, 2e9 frames.
$py "$here/hostile/craft.py" plain "$t/plain"
for f in "$t"/plain/*.dcm; do
  bounded 2 "encrypt $(basename "$f") refused" "$enc" --threads 1 --key-file "$t/key" "$f" "$t/o/out.dcm"
  [ -e "$t/o/out.dcm" ] && bad "output written for $(basename "$f")"
done
# The expansion limit is a policy: raised, the deflated object (64 MB of zeros) encrypts.
expect 0 "--max-expansion 2000 accepts the deflated object" \
  "$enc" --max-expansion 2000 --key-file "$t/key" "$t/plain/deflate-bomb.dcm" "$t/o/deflate.dcm"
rm -f "$t/o/deflate.dcm"

# 2. Tampered encrypted objects: payload length 2^64-1 with an empty or missing payload (crashed
# before any key was asked for), short payload, missing header, 30000 frames declared over 2
# bytes, truncated or lengthened pixel data, the most expensive scrypt the format allows.
"$enc" -q --key-file "$t/key" "$samples/dicom/pydicom_CT_small_128x128.dcm" "$t/ct.enc.dcm"
"$enc" -q --passphrase-file "$t/pass" "$samples/dicom/pydicom_CT_small_128x128.dcm" "$t/ctp.enc.dcm"
$py "$here/hostile/craft.py" encrypted "$t/ct.enc.dcm" "$t/tampered"
$py "$here/hostile/craft.py" encrypted "$t/ctp.enc.dcm" "$t/tamperedp"
for obj in payload-2e64-empty payload-2e64-missing payload-short frames-30000-short \
            pixels-truncated pixels-appended; do
  bounded 3 "decrypt $obj: integrity failure" "$dec" --threads 1 --key-file "$t/key" \
    "$t/tampered/$obj.dcm" "$t/o/out.dcm"
  cpu_limit=2.0 # one more second for scrypt
  bounded 3 "decrypt $obj (passphrase): integrity failure" "$dec" --threads 1 \
    --passphrase-file "$t/pass" "$t/tamperedp/$obj.dcm" "$t/o/out.dcm"
  cpu_limit=1.0
done
# The block's creator is there, its header element gone: a damaged block, said as such (exit 3).
bounded 3 "decrypt header-missing: the block is damaged" "$dec" --key-file "$t/key" \
  "$t/tampered/header-missing.dcm" "$t/o/out.dcm"
bounded 2 "scrypt N=2^22 r=7 p=16 refused before deriving" "$dec" --passphrase-file "$t/pass" \
  "$t/tamperedp/scrypt-max.dcm" "$t/o/out.dcm"
grep -q "scrypt-max-mib" "$t/err" && ok "the refusal names --scrypt-max-mib" || bad "scrypt message: $(cat "$t/err")"
expect 2 "--scrypt-max-mib 64 refuses the default cost (128 MiB)" \
  "$dec" --scrypt-max-mib 64 --passphrase-file "$t/pass" "$t/ctp.enc.dcm" "$t/o/out.dcm"
cpu_limit=2.0 # one more second for scrypt
bounded 0 "the untampered passphrase object decrypts" "$dec" --threads 1 --passphrase-file "$t/pass" \
  "$t/ctp.enc.dcm" "$t/o/out.dcm"
cpu_limit=1.0
[ -e "$t/o/out.dcm" ] && rm "$t/o/out.dcm"
[ "$(ls "$t/o" | wc -l)" -eq 0 ] && ok "no output for any refused object" || bad "outputs left: $(ls "$t/o")"

# 3. Nesting: 10,000 nested sequences overflowed DCMTK's recursive reader (exit 139).
$py "$here/hostile/make_hostile.py" "$t/nested"
for f in "$t"/nested/*.dcm; do
  bounded 2 "encrypt $(basename "$f") refused" "$enc" --key-file "$t/key" "$f" "$t/o/n.dcm"
  bounded 2 "decrypt $(basename "$f") refused" "$dec" --key-file "$t/key" "$f" "$t/o/n.dcm"
done
mkdir -p "$t/tree/a"
cp "$t/nested/nested-10000.dcm" "$t/tree/a/"
cp "$samples/dicom/pydicom_CT_small_128x128.dcm" "$t/tree/a/ct.dcm"
expect 5 "--recurse over a nested file: that file fails, the run goes on" \
  "$enc" --key-file "$t/key" --recurse --report "$t/rep.jsonl" "$t/tree" "$t/tree.enc"
grep -q '"path":"a/ct.dcm".*"status":"encrypted"' "$t/rep.jsonl" && ok "the other file is encrypted" \
  || bad "report: $(cat "$t/rep.jsonl")"
no_leftovers "$t/tree.enc" "--recurse over a nested file"

# 4. A DICOMDIR whose record type made DCMTK throw in the middle of parsing (a leak under
# LeakSanitizer, which the sanitizer build of this test catches).
cp "$here/fuzz/regressions/fuzz_dicom-leak-dicomdir.bin" "$t/leak.dcm"
bounded 2 "encrypt the malformed DICOMDIR: refused" "$enc" --key-file "$t/key" "$t/leak.dcm" "$t/o/l.dcm"
bounded 2 "decrypt the malformed DICOMDIR: refused" "$dec" --key-file "$t/key" "$t/leak.dcm" "$t/o/l.dcm"

# 5. Exactness in corners: junk bits after the last frame of a 1-bit object, a non-zero pad
# byte after 8-bit frames. Both came back without them.
$py "$here/hostile/craft.py" bit1 "$t/bit1.dcm"
for f in bit1 bit1-pad8; do
  "$enc" -q --key-file "$t/key" "$t/$f.dcm" "$t/$f.enc.dcm" &&
    "$dec" -q --key-file "$t/key" "$t/$f.enc.dcm" "$t/$f.dec.dcm"
  if $py - "$t/$f.dcm" "$t/$f.dec.dcm" "$t/$f.enc.dcm" <<'EOF'
import sys, pydicom
a, b, e = (pydicom.dcmread(p) for p in sys.argv[1:4])
assert a.PixelData == b.PixelData, (a.PixelData.hex(), b.PixelData.hex())
assert a.PixelData not in e.PixelData  # the junk travels encrypted, not in clear
EOF
  then ok "$f: the pixel data comes back byte for byte, tail included"; else bad "$f: not exact"; fi
done

# 6. The resource rule over every small file we have: sample objects, regression inputs, their
# encryptions.
mkdir -p "$t/small"
checked=0
for f in "$samples"/dicom/*.dcm "$here"/fuzz/regressions/*; do
  [ "$(stat -c %s "$f")" -le 65536 ] || continue
  b=$(basename "$f")
  bounded any "encrypt $b" "$enc" --threads 1 -q --key-file "$t/key" "$f" "$t/small/$b.enc"
  checked=$((checked + 1))
  if [ -e "$t/small/$b.enc" ] && [ "$(stat -c %s "$t/small/$b.enc")" -le 65536 ]; then
    bounded 0 "decrypt $b.enc" "$dec" --threads 1 -q --key-file "$t/key" "$t/small/$b.enc" \
      "$t/small/$b.dec"
    checked=$((checked + 1))
  fi
done
# The sample data and regression corpus hold well over a dozen small files: fewer means the
# rule checked nothing.
[ "$checked" -ge 12 ] && ok "resource rule checked over $checked small objects" \
  || bad "resource rule: only $checked small objects found"

# 7. Secrets: no core dumps (a dump of a crash held the raw key), the passphrase variable wiped
# from the process's environment once read, a warning for key files others can read. A FIFO holds
# the process where we want to look at it: as the passphrase file (before anything is read) and
# as the input (after the passphrase is read).
mkfifo "$t/passfifo" "$t/infifo"
chmod 644 "$t/key"
"$enc" -q --passphrase-file "$t/passfifo" "$samples/dicom/pydicom_CT_small_128x128.dcm" \
  "$t/o/f1.dcm" 2>/dev/null &
pid=$!
sleep 1
if grep -q '^Max core file size *0 *0' "/proc/$pid/limits"; then ok "core dumps are off"; else
  bad "core dumps: $(grep core "/proc/$pid/limits")"; fi
printf 'fifo pass phrase\n' >"$t/passfifo"
wait $pid && ok "the passphrase from a FIFO works" || bad "encryption with a FIFO passphrase failed"
DCMC_SECRET='do not leak this passphrase' "$enc" --passphrase-env DCMC_SECRET "$t/infifo" "$t/o/f.dcm" \
  2>/dev/null &
pid=$!
sleep 2 # scrypt, then the input is opened and waits for a writer
if ! tr '\0' '\n' <"/proc/$pid/environ" >"$t/environ"; then bad "dcmencrypt ended before its environment was read";
elif grep -q 'do not leak' "$t/environ"; then
  bad "the passphrase is still in /proc/$pid/environ"; else ok "the passphrase is wiped from the environment"; fi
# The passphrase lives in pages core dumps leave out: a writable mapping flagged "dd"
# (MADV_DONTDUMP; the kernel's own read-only [vvar] is "dd" in every process).
if grep -q '^VmFlags:.* wr .* dd' "/proc/$pid/smaps"; then ok "the passphrase pages are excluded from dumps"
else bad "no MADV_DONTDUMP mapping in dcmencrypt"; fi
kill "$pid"; wait "$pid" 2>/dev/null
rm -f "$t/o/f1.dcm"
expect 0 "a key file others can read: encrypt with a warning" \
  "$enc" --key-file "$t/key" "$samples/dicom/pydicom_CT_small_128x128.dcm" "$t/o/w.dcm"
grep -q "warning: key file .* can be read by other users" "$t/err" && ok "the warning names the key file" \
  || bad "no warning for a 0644 key file: $(cat "$t/err")"
chmod 600 "$t/key"
expect 0 "a private key file: no warning" \
  "$enc" --key-file "$t/key" "$samples/dicom/pydicom_CT_small_128x128.dcm" "$t/o/w2.dcm"
[ -s "$t/err" ] && bad "output for a 0600 key file: $(cat "$t/err")" || ok "nothing said for a 0600 key file"
head -c 5000 /dev/zero | tr '\0' 'x' >"$t/longpass"
chmod 600 "$t/longpass"
expect 1 "a passphrase longer than 4096 bytes is refused, not cut" \
  "$enc" --passphrase-file "$t/longpass" "$samples/dicom/pydicom_CT_small_128x128.dcm" "$t/o/w3.dcm"

[ "$fails" -eq 0 ] && echo "all hostile-input tests passed" || echo "$fails failed"
[ "$fails" -eq 0 ]

#!/bin/sh
# Batch conversion of a study tree (dcmencrypt/dcmdecrypt --recurse), as a PACS administrator
# would run it: the bundled study tree plus a truncated object, an unreadable entry and a text
# file encrypts and decrypts back to the original (judged by pydicom, GDCM and dcmdump in
# batch_compare.py); the report names every file and its reason; a rerun skips what is done and
# redoes what no longer verifies; shards run under GNU parallel cover the tree exactly once;
# SIGKILL and SIGINT in the middle of a run leave no temporary or partial file, and the same
# command then completes the job, as it does after the output disk filled up; passphrases work
# with one scrypt per run.
# Usage: batch_test.sh BINDIR SAMPLEDIR
set -u
bin=$1
samples=$2
here=$(cd "$(dirname "$0")" && pwd)
prefix=dcmc-batch
. "$(dirname "$0")/testlib.sh"
trap 'umount "$t/full" 2>/dev/null; rm -rf "$t"' EXIT
no_temps() { # no_temps DIR NAME
  n=$(find "$1" -name '*.dcmcrypt-*' | wc -l)
  if [ "$n" -eq 0 ]; then ok "$2: no temporary files"; else bad "$2: $n temporary files: $(find "$1" -name '*.dcmcrypt-*' | head -3)"; fi
}
status_of() { # status_of REPORT PATH -> status
  grep -F "\"path\":\"$2\"," "$1" | sed 's/.*"status":"\([a-z]*\)".*/\1/' | tail -1
}
count() { # count REPORT STATUS
  grep -c "\"status\":\"$2\"" "$1"
}
enc="$bin/dcmencrypt"
dec="$bin/dcmdecrypt"
openssl rand -hex 32 >"$t/key"

# The tree: the bundled studies and what real exports also hold.
cp -r "$samples/study-tree" "$t/in"
mkdir -p "$t/in/broken" "$t/in/notes"
mr="$t/in/dcm_qa_stc_test_session/ax/axasc35/MR.1.3.12.2.1107.5.2.32.35131.2014031012493950715786673"
head -c 200000 "$mr" >"$t/in/broken/truncated.dcm"
ln -s does-not-exist "$t/in/broken/unreadable"
echo "exported by the PACS on 2026-11-25" >"$t/in/notes/README.txt"
nfiles=$(find "$t/in" -type f -o -type l | wc -l)

# Usage.
expect 1 "--jobs without --recurse" "$enc" --key-file "$t/key" -j 2 "$mr" "$t/x.dcm"
expect 1 "--shard 4/3" "$enc" --key-file "$t/key" --recurse --shard 4/3 "$t/in" "$t/x"
expect 1 "output inside the input" "$enc" --key-file "$t/key" --recurse "$t/in" "$t/in/out"
expect 2 "--recurse on a file" "$enc" --key-file "$t/key" --recurse "$mr" "$t/x"

# -j shares the cores: jobs x threads per file never exceeds --threads.
expect 5 "-j 2 on 2 threads" "$enc" --key-file "$t/key" --recurse -v -j 2 --threads 2 "$t/in" "$t/jt"
grep -q "2 jobs x 1 threads" "$t/err" && ok "-j 2 --threads 2: 1 thread per file" || bad "-j 2 --threads 2: $(grep jobs "$t/err")"
expect 5 "-j 1 on 2 threads" "$enc" --key-file "$t/key" --recurse -v -j 1 --threads 2 "$t/in" "$t/jt1"
grep -q "1 jobs x 2 threads" "$t/err" && ok "-j 1 --threads 2: 2 threads per file" || bad "-j 1 --threads 2: $(grep jobs "$t/err")"
rm -rf "$t/jt" "$t/jt1"

# Encrypt: exit 5 (two files failed), everything else done, the report says why.
expect 5 "encrypt the tree" "$enc" --key-file "$t/key" --recurse -j 2 --report "$t/enc.jsonl" "$t/in" "$t/enc"
grep -q "of $nfiles files" "$t/err" && grep -q "2 failed" "$t/err" && ok "summary line: $(tail -1 "$t/err")" || bad "summary line: $(tail -2 "$t/err")"
[ "$(wc -l <"$t/enc.jsonl")" -eq "$nfiles" ] && ok "one report line per file ($nfiles)" || bad "report has $(wc -l <"$t/enc.jsonl") lines for $nfiles files"
for p in broken/truncated.dcm broken/unreadable; do
  line=$(grep -F "\"path\":\"$p\"," "$t/enc.jsonl")
  case "$line" in
    *'"status":"failed","reason":""'*) bad "$p: failed without a reason" ;;
    *'"status":"failed","reason":"'*) ok "$p failed with a reason: $(echo "$line" | sed 's/.*"reason":"\([^"]*\)".*/\1/')" ;;
    *) bad "$p: $line" ;;
  esac
done
grep -F '"path":"notes/README.txt",' "$t/enc.jsonl" | grep -q '"status":"copied","reason":"not DICOM"' && ok "a text file is copied, reason 'not DICOM'" || bad "README.txt: $(grep -F README "$t/enc.jsonl")"
grep -F 'TINY_ALPHA/PT000000/ST000000/SE000000/IM000000",' "$t/enc.jsonl" | grep -q '"status":"copied","reason":"no pixel data"' && ok "an object without pixel data is copied, reason 'no pixel data'" || bad "no-pixel object: $(grep -F IM000000 "$t/enc.jsonl")"
[ "$(count "$t/enc.jsonl" encrypted)" -eq 43 ] && ok "43 images encrypted" || bad "$(count "$t/enc.jsonl" encrypted) images encrypted, wanted 43"
[ "$(count "$t/enc.jsonl" dicomdir)" -eq 8 ] && ok "8 DICOMDIRs rebuilt" || bad "$(count "$t/enc.jsonl" dicomdir) DICOMDIRs rebuilt, wanted 8"
no_temps "$t/enc" "encrypt"
grep -q '"ms":' "$t/enc.jsonl" && grep -q '"in_bytes":' "$t/enc.jsonl" && grep -q '"out_bytes":' "$t/enc.jsonl" && ok "report has sizes and times" || bad "report fields: $(head -1 "$t/enc.jsonl")"

# Decrypt, and judge the round trip with other people's software.
expect 0 "decrypt the tree" "$dec" --key-file "$t/key" --recurse -j 2 --report "$t/dec.jsonl" "$t/enc" "$t/dec"
no_temps "$t/dec" "decrypt"
if /usr/bin/python3 "$here/batch_compare.py" "$t/in" "$t/enc" "$t/dec" --missing broken/truncated.dcm broken/unreadable >"$t/cmp" 2>/dev/null; then
  ok "round trip: $(tail -1 "$t/cmp")"
else
  bad "round trip: $(head -5 "$t/cmp")"
fi

# Rerun: everything done is skipped; an output that no longer verifies is redone.
expect 5 "rerun the same command" "$enc" --key-file "$t/key" --recurse -j 2 --report "$t/re.jsonl" "$t/in" "$t/enc"
[ "$(count "$t/re.jsonl" skipped)" -eq $((nfiles - 2 - 8)) ] && [ "$(count "$t/re.jsonl" encrypted)" -eq 0 ] && ok "rerun skips the $((nfiles - 10)) finished files" || bad "rerun: $(count "$t/re.jsonl" skipped) skipped, $(count "$t/re.jsonl" encrypted) encrypted"
ax=dcm_qa_stc_test_session/ax/axdesc35/MR.1.3.12.2.1107.5.2.32.35131.2014031012504272932486891
sz=$(stat -c %s "$t/enc/$ax")
printf '\001' | dd of="$t/enc/$ax" bs=1 seek=$((sz - 5000)) conv=notrunc 2>/dev/null
cp "$t/in/notes/README.txt" "$t/enc/notes/README.txt" && echo "changed" >>"$t/enc/notes/README.txt"
expect 5 "rerun after damage" "$enc" --key-file "$t/key" --recurse -j 2 --report "$t/re2.jsonl" "$t/in" "$t/enc"
[ "$(status_of "$t/re2.jsonl" "$ax")" = encrypted ] && ok "a damaged encrypted output is redone" || bad "damaged output: $(status_of "$t/re2.jsonl" "$ax")"
[ "$(status_of "$t/re2.jsonl" notes/README.txt)" = copied ] && ok "a changed copy is redone" || bad "changed copy: $(status_of "$t/re2.jsonl" notes/README.txt)"
expect 0 "the redone object decrypts" "$dec" --key-file "$t/key" "$t/enc/$ax" "$t/ax.dcm"
openssl rand -hex 32 >"$t/key2"
expect 5 "rerun with another key" "$enc" --key-file "$t/key2" --recurse --report "$t/re3.jsonl" "$t/in" "$t/enc"
[ "$(status_of "$t/re3.jsonl" "$ax")" = encrypted ] && [ "$(count "$t/re3.jsonl" encrypted)" -eq 43 ] && ok "outputs of another key do not verify: all 43 redone" || bad "another key: $(count "$t/re3.jsonl" encrypted) encrypted"

# Shards under GNU parallel: disjoint, complete; a final run without --shard writes the DICOMDIRs.
if command -v parallel >/dev/null; then
  parallel -j 3 "$enc" --key-file "$t/key" --recurse -q --report "$t/shard{}.jsonl" --shard {}/3 "$t/in" "$t/sh" ::: 1 2 3
  cat "$t/shard1.jsonl" "$t/shard2.jsonl" "$t/shard3.jsonl" | sed 's/.*"path":"\([^"]*\)".*/\1/' | sort >"$t/shard-paths"
  sort -u "$t/shard-paths" >"$t/shard-uniq"
  [ "$(wc -l <"$t/shard-paths")" -eq "$nfiles" ] && [ "$(wc -l <"$t/shard-uniq")" -eq "$nfiles" ] && ok "3 shards cover the $nfiles files once each" || bad "shards: $(wc -l <"$t/shard-paths") lines, $(wc -l <"$t/shard-uniq") distinct, $nfiles files"
  for k in 1 2 3; do [ -s "$t/shard$k.jsonl" ] || bad "shard $k is empty"; done
  [ "$(cat "$t"/shard?.jsonl | grep -c '"status":"deferred"')" -eq 8 ] && ok "shards defer the 8 DICOMDIRs" || bad "deferred: $(cat "$t"/shard?.jsonl | grep -c deferred)"
  expect 5 "final run without --shard" "$enc" --key-file "$t/key" --recurse --report "$t/final.jsonl" "$t/in" "$t/sh"
  [ "$(count "$t/final.jsonl" encrypted)" -eq 0 ] && [ "$(count "$t/final.jsonl" dicomdir)" -eq 8 ] && ok "the final run only writes the DICOMDIRs" || bad "final run: $(count "$t/final.jsonl" encrypted) encrypted, $(count "$t/final.jsonl" dicomdir) DICOMDIRs"
  expect 0 "decrypt the sharded output" "$dec" --key-file "$t/key" --recurse "$t/sh" "$t/shdec"
  if /usr/bin/python3 "$here/batch_compare.py" "$t/in" "$t/sh" "$t/shdec" --missing broken/truncated.dcm broken/unreadable >"$t/cmp" 2>/dev/null; then
    ok "sharded round trip: $(tail -1 "$t/cmp")"
  else
    bad "sharded round trip: $(head -5 "$t/cmp")"
  fi
else
  bad "GNU parallel is not installed (scripts/install-deps.sh installs it)"
fi

# Passphrase: one scrypt for the run, files still decrypt one by one.
mkdir -p "$t/pin" && cp -r "$t/in/dcm_qa_stc_test_session/ax" "$t/pin/"
export DCMC_TEST_PASS="correct horse battery staple"
expect 0 "encrypt a tree with a passphrase" "$enc" --passphrase-env DCMC_TEST_PASS --recurse "$t/pin" "$t/penc"
expect 0 "decrypt it" "$dec" --passphrase-env DCMC_TEST_PASS --recurse "$t/penc" "$t/pdec"
expect 0 "rerun with the passphrase: verifies" "$enc" --passphrase-env DCMC_TEST_PASS --recurse --report "$t/p.jsonl" "$t/pin" "$t/penc"
[ "$(count "$t/p.jsonl" skipped)" -eq 4 ] && ok "passphrase outputs verify on rerun" || bad "passphrase rerun: $(cat "$t/p.jsonl" | head -2)"
one=$(find "$t/penc" -type f | head -1)
expect 0 "one file of the batch decrypts alone" "$dec" --passphrase-env DCMC_TEST_PASS "$one" "$t/one.dcm"
expect 5 "a wrong passphrase fails every file" env DCMC_TEST_PASS=wrong "$dec" --passphrase-env DCMC_TEST_PASS --recurse "$t/penc" "$t/pbad"
[ "$(find "$t/pbad" -type f | wc -l)" -eq 0 ] && ok "nothing written with a wrong passphrase" || bad "files written with a wrong passphrase"

# On a terminal, a progress bar (script(1) provides one).
if command -v script >/dev/null; then
  script -qec "'$enc' --key-file '$t/key' --recurse '$t/pin' '$t/ptty'" "$t/tty.log" >/dev/null 2>&1
  tr '\r' '\n' <"$t/tty.log" | grep -q '^.*\[#*-*\] [0-9]*/4 files .* MB .* files/s .* MB/s  ETA' && ok "progress bar on a terminal" || bad "no progress bar: $(tr '\r' '\n' <"$t/tty.log" | tail -3)"
fi

# A full output disk (a 3 MB tmpfs, where we may mount one): the batch stops with exit 4 instead
# of failing file after file, leaves no partial file, and completes once there is room.
mkdir -p "$t/full"
if mount -t tmpfs -o size=3m tmpfs "$t/full" 2>/dev/null; then
  expect 4 "output disk full: stop" "$enc" --key-file "$t/key" --recurse -j 2 --report "$t/full.jsonl" "$t/in" "$t/full/out"
  grep -q "output file system is full" "$t/err" && ok "says the disk is full" || bad "disk full message: $(tail -1 "$t/err")"
  [ "$(wc -l <"$t/full.jsonl")" -lt "$nfiles" ] && ok "stopped early ($(wc -l <"$t/full.jsonl") of $nfiles files tried)" || bad "did not stop early"
  no_temps "$t/full" "disk full"
  mount -o remount,size=50m "$t/full"
  expect 5 "after freeing space the same command completes" "$enc" --key-file "$t/key" --recurse -j 2 --report "$t/full2.jsonl" "$t/in" "$t/full/out"
  [ "$(count "$t/full2.jsonl" failed)" -eq 2 ] && [ "$(find "$t/full/out" -type f | wc -l)" -eq "$((nfiles - 2))" ] && ok "all outputs there after the disk-full stop" || bad "after disk full: $(count "$t/full2.jsonl" failed) failed, $(find "$t/full/out" -type f | wc -l) outputs"
  umount "$t/full"
else
  ok "(disk-full case skipped: cannot mount a tmpfs here)"
fi

# Interruptions: a larger tree (the MR session six times), -j 1 so that a run lasts seconds.
mkdir -p "$t/big"
for i in 1 2 3 4 5 6; do cp -r "$t/in/dcm_qa_stc_test_session" "$t/big/s$i"; done
nbig=$(find "$t/big" -type f | wc -l)
for sig in KILL INT; do
  out="$t/big-$sig"
  "$enc" --key-file "$t/key" --recurse -j 1 -q "$t/big" "$out" & pid=$!
  sleep 1.5
  kill -s "$sig" "$pid" 2>/dev/null
  wait "$pid"; rc=$?
  done1=$(find "$out" -type f ! -name '*.dcmcrypt-*' | wc -l)
  left=$(find "$out" -name '*.dcmcrypt-*' | wc -l)
  if [ "$sig" = INT ]; then
    [ "$rc" -eq 130 ] && ok "SIGINT: exit 130 after $done1 of $nbig files" || bad "SIGINT: exit $rc"
    no_temps "$out" "SIGINT"
  else
    ok "SIGKILL after $done1 of $nbig files ($left temporary left)"
  fi
  [ "$done1" -lt "$nbig" ] || bad "$sig came too late to interrupt anything"
  expect 0 "after SIG$sig the same command completes" "$enc" --key-file "$t/key" --recurse -j 1 --report "$t/r-$sig.jsonl" "$t/big" "$out"
  if [ "$left" -gt 0 ]; then
    grep -q "removed $left temporary file" "$t/err" && ok "SIG$sig: the rerun removed the $left temporary file(s)" || bad "SIG$sig: $left temporary file(s) left, the rerun said: $(head -2 "$t/err")"
  fi
  no_temps "$out" "after SIG$sig and rerun"
  [ "$(find "$out" -type f | wc -l)" -eq "$nbig" ] && ok "SIG$sig: all $nbig outputs there" || bad "SIG$sig: $(find "$out" -type f | wc -l) of $nbig outputs"
  [ "$(count "$t/r-$sig.jsonl" skipped)" -ge "$done1" ] && ok "SIG$sig: the $done1 finished files were skipped" || bad "SIG$sig: $(count "$t/r-$sig.jsonl" skipped) skipped, $done1 were done"
  expect 0 "SIG$sig: every output verifies (decrypts)" "$dec" --key-file "$t/key" --recurse -q --report "$t/d-$sig.jsonl" "$out" "$out.dec"
  [ "$(count "$t/d-$sig.jsonl" decrypted)" -eq "$nbig" ] && ok "SIG$sig: $nbig decrypted" || bad "SIG$sig: $(count "$t/d-$sig.jsonl" decrypted) decrypted"
done

if [ "$fails" -eq 0 ]; then echo "batch: all passed"; exit 0; fi
echo "batch: $fails failed"
exit 1

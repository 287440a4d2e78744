#!/bin/sh
# Batch conversion of a study tree (dcmencrypt/dcmdecrypt --recurse), as a PACS administrator
# would run it: the bundled study tree plus a truncated object, an unreadable entry and a text
# file encrypts and decrypts back to the original (judged by pydicom, GDCM and dcmdump in
# batch_compare.py); the report names every file and its reason; a rerun skips what is done and
# redoes what no longer verifies; shards run under GNU parallel cover the tree exactly once;
# SIGKILL and SIGINT in the middle of a run leave no temporary or partial file, and the same
# command then completes the job, as it does after the output disk filled up; stale fallback
# temporaries of dead runs are removed, a live run's kept; nothing is ever written through a link
# below dir-out, links in dir-in are followed (each directory once); outputs keep the source's
# permission bits; an unwritable dir-out stops at once; passphrases work with one scrypt per salt,
# different salts derived side by side, within --scrypt-max-mib.
# Usage: batch_test.sh BINDIR SAMPLEDIR
set -u
bin=$1
samples=$2
here=$(cd "$(dirname "$0")" && pwd)
prefix=dcmc-batch
. "$(dirname "$0")/testlib.sh"
trap 'umount "$t/full" 2>/dev/null; umount "$t/rofs" 2>/dev/null; rm -rf "$t"' EXIT
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
grep -F 'TINY_ALPHA/PT000000/ST000000/SE000000/IM000000",' "$t/enc.jsonl" | grep -q '"status":"protected","reason":"no pixel data: header protected"' && ok "an object without pixel data gets its header protected" || bad "no-pixel object: $(grep -F IM000000 "$t/enc.jsonl")"
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
    # Temporaries have no name until complete (O_TMPFILE): SIGKILL leaves none.
    [ "$left" -eq 0 ] && ok "SIGKILL after $done1 of $nbig files: no temporary left" || bad "SIGKILL after $done1 of $nbig files: $left temporary file(s) left"
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

# A second signal does not wait for the files in progress.
out="$t/big-INT2"
"$enc" --key-file "$t/key" --recurse -j 1 -q "$t/big" "$out" & pid=$!
sleep 1.5; kill -INT "$pid" 2>/dev/null; sleep 0.1; kill -INT "$pid" 2>/dev/null
wait "$pid"; rc=$?
[ "$rc" -eq 130 ] && ok "two SIGINTs: exit 130 at once" || bad "two SIGINTs: exit $rc"
no_temps "$out" "two SIGINTs"

ax="$t/in/dcm_qa_stc_test_session/ax"
first=$(ls "$ax/axasc35" | head -1)
dead=$(sh -c 'echo $$')
while kill -0 "$dead" 2>/dev/null; do dead=$(sh -c 'echo $$'); done

# Fallback temporaries (OUT.dcmcrypt-PID-XXXXXX, where O_TMPFILE or /proc is missing) that a dead
# run left are removed at the start, DCMTK's ".tmp" of a DICOMDIR's too; a live run's stay.
sd="$t/sd/out/ax/axasc35"
mkdir -p "$sd"
for f in "$sd/$first.dcmcrypt-$dead-AbC123" "$sd/$first.dcmcrypt-$$-XyZ789" "$t/sd/out/DICOMDIR.dcmcrypt-$dead-QwE456.tmp"; do
  printf 'partial' >"$f"
done
expect 0 "encrypt over stale temporaries" "$enc" --key-file "$t/key" --recurse "$t/pin" "$t/sd/out"
grep -q "removed 2 temporary file" "$t/err" && ok "the dead run's 2 temporaries removed" || bad "stale temporaries: $(head -2 "$t/err")"
[ "$(find "$t/sd/out" -name '*.dcmcrypt-*')" = "$sd/$first.dcmcrypt-$$-XyZ789" ] && ok "the live run's temporary kept" || bad "temporaries now: $(find "$t/sd/out" -name '*.dcmcrypt-*')"
if [ "$(id -u)" -eq 0 ] && unshare -m sh -c 'mount -t tmpfs none /proc/$$/fd' 2>/dev/null; then
  # Without /proc/self/fd: named temporaries throughout, DICOMDIRs included.
  # The process's own /proc/PID/fd hidden (the shell's PID is the tool's after exec): no
  # /proc/self/fd/N to write through. (All of /proc would also blind the sanitizers of an ASan build.)
  hide_proc='mount -t tmpfs none /proc/$$/fd && exec "$@"'
  expect 0 "without /proc/self/fd: a tree with DICOMDIRs" unshare -m sh -c "$hide_proc" sh "$enc" --key-file "$t/key" --recurse -j 2 --report "$t/np.jsonl" "$samples/study-tree/pydicom-dicomdirtests" "$t/npout"
  [ "$(count "$t/np.jsonl" dicomdir)" -eq 8 ] && ok "without /proc/self/fd: 8 DICOMDIRs rebuilt" || bad "without /proc/self/fd: $(count "$t/np.jsonl" dicomdir) DICOMDIRs"
  no_temps "$t/npout" "without /proc"
  expect 0 "without /proc/self/fd: the tree decrypts" "$dec" --key-file "$t/key" --recurse "$t/npout" "$t/npdec"
else
  ok "(the named fallback is tested only as root with unshare)"
fi

# Links below dir-out are never followed: a link where an output directory goes fails that file,
# with the reason, and nothing is written where it points; a link where an output goes is
# replaced by the output (its target untouched), even when it points to the right bytes.
lt="$t/lt"
mkdir -p "$lt/in/series" "$lt/in/notes" "$lt/in/docs" "$lt/out/docs" "$t/elsewhere"
cp "$ax/axasc35/$first" "$lt/in/series/"
echo "notes" >"$lt/in/notes/README.txt"
echo "a" >"$lt/in/docs/a.txt"
echo "b" >"$lt/in/docs/b.txt"
echo "victim" >"$t/victim"
ln -s "$t/elsewhere" "$lt/out/notes"
ln -s "$t/victim" "$lt/out/docs/a.txt"
ln -s "$lt/in/docs/b.txt" "$lt/out/docs/b.txt"
expect 5 "dir-out with links in it" "$enc" --key-file "$t/key" --recurse --report "$t/lt.jsonl" "$lt/in" "$lt/out"
line=$(grep -F '"path":"notes/README.txt",' "$t/lt.jsonl")
case "$line" in
  *'"status":"failed","reason":"'*'/notes is a symbolic link: not followed"'*) ok "a link to a directory in dir-out: that file fails ($(echo "$line" | sed 's/.*"reason":"\([^"]*\)".*/\1/'))" ;;
  *) bad "link in dir-out: $line" ;;
esac
[ -z "$(ls -A "$t/elsewhere")" ] && ok "nothing written through the link" || bad "written outside dir-out: $(ls -A "$t/elsewhere")"
for f in a b; do
  if [ ! -L "$lt/out/docs/$f.txt" ] && cmp -s "$lt/in/docs/$f.txt" "$lt/out/docs/$f.txt"; then ok "docs/$f.txt: the link at the output's name replaced by the copy"; else bad "docs/$f.txt: $(ls -l "$lt/out/docs/$f.txt")"; fi
done
[ "$(cat "$t/victim")" = victim ] && [ "$(cat "$lt/in/docs/b.txt")" = b ] && ok "the links' targets untouched" || bad "a link's target was written"
[ "$(status_of "$t/lt.jsonl" series/$first)" = encrypted ] && ok "the rest converted" || bad "series: $(status_of "$t/lt.jsonl" series/$first)"

# Links in dir-in are followed, to files and to directories (as find -L), each directory once: a
# folder of links to series converts them all; a second link or a loop is reported, not redone.
lk="$t/lk"
mkdir -p "$lk/in/real"
ln -s "$ax/axasc35" "$lk/in/s1"
ln -s "$ax/axdesc35" "$lk/in/s2"
ln -s "$ax/axasc35" "$lk/in/s1-again"
ln -s .. "$lk/in/real/up"
ln -s "$lk/out" "$lk/in/to-out"
cp "$t/in/notes/README.txt" "$lk/in/real/"
expect 0 "a folder of links to series directories" "$enc" --key-file "$t/key" --recurse --report "$t/lk.jsonl" "$lk/in" "$lk/out"
[ "$(count "$t/lk.jsonl" encrypted)" -eq 4 ] && [ "$(find "$lk/out" -type f | wc -l)" -eq 5 ] && ok "every file behind the links converted (4 encrypted, 1 copied)" || bad "links: $(count "$t/lk.jsonl" encrypted) encrypted, $(find "$lk/out" -type f | wc -l) outputs"
grep -F '"path":"s1-again",' "$t/lk.jsonl" | grep -q '"status":"skipped","reason":"directory already walked as s1 (a loop or a second link)' && ok "a second link to a directory: skipped, with the reason" || bad "second link: $(grep -F s1-again "$t/lk.jsonl")"
grep -F '"path":"real/up",' "$t/lk.jsonl" | grep -q '"status":"skipped","reason":"directory already walked as the top of dir-in' && ok "a loop: skipped, with the reason" || bad "loop: $(grep -F real/up "$t/lk.jsonl")"
grep -F '"path":"to-out",' "$t/lk.jsonl" | grep -q '"status":"skipped","reason":"the output directory' && ok "a link to dir-out: not walked" || bad "link to dir-out: $(grep -F to-out "$t/lk.jsonl")"

# Modes: an output gets the permission bits of the file reached (through links) less the umask,
# a new output directory those of its source directory.
md="$t/md"
mkdir -p "$md/in/sub" "$md/in/private" "$md/src"
cp "$ax/axasc35/$first" "$md/src/scan" && chmod 600 "$md/src/scan"
ln -s "$md/src/scan" "$md/in/sub/linked"
echo text >"$md/in/sub/notes.txt" && chmod 640 "$md/in/sub/notes.txt"
echo text >"$md/in/private/p.txt" && chmod 644 "$md/in/private/p.txt"
chmod 750 "$md/in/sub" && chmod 700 "$md/in/private"
umasked() { m=$1; shift; sh -c 'umask "$0" && exec "$@"' "$m" "$@"; }
expect 0 "modes, umask 022" umasked 022 "$enc" --key-file "$t/key" --recurse "$md/in" "$md/out"
modes=$(cd "$md/out" && stat -c '%n=%a' sub sub/linked sub/notes.txt private private/p.txt | paste -sd ' ')
[ "$modes" = "sub=750 sub/linked=600 sub/notes.txt=640 private=700 private/p.txt=644" ] && ok "umask 022: $modes" || bad "umask 022: $modes"
expect 0 "modes, umask 077" umasked 077 "$dec" --key-file "$t/key" --recurse "$md/out" "$md/dec"
modes=$(cd "$md/dec" && stat -c '%n=%a' sub sub/linked sub/notes.txt private private/p.txt | paste -sd ' ')
[ "$modes" = "sub=700 sub/linked=600 sub/notes.txt=600 private=700 private/p.txt=600" ] && ok "umask 077: $modes" || bad "umask 077: $modes"

# An unwritable dir-out (read-only file system; as root, modes do not stop us) fails at once with
# exit 4 (output not written), before any file is tried.
mkdir -p "$t/rofs"
if [ "$(id -u)" -ne 0 ]; then
  chmod 555 "$t/rofs" && ro=yes
elif mount -t tmpfs -o ro,size=1m tmpfs "$t/rofs" 2>/dev/null; then
  ro=yes
else
  ro=no
fi
if [ "$ro" = yes ]; then
  expect 4 "read-only dir-out: exit 4 at once" "$enc" --key-file "$t/key" --recurse --report "$t/ro.jsonl" "$t/pin" "$t/rofs"
  grep -q "cannot write in $t/rofs" "$t/err" && ok "says why: $(tail -1 "$t/err")" || bad "read-only dir-out: $(tail -2 "$t/err")"
  [ ! -s "$t/ro.jsonl" ] && ok "no file was tried" || bad "files tried: $(wc -l <"$t/ro.jsonl")"
  umount "$t/rofs" 2>/dev/null
else
  ok "(read-only dir-out skipped: cannot mount a read-only tmpfs here)"
fi

# Passphrases: files encrypted one by one have a salt each; decrypting them derives each salt once,
# two at a time with -j 2 (outside the lock that hands out files), and gives what dcmdecrypt
# gives for each file alone. A batch-encrypted tree has one salt: one derivation for -j 2. Header
# costs above --scrypt-max-mib are refused before any derivation.
ps="$t/ps"
mkdir -p "$ps/in" "$ps/alone"
for f in "$ax"/*/*; do
  "$enc" -q --passphrase-env DCMC_TEST_PASS "$f" "$ps/in/${f##*/}"
done
expect 0 "4 files, 4 salts: decrypt with -j 2" "$dec" --passphrase-env DCMC_TEST_PASS --recurse -v -j 2 --threads 2 --report "$t/ps.jsonl" "$ps/in" "$ps/out"
grep -q "4 key derivation(s), at most 2 at once" "$t/err" && ok "4 salts: $(grep -o '4 key derivation.*' "$t/err")" || bad "4 salts: $(grep 'key derivation' "$t/err")"
[ "$(count "$t/ps.jsonl" decrypted)" -eq 4 ] && ok "4 salts: 4 decrypted" || bad "4 salts: $(count "$t/ps.jsonl" decrypted) decrypted"
same=0
for f in "$ps/in"/*; do
  "$dec" -q --passphrase-env DCMC_TEST_PASS "$f" "$ps/alone/${f##*/}" && cmp -s "$ps/alone/${f##*/}" "$ps/out/${f##*/}" && same=$((same + 1))
done
[ "$same" -eq 4 ] && ok "4 salts: each output as dcmdecrypt gives it alone" || bad "4 salts: $same of 4 outputs as dcmdecrypt alone"
expect 0 "one salt: decrypt with -j 2" "$dec" --passphrase-env DCMC_TEST_PASS --recurse -v -j 2 --threads 2 "$t/penc" "$ps/one"
grep -q "1 key derivation(s)" "$t/err" && ok "one salt: one derivation" || bad "one salt: $(grep 'key derivation' "$t/err")"
expect 5 "--scrypt-max-mib 64 refuses 128 MiB headers" "$dec" --passphrase-env DCMC_TEST_PASS --recurse -v --scrypt-max-mib 64 --report "$t/psm.jsonl" "$ps/in" "$ps/max"
[ "$(count "$t/psm.jsonl" failed)" -eq 4 ] && [ "$(grep -c 'N=2^17 r=8 p=1 cost 128 MiB, above the limit of 64 MiB: if you trust the file, raise --scrypt-max-mib' "$t/psm.jsonl")" -eq 4 ] && ok "every file refused, the reason names the cost and the option" || bad "--scrypt-max-mib: $(head -1 "$t/psm.jsonl")"
grep -q "0 key derivation(s)" "$t/err" && [ "$(find "$ps/max" -type f | wc -l)" -eq 0 ] && ok "no derivation, no output" || bad "--scrypt-max-mib: $(grep 'key derivation' "$t/err"), $(find "$ps/max" -type f | wc -l) outputs"

if [ "$fails" -eq 0 ]; then echo "batch: all passed"; exit 0; fi
echo "batch: $fails failed"
exit 1

#!/bin/sh
# The command-line tools as a script would use them: exit codes 0-4, keys from files, the
# environment and --new-key, no secret on the command line, refusing to overwrite the input,
# unwritable outputs, and never a temporary or half-written file left behind.
# Usage: cli_test.sh BINDIR SAMPLEDIR
set -u
bin=$1
samples=$2
prefix=dcmc-cli
. "$(dirname "$0")/testlib.sh"
no_leftovers() {
  if ls "$t" | grep -q 'dcmcrypt-'; then bad "temporary files left: $(ls "$t" | grep dcmcrypt-)"; else ok "no temporary files left"; fi
}

ct=$samples/pydicom_CT_small_128x128.dcm
openssl rand -hex 32 >"$t/key" 2>/dev/null || head -c 32 /dev/urandom >"$t/key"
openssl rand -hex 32 >"$t/key2" 2>/dev/null || head -c 32 /dev/urandom >"$t/key2"

expect 0 "help" "$bin/dcmencrypt" --help
# --help is made from the option table the parser reads: each tool lists the options it takes
# (and only those), and the exit status of an internal error.
for o in --key-file --new-key --passphrase-file --passphrase-env --scrypt-max-mib --max-expansion \
         --preset --no-standard-layer --threads "-r, --recurse" "-j, --jobs" --report --shard \
         "-v, --verbose" "-q, --quiet" "-d, --debug" "-h, --help" --version; do
  grep -q -e "^ *$o" "$t/out" || bad "dcmencrypt --help does not list $o"
done
grep -q "70 internal" "$t/out" && ok "dcmencrypt --help lists its options and exit 70" || bad "help: $(cat "$t/out")"
expect 0 "dcmdecrypt help" "$bin/dcmdecrypt" --help
grep -q -e "--new-key\|--preset\|--no-standard-layer" "$t/out" && bad "dcmdecrypt --help lists an encryption option" \
  || ok "dcmdecrypt --help has no encryption-only option"
expect 1 "dcmdecrypt refuses an encryption option" "$bin/dcmdecrypt" --preset resnet-cm --key-file "$t/key" "$ct" "$t/d.dcm"
grep -q "unknown option '--preset'" "$t/err" && ok "... as an unknown option" || bad "dcmdecrypt --preset: $(cat "$t/err")"
expect 1 "a number out of range" "$bin/dcmencrypt" --jobs 0 --recurse "$t" "$t/o"
grep -q -e "--jobs needs a number from 1 to 256, not '0'" "$t/err" && ok "... says the range" || bad "--jobs 0: $(cat "$t/err")"
expect 1 "an option without its value" "$bin/dcmencrypt" "$ct" "$t/e.dcm" --key-file
grep -q -e "option --key-file needs a value" "$t/err" && ok "... says so" || bad "--key-file alone: $(cat "$t/err")"
expect 0 "version" "$bin/dcmdecrypt" --version
grep -q "DCMTK" "$t/out" && grep -q "SIMD path" "$t/out" && ok "version names DCMTK and the SIMD path" || bad "version output: $(cat "$t/out")"
# OpenMP workers sleep at barriers (apps/runtime.c): started without OMP_WAIT_POLICY, the tool
# starts itself again with it PASSIVE, and libgomp, which prints its settings at each start, ends
# with a spin count of 0; a policy the user chose is kept.
if grep -q "OpenMP [0-9]" "$t/out"; then
  env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT OMP_DISPLAY_ENV=VERBOSE "$bin/dcmdecrypt" --version >/dev/null 2>"$t/omp"
  [ "$(grep "GOMP_SPINCOUNT" "$t/omp" | tail -1 | tr -d " ")" = "GOMP_SPINCOUNT='0'" ] &&
    [ "$(grep "OMP_WAIT_POLICY" "$t/omp" | tail -1 | tr -d " ")" = "OMP_WAIT_POLICY='PASSIVE'" ] &&
    ok "OpenMP workers wait passively (spin count 0)" || bad "OpenMP settings: $(grep -e SPIN -e WAIT "$t/omp" | tr '\n' ' ')"
  OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=VERBOSE "$bin/dcmdecrypt" --version >/dev/null 2>"$t/omp"
  [ "$(grep -c "OPENMP DISPLAY ENVIRONMENT BEGIN" "$t/omp")" -eq 1 ] &&
    [ "$(grep "OMP_WAIT_POLICY" "$t/omp" | tail -1 | tr -d " ")" = "OMP_WAIT_POLICY='ACTIVE'" ] &&
    ok "... unless the user set OMP_WAIT_POLICY (kept, no second start)" || bad "OMP_WAIT_POLICY=active: $(grep -e SPIN -e WAIT "$t/omp" | tr '\n' ' ')"
fi
expect 1 "no arguments" "$bin/dcmencrypt"
expect 1 "unknown option" "$bin/dcmencrypt" --frobnicate --key-file "$t/key" "$ct" "$t/e.dcm"
expect 1 "key on the command line refused" "$bin/dcmencrypt" --key 0123 "$ct" "$t/e.dcm"
expect 1 "two key sources" "$bin/dcmencrypt" --key-file "$t/key" --passphrase-env X "$ct" "$t/e.dcm"
expect 1 "bad preset" "$bin/dcmencrypt" --preset vgg --key-file "$t/key" "$ct" "$t/e.dcm"
# The paper's trained system (dcmcryptstat's paper-* schemes) is lossy: never a DICOM object.
for p in paper-at-resnet-cm paper-resnet-cm; do
  expect 1 "$p refused" "$bin/dcmencrypt" --preset $p --key-file "$t/key" "$ct" "$t/e.dcm"
  grep -q "a lossy research scheme never produces a DICOM object" "$t/err" && [ ! -e "$t/e.dcm" ] &&
    ok "... saying why, nothing written" || bad "--preset $p: $(cat "$t/err")"
done
printf 'short' >"$t/badkey"
expect 1 "malformed key file" "$bin/dcmencrypt" --key-file "$t/badkey" "$ct" "$t/e.dcm"
expect 1 "no key and no terminal" "$bin/dcmencrypt" "$ct" "$t/e.dcm" </dev/null
expect 2 "missing input" "$bin/dcmencrypt" --key-file "$t/key" "$t/nothere.dcm" "$t/e.dcm"
printf 'not dicom' >"$t/junk.dcm"
expect 2 "not DICOM" "$bin/dcmencrypt" --key-file "$t/key" "$t/junk.dcm" "$t/e.dcm"
expect 2 "truncated" "$bin/dcmencrypt" --key-file "$t/key" "$samples/pydicom_MR_truncated.dcm" "$t/e.dcm"
[ -e "$t/e.dcm" ] && bad "output written for refused input" || ok "no output for refused input"

expect 0 "encrypt" "$bin/dcmencrypt" -q --key-file "$t/key" "$ct" "$t/e.dcm"
[ -s "$t/out" ] || [ -s "$t/err" ] && bad "-q printed something" || ok "-q is quiet"
expect 0 "encrypt, verbose" "$bin/dcmencrypt" -v --key-file "$t/key" "$ct" "$t/e2.dcm"
grep -q "128x128" "$t/err" && ok "-v says what was done" || bad "-v output: $(cat "$t/err")"
expect 2 "encrypt twice" "$bin/dcmencrypt" --key-file "$t/key" "$t/e.dcm" "$t/ee.dcm"
expect 3 "wrong key" "$bin/dcmdecrypt" --key-file "$t/key2" "$t/e.dcm" "$t/d.dcm"
[ -e "$t/d.dcm" ] && bad "output written with a wrong key" || ok "nothing written with a wrong key"
expect 2 "decrypt a plain object" "$bin/dcmdecrypt" --key-file "$t/key" "$ct" "$t/d.dcm"
expect 0 "decrypt" "$bin/dcmdecrypt" --key-file "$t/key" "$t/e.dcm" "$t/d.dcm"
expect 1 "output equal to input" "$bin/dcmdecrypt" --key-file "$t/key" "$t/e.dcm" "$t/e.dcm"
cmp -s "$t/e.dcm" "$t/e2.dcm" && bad "two encryptions are identical (nonce reused?)" || ok "fresh nonce per encryption"

# Tampering: one bit in the middle of the pixel data.
python3 - "$t/e.dcm" "$t/tampered.dcm" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
at = b.rfind(b"\xe0\x7f\x10\x00")
b[at + 12 + (len(b) - at - 12) // 2] ^= 1
open(sys.argv[2], "wb").write(b)
EOF
expect 3 "tampered pixels" "$bin/dcmdecrypt" --key-file "$t/key" "$t/tampered.dcm" "$t/d2.dcm"
[ -e "$t/d2.dcm" ] && bad "output written for a tampered object" || ok "nothing written for a tampered object"

# Keys from the environment and from --new-key.
DCMC_TEST_PASS='correct horse battery staple' expect 0 "passphrase from the environment" \
  "$bin/dcmencrypt" --passphrase-env DCMC_TEST_PASS "$ct" "$t/p.dcm"
DCMC_TEST_PASS='correct horse battery staplE' expect 3 "wrong passphrase" \
  "$bin/dcmdecrypt" --passphrase-env DCMC_TEST_PASS "$t/p.dcm" "$t/pd.dcm"
printf 'correct horse battery staple\n' >"$t/pass"
expect 0 "passphrase from a file" "$bin/dcmdecrypt" --passphrase-file "$t/pass" "$t/p.dcm" "$t/pd.dcm"
cmp -s "$t/pd.dcm" "$t/d.dcm" && ok "passphrase and key decryptions agree" || bad "passphrase decryption differs"
expect 0 "new key" "$bin/dcmencrypt" --new-key "$t/new.key" "$ct" "$t/n.dcm"
[ "$(stat -c %a "$t/new.key")" = 600 ] && ok "new key file has mode 0600" || bad "new key mode $(stat -c %a "$t/new.key")"
expect 4 "new key refuses to overwrite" "$bin/dcmencrypt" --new-key "$t/new.key" "$ct" "$t/n2.dcm"
expect 0 "decrypt with the new key" "$bin/dcmdecrypt" --key-file "$t/new.key" "$t/n.dcm" "$t/nd.dcm"

# Nothing secret is printed, at any log level.
"$bin/dcmencrypt" -d --key-file "$t/key" "$ct" "$t/s.dcm" >"$t/log" 2>&1
"$bin/dcmdecrypt" -d --key-file "$t/key" "$t/s.dcm" "$t/sd.dcm" >>"$t/log" 2>&1
"$bin/dcmdecrypt" -d --key-file "$t/key2" "$t/s.dcm" "$t/sd2.dcm" >>"$t/log" 2>&1
DCMC_TEST_PASS='correct horse battery staple' "$bin/dcmdecrypt" -d --passphrase-env DCMC_TEST_PASS "$t/p.dcm" "$t/pd2.dcm" >>"$t/log" 2>&1
if grep -qi "$(head -c 64 "$t/key")" "$t/log" || grep -qi "$(head -c 64 "$t/key2")" "$t/log" || grep -q "horse" "$t/log"; then
  bad "a key or passphrase appears in the output"
else
  ok "no key or passphrase in -d output"
fi

# Outputs that cannot be written.
mkdir "$t/ro" && chmod 555 "$t/ro"
if [ "$(id -u)" -ne 0 ]; then
  expect 4 "read-only output directory" "$bin/dcmencrypt" --key-file "$t/key" "$ct" "$t/ro/e.dcm"
fi
expect 4 "missing output directory" "$bin/dcmencrypt" --key-file "$t/key" "$ct" "$t/no/such/dir/e.dcm"
expect 4 "output is a directory" "$bin/dcmencrypt" --key-file "$t/key" "$ct" "$t/ro"
no_leftovers

# SIGKILL while the output is being written leaves nothing at all beside it: temporaries have no
# name until complete (O_TMPFILE). The object is large where it costs no cipher time (a 96 MiB
# private element beside a 128x128 image), so the write lasts long enough to be caught: killw.py
# kills the tool as soon as a file it holds open in the output directory has data.
cat >"$t/killw.py" <<'EOF'
import os, signal, subprocess, sys, time
outdir, cmd = os.path.realpath(sys.argv[1]), sys.argv[2:]
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
caught, end = None, time.time() + 600
while p.poll() is None and time.time() < end and not caught:
    try:
        fds = os.listdir(f"/proc/{p.pid}/fd")
    except OSError:
        break
    for fd in fds:
        try:
            link = f"/proc/{p.pid}/fd/{fd}"
            if os.readlink(link).startswith(outdir + "/") and os.stat(link).st_size > 0:
                caught = (os.readlink(link), os.stat(link).st_size)
                break
        except OSError:
            pass
    if caught:
        p.send_signal(signal.SIGKILL)
    else:
        time.sleep(0.0005)
p.wait()
print(f"{caught[1]} bytes into {os.path.basename(caught[0])}" if caught else f"exit {p.returncode}")
sys.exit(0 if caught else 1)
EOF
/usr/bin/python3 - "$ct" "$t/large.dcm" <<'EOF'
import sys, pydicom
ds = pydicom.dcmread(sys.argv[1])
ds.private_block(0x0009, "DCMC TEST BULK", create=True).add_new(0x10, "OB", bytes(range(256)) * (96 * 4096))
ds.save_as(sys.argv[2])
EOF
only() { # only DIR NAME EXPECTED...: ls -A DIR lists exactly EXPECTED
  d=$1 n=$2; shift 2
  got=$(ls -A "$d" | paste -sd ' ') want="$*"
  if [ "$got" = "$want" ]; then ok "$n: ${want:-nothing} in the directory"; else bad "$n: '$got' in the directory, wanted '$want'"; fi
}
expect 0 "encrypt the large object" "$bin/dcmencrypt" --key-file "$t/key" "$t/large.dcm" "$t/large.enc.dcm"
for tool in dcmencrypt dcmdecrypt; do
  if [ $tool = dcmencrypt ]; then src=$t/large.dcm; else src=$t/large.enc.dcm; fi
  mkdir -p "$t/kill-$tool"
  if r=$(/usr/bin/python3 "$t/killw.py" "$t/kill-$tool" "$bin/$tool" --key-file "$t/key" "$src" "$t/kill-$tool/out.dcm"); then
    ok "$tool: SIGKILL in the middle of writing ($r)"
  else
    bad "$tool: the write was not caught ($r)"
  fi
  only "$t/kill-$tool" "$tool after SIGKILL"
  expect 0 "$tool: the same command then completes" "$bin/$tool" --key-file "$t/key" "$src" "$t/kill-$tool/out.dcm"
  only "$t/kill-$tool" "$tool after the rerun" out.dcm
done

# Without O_TMPFILE or /proc the temporary is named OUT.dcmcrypt-PID-XXXXXX; a later run removes
# those of OUT whose PID no longer runs, never a live run's (nor those of other outputs).
mkdir -p "$t/stale"
dead=$(sh -c 'echo $$')
while kill -0 "$dead" 2>/dev/null; do dead=$(sh -c 'echo $$'); done
for f in "s.dcm.dcmcrypt-$dead-AbC123" "s.dcm.dcmcrypt-$$-XyZ789" "other.dcm.dcmcrypt-$dead-QwE456"; do
  printf 'partial plaintext' >"$t/stale/$f"
done
expect 0 "encrypt beside stale temporaries" "$bin/dcmencrypt" -v --key-file "$t/key" "$ct" "$t/stale/s.dcm"
only "$t/stale" "dead PID's temporary removed, live PID's and another output's kept" \
  "other.dcm.dcmcrypt-$dead-QwE456" s.dcm "s.dcm.dcmcrypt-$$-XyZ789"
if [ "$(id -u)" -eq 0 ] && unshare -m sh -c 'mount -t tmpfs none /proc/$$/fd' 2>/dev/null; then
  # In a private mount namespace: the named fallback, end to end.
  # The process's own /proc/PID/fd hidden (the shell's PID is the tool's after exec): no
  # /proc/self/fd/N to write through. (All of /proc would also blind the sanitizers of an ASan build.)
  hide_proc='mount -t tmpfs none /proc/$$/fd && exec "$@"'
  noproc() { unshare -m sh -c "$hide_proc" sh "$@"; }
  mkdir -p "$t/np"
  expect 0 "without /proc/self/fd: encrypt" noproc "$bin/dcmencrypt" --key-file "$t/key" "$ct" "$t/np/e.dcm"
  expect 0 "without /proc/self/fd: decrypt" noproc "$bin/dcmdecrypt" --key-file "$t/key" "$t/np/e.dcm" "$t/np/d.dcm"
  cmp -s "$t/np/d.dcm" "$t/d.dcm" && ok "without /proc/self/fd: the same object back" || bad "without /proc/self/fd: decryption differs"
  mkdir -p "$t/np-kill"
  r=$(/usr/bin/python3 "$t/killw.py" "$t/np-kill" unshare -m sh -c "$hide_proc" sh "$bin/dcmdecrypt" --key-file "$t/key" "$t/large.enc.dcm" "$t/np-kill/out.dcm") || bad "without /proc/self/fd: the write was not caught ($r)"
  n=$(ls -A "$t/np-kill" | grep -c '^out\.dcm\.dcmcrypt-[0-9]*-......$')
  [ "$n" -eq 1 ] && ok "without /proc/self/fd: SIGKILL leaves the named temporary ($r)" || bad "without /proc/self/fd, after SIGKILL: $(ls -A "$t/np-kill")"
  expect 0 "without /proc/self/fd: the next run" "$bin/dcmdecrypt" --key-file "$t/key" "$t/large.enc.dcm" "$t/np-kill/out.dcm"
  only "$t/np-kill" "the next run removed the dead run's temporary" out.dcm
else
  ok "(the named fallback is tested only as root with unshare)"
fi

# The output takes the input's permission bits less the umask (as cp): a private input stays private.
cp "$ct" "$t/private.dcm" && chmod 600 "$t/private.dcm"
(umask 022 && "$bin/dcmencrypt" --key-file "$t/key" "$t/private.dcm" "$t/private.enc.dcm") 2>/dev/null
[ "$(stat -c %a "$t/private.enc.dcm" 2>/dev/null)" = 600 ] && ok "a 0600 input gives a 0600 output" || bad "mode of the output of a 0600 input: $(stat -c %a "$t/private.enc.dcm" 2>&1)"
chmod 644 "$t/private.enc.dcm"
(umask 027 && "$bin/dcmdecrypt" --key-file "$t/key" "$t/private.enc.dcm" "$t/private.dec.dcm") 2>/dev/null
[ "$(stat -c %a "$t/private.dec.dcm" 2>/dev/null)" = 640 ] && ok "0644 input, umask 027: 0640 output" || bad "0644 input, umask 027: $(stat -c %a "$t/private.dec.dcm" 2>&1)"

# Ctrl-C at the passphrase prompt (echo off) ends the run and gives the terminal its echo back.
r=$(/usr/bin/python3 - "$bin/dcmencrypt" "$ct" "$t/pty.dcm" <<'EOF'
import os, pty, select, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out, end = b"", time.time() + 20
while b"Passphrase: " not in out and time.time() < end:
    if select.select([fd], [], [], 0.2)[0]:
        out += os.read(fd, 1000)
quiet = not termios.tcgetattr(fd)[3] & termios.ECHO
os.write(fd, b"\x03")
_, st = os.waitpid(pid, 0)
echo = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
print("prompt" if b"Passphrase: " in out else "no-prompt", "quiet" if quiet else "echoing",
      "sig%d" % os.WTERMSIG(st) if os.WIFSIGNALED(st) else "exit%d" % os.WEXITSTATUS(st),
      "echo" if echo else "no-echo")
EOF
)
[ "$r" = "prompt quiet sig2 echo" ] && ok "Ctrl-C at the prompt: stopped, the terminal echoes again" || bad "Ctrl-C at the prompt: $r"
[ -e "$t/pty.dcm" ] && bad "output written after Ctrl-C at the prompt" || ok "no output after Ctrl-C at the prompt"

echo "$fails failed"
[ "$fails" -eq 0 ]

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
expect 0 "version" "$bin/dcmdecrypt" --version
grep -q "DCMTK" "$t/out" && grep -q "SIMD path" "$t/out" && ok "version names DCMTK and the SIMD path" || bad "version output: $(cat "$t/out")"
expect 1 "no arguments" "$bin/dcmencrypt"
expect 1 "unknown option" "$bin/dcmencrypt" --frobnicate --key-file "$t/key" "$ct" "$t/e.dcm"
expect 1 "key on the command line refused" "$bin/dcmencrypt" --key 0123 "$ct" "$t/e.dcm"
expect 1 "two key sources" "$bin/dcmencrypt" --key-file "$t/key" --passphrase-env X "$ct" "$t/e.dcm"
expect 1 "bad preset" "$bin/dcmencrypt" --preset vgg --key-file "$t/key" "$ct" "$t/e.dcm"
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

echo "$fails failed"
[ "$fails" -eq 0 ]

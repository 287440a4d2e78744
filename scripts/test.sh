#!/bin/sh
# The README's second command and CI's: install what is needed, then build twice (optimised and
# -O0 debug), run the default test suite in both, and check that both builds produce the same
# cipher bytes, then once more under AddressSanitizer + UndefinedBehaviorSanitizer.
# Long tests: `ctest --test-dir build -L long`.
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
jobs=$(nproc)

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$jobs" >/dev/null
ctest --test-dir build -L default --output-on-failure -j "$jobs"

cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O0 -g" >/dev/null
cmake --build build-debug -j "$jobs" >/dev/null
ctest --test-dir build-debug -L default --output-on-failure -j "$jobs"

# Same key, nonce and frames through both builds: the digests must be identical.
a=$(./build/bin/dcmcrypt-bench --digest)
b=$(./build-debug/bin/dcmcrypt-bench --digest)
if [ "$a" != "$b" ]; then
  echo "cipher output differs between the optimised and the -O0 build:" >&2
  printf '%s\n---\n%s\n' "$a" "$b" >&2
  exit 1
fi
echo "optimised and -O0 builds give identical cipher output:"
echo "$a"

cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDCMC_SANITIZE=ON >/dev/null
cmake --build build-asan -j "$jobs" >/dev/null
ctest --test-dir build-asan -L default --output-on-failure -j "$jobs"

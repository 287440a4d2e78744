#!/bin/sh
# The README's second command and CI's: install what is needed, check the known-answer vectors
# against their independent generator, build optimised and -O0 (gcc, OpenMP) and run the default
# suite in both (every build with -Werror), run clang-tidy and cppcheck (scripts/lint.sh), build
# with clang without OpenMP, check that all three produce the same cipher bytes, run the suite
# once more under AddressSanitizer + UndefinedBehaviorSanitizer, and fuzz
# the parsers of untrusted input deterministically: the regression corpus, then a fixed seed and
# a fixed number of runs per target (scripts/fuzz.sh; open-ended fuzzing is `ctest -L long`).
# Long tests: `ctest --test-dir build -L long`.
set -eu
cd "$(dirname "$0")/.."
start=$(date +%s)
# Elapsed time at the start of each phase: CI must finish inside 90 minutes, and a log shows
# which phase grew.
phase() { echo "== $1 (at $(( $(date +%s) - start )) s)"; }
./scripts/install-deps.sh
jobs=$(nproc)

# The independent implementation (numpy) still produces the committed known-answer vectors.
/usr/bin/python3 tests/kat/gen/katgen.py --check 2>/dev/null || {
  echo "tests/kat/gen/katgen.py no longer reproduces tests/kat/vectors" >&2; exit 1; }
# ... and the metric reference values the C metrics are tested against (tests/metrics/refs.txt).
/usr/bin/python3 tests/metrics/refgen.py --check || {
  echo "tests/metrics/refgen.py no longer reproduces tests/metrics/refs.txt" >&2; exit 1; }

phase "Release build and default suite"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DDCMC_WERROR=ON >/dev/null
cmake --build build -j "$jobs" >/dev/null
ctest --test-dir build -L default --output-on-failure -j "$jobs"

# Static analysis on the Release tree's compile database: clang-tidy, cppcheck, the size limits
# (docs/lint.md); zero findings.
phase "static analysis"
./scripts/lint.sh build

phase "-O0 build and default suite"
cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O0 -g" -DDCMC_WERROR=ON >/dev/null
cmake --build build-debug -j "$jobs" >/dev/null
ctest --test-dir build-debug -L default --output-on-failure -j "$jobs"

# A third build with another compiler and no OpenMP (clang, -O2, single thread).
phase "clang build"
CC=clang cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=Release -DDCMC_OPENMP=OFF -DDCMC_TESTS=OFF \
  -DDCMC_WERROR=ON >/dev/null
cmake --build build-clang -j "$jobs" >/dev/null

# Same key, nonce and frames through every build: the digests must be identical.
a=$(./build/bin/dcmcrypt-bench --digest)
for other in build-debug build-clang; do
  b=$(./$other/bin/dcmcrypt-bench --digest)
  if [ "$a" != "$b" ]; then
    echo "cipher output differs between build and $other:" >&2
    printf '%s\n---\n%s\n' "$a" "$b" >&2
    exit 1
  fi
done
echo "gcc -O3 + OpenMP, gcc -O0 + OpenMP and clang -O3 without OpenMP give identical cipher output:"
echo "$a"

phase "sanitizer build and default suite"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDCMC_SANITIZE=ON -DDCMC_WERROR=ON >/dev/null
cmake --build build-asan -j "$jobs" >/dev/null
ctest --test-dir build-asan -L default --output-on-failure -j "$jobs"

phase "fuzzing"
./scripts/fuzz.sh
phase "done"

#!/bin/sh
# Build the libFuzzer targets with clang, ASan and UBSan, and run each for a bounded time
# (default 60 s, or $1), seeded with sample-data/dicom, the study tree's DICOMDIRs and objects
# encrypted with the fixed fuzzing key. Exits non-zero if a fuzzer finds a crash, a leak or undefined behaviour.
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-60}
./scripts/install-deps.sh
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDCMC_FUZZ=ON \
  -DDCMC_SANITIZE=ON -DDCMC_OPENMP=OFF -DDCMC_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" >/dev/null
seeds=build-fuzz/seeds
rm -rf "$seeds" && mkdir -p "$seeds/dicom" "$seeds/header"
cp sample-data/dicom/*.dcm tests/fuzz/regressions/* "$seeds/dicom/"  # past findings stay in the corpus
for d in sample-data/study-tree/pydicom-dicomdirtests/DICOMDIR*; do cp "$d" "$seeds/dicom/"; done
printf '4242424242424242424242424242424242424242424242424242424242424242\n' > build-fuzz/fuzz.key
for f in sample-data/dicom/pydicom_CT_small_128x128.dcm sample-data/dicom/pydicom_rtdose_32bit_15frames.dcm \
         sample-data/dicom/highdicom_seg_image_ct_binary_overlap_1bit_8frames.dcm; do
  build-fuzz/bin/dcmencrypt -q --key-file build-fuzz/fuzz.key "$f" "$seeds/dicom/enc-$(basename "$f")" || true
done
/usr/bin/python3 - "$seeds" <<'PY'
import glob, sys
for p in glob.glob(sys.argv[1] + "/dicom/enc-*"):
    b = open(p, "rb").read()
    i = b.find(b"DCMCRYPT\x01\x00\x00\x00")
    if i >= 0:
        open(sys.argv[1] + "/header/" + p.split("/")[-1], "wb").write(b[i:i + 128])
PY
export ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
# Findings go to build-fuzz/findings/ (never into the source tree); any finding fails the run.
mkdir -p build-fuzz/findings
for target in header dicom; do
  extra=""
  [ "$target" = dicom ] && extra="-max_len=1048576 -rss_limit_mb=4096"
  if ! build-fuzz/bin/fuzz_$target -max_total_time="$seconds" -print_final_stats=1 \
       -artifact_prefix=build-fuzz/findings/ $extra "$seeds/$target" > build-fuzz/fuzz_$target.log 2>&1; then
    tail -40 build-fuzz/fuzz_$target.log >&2
    echo "fuzz_$target found a problem: see build-fuzz/findings/ and build-fuzz/fuzz_$target.log" >&2
    exit 1
  fi
  tail -3 build-fuzz/fuzz_$target.log
done
echo "fuzzing: no crash in $seconds s per target"

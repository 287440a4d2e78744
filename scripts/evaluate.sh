#!/bin/sh
# The README's evaluation command: build (if needed) and run dcmcryptstat on the bundled 512x512
# images (chest X-ray, brain MRI, lung CT; 8-bit as in the paper, and the MRI and CT at their
# 16-bit stored values), writing report.md, results.jsonl and the figures to DIR (the paper's
# trained system: DIR/paper/report.md, its rows appended to results.jsonl)
# (default build/evaluation). With --dieharder, also run `dieharder -a` on the chaos keystream
# (about an hour on 2 cores) into DIR/dieharder.txt.
set -eu
cd "$(dirname "$0")/.."
dir=build/evaluation
dieharder=0
for a in "$@"; do
  case "$a" in
    --dieharder) dieharder=1 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) dir=$a ;;
  esac
done
./scripts/install-deps.sh
build=${DCMC_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null
images=""
for f in covid-19-pneumonia-2_512x512_gray8 nema-wg04_MR1_brain_512x512_gray8 \
         nema-wg04_CT1_chest_512x512_gray8 nema-wg04_MR1_brain_512x512_gray16 \
         nema-wg04_CT1_chest_512x512_gray16; do
  # The chest X-ray is CC BY-NC-SA: whoever deleted it from sample-data/ still gets the rest.
  [ -f "sample-data/png/$f.png" ] && images="$images sample-data/png/$f.png"
done
mkdir -p "$dir"
ours=at-resnet-cm,resnet-cm,at-resnet-cm-chaos,resnet-cm-chaos,logistic-xor,aes-256-ctr
# shellcheck disable=SC2086
./$build/bin/dcmcryptstat --runs 20 --schemes $ours -o "$dir" $images
# shellcheck disable=SC2086
./$build/bin/dcmcryptstat --runs 20 --schemes $ours --json $images >"$dir/results.jsonl"
# The paper's trained system as published (research/paper/weights): one run, since its float
# networks take about half a second a pass (docs/evaluation.md, "The paper as published").
paper=paper-at-resnet-cm,paper-resnet-cm
# shellcheck disable=SC2086
./$build/bin/dcmcryptstat --schemes $paper -o "$dir/paper" $images
# shellcheck disable=SC2086
./$build/bin/dcmcryptstat --schemes $paper --json $images >>"$dir/results.jsonl"
if [ "$dieharder" = 1 ]; then
  command -v dieharder >/dev/null || apt-get install -y dieharder >/dev/null
  ./$build/bin/dcmcryptstat --keystream 100000000000 | dieharder -a -g 200 >"$dir/dieharder.txt" || true
  echo "dieharder: $(grep -c PASSED "$dir/dieharder.txt") PASSED, $(grep -c WEAK "$dir/dieharder.txt") WEAK, $(grep -c FAILED "$dir/dieharder.txt") FAILED"
fi
echo "evaluation written to $dir/report.md and $dir/paper/report.md ($(ls "$dir"/*.png "$dir"/paper/*.png | wc -l) figures, results.jsonl)"
grep -E '^\| [a-z0-9-]+ \|.*\| (all|no) \|$' "$dir/report.md" | awk -F'|' '{print $2 "->" $(NF-1)}' | sort | uniq -c

#!/bin/sh
# The README's first command: install what is needed, build, and run the main job on the bundled
# sample data (encrypt and decrypt every sample image, report times and exactness).
set -eu
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" >/dev/null
./build/bin/dcmcrypt-demo --out-dir build/demo sample-data/png/*.png
echo "cipher and decrypted images: build/demo/"
./build/bin/dcmcrypt-bench --frames 5 --bits 16 --threads "$(nproc)"

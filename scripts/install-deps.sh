#!/bin/sh
# Installs every Debian package dcmcrypt needs to build, test and benchmark, on a fresh Debian
# bookworm, as root or through sudo. Safe to run again: it only installs what is missing.
# dcmcryptstat draws its figures with cairo and pango, which need a font at run time: DejaVu.
set -eu

PKGS="build-essential cmake pkg-config clang libclang-rt-14-dev openssl
libdcmtk-dev dcmtk libpng-dev libtiff-dev libcunit1-dev libssl-dev libopenjp2-7-dev
libcairo2-dev libpango1.0-dev fonts-dejavu-core
python3 python3-numpy python3-cryptography python3-pydicom libgdcm-tools dicom3tools parallel time
cppcheck clang-tidy clang-format binutils orthanc orthanc-dicomweb slurm-wlm munge"
# Optional extras: DCMCRYPT_EXTRAS=1 adds the PyTorch reference for the benchmark, dieharder, and
# what research/paper trains and plots with (PyTorch, Pillow, matplotlib).
if [ "${DCMCRYPT_EXTRAS:-0}" = 1 ]; then
  PKGS="$PKGS python3-torch dieharder python3-pil python3-matplotlib"
fi

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
echo "dcmcrypt: installing$missing" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null

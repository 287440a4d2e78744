#!/bin/sh
# install_test.sh BUILD_DIR SOURCE_DIR - the installed tree as a user meets it: `cmake --install`
# into a fresh prefix, check what lands where (headers under include/dcmcrypt/, shared objects
# with their soname exporting only dcmc_* symbols, static archives, the CMake package, the
# pkg-config files, tools, man pages with the release version, the DICOM dictionary, and nothing
# internal), then build tests/consumer/consumer.c against the installed tree only: with CMake
# (shared, then static archives) and with pkg-config, and run each build.
set -eu
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
check() { # check NAME CMD...: CMD must succeed
  name=$1; shift
  if "$@" >"$work/out" 2>&1; then echo "ok   $name"; else
    echo "FAIL $name: $(tail -c 400 "$work/out")"; fails=$((fails + 1)); fi
}
prefix="$work/prefix"
sample="$src/sample-data/dicom/pydicom_CT_small_128x128.dcm"

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
version=$(sed -n 's/^#define DCMC_VERSION_STRING "\(.*\)"$/\1/p' "$build/include/dcmcrypt/version.h")
so=$(sed -n 's/^#define DCMC_SOVERSION "\(.*\)"$/\1/p' "$build/include/dcmcrypt/version.h")
lib="$prefix/lib"
[ -d "$prefix/lib/x86_64-linux-gnu" ] && lib="$prefix/lib/x86_64-linux-gnu"

for f in include/dcmcrypt/dcmcrypt.h include/dcmcrypt/io.h include/dcmcrypt/metrics.h \
         include/dcmcrypt/dicom.h include/dcmcrypt/export.h include/dcmcrypt/version.h \
         bin/dcmencrypt bin/dcmdecrypt bin/dcmcryptstat bin/dcmcrypt-demo bin/dcmcrypt-bench \
         share/man/man1/dcmencrypt.1 share/man/man1/dcmdecrypt.1 share/man/man1/dcmcryptstat.1 \
         share/dcmcrypt/paper/at-resnet-cm.bin share/dcmcrypt/paper/resnet-cm.bin \
         share/dcmcrypt/dcmcrypt.dic; do
  check "installed: $f" test -e "$prefix/$f"
done
check "no internal or research header installed" \
  sh -c "! find '$prefix/include' -name 'research.h' -o -name 'internal.h' -o -name '*.in' | grep -q ."
for l in dcmcrypt dcmcrypt_io dcmcrypt_dicom; do
  check "lib$l.so.$so (soname) and lib$l.a" test -e "$lib/lib$l.so.$so" -a -e "$lib/lib$l.a"
  check "lib$l.so soname is lib$l.so.$so" \
    sh -c "objdump -p '$lib/lib$l.so' | grep -q 'SONAME *lib$l.so.$so\$'"
  check "lib$l.so exports only dcmc_ symbols" \
    sh -c "! nm -D --defined-only '$lib/lib$l.so' | awk '{print \$3}' | grep -v '^dcmc_' | grep -q ."
  check "lib$l.so exports no dcmci_ internals" \
    sh -c "! nm -D --defined-only '$lib/lib$l.so' | grep -q ' dcmci_'"
done
check "cmake package" test -e "$lib/cmake/dcmcrypt/dcmcryptConfig.cmake"
for pc in dcmcrypt dcmcrypt-io dcmcrypt-dicom; do
  check "pkg-config file $pc.pc" test -e "$lib/pkgconfig/$pc.pc"
done
check "man pages carry the release version $version" \
  grep -q "\"dcmcrypt $version\"" "$prefix/share/man/man1/dcmencrypt.1"
check "installed dcmencrypt runs and reports $version" \
  sh -c "'$prefix/bin/dcmencrypt' --version | grep -q 'dcmcrypt $version'"

# CMake consumer, shared objects then static archives.
for mode in OFF ON; do
  cdir="$work/cmake-$mode"
  if cmake -S "$src/tests/consumer" -B "$cdir" -DCMAKE_PREFIX_PATH="$prefix" \
       -DCONSUMER_STATIC=$mode -DCONSUMER_WANTS="$version" >"$work/cfg-$mode.log" 2>&1 &&
     cmake --build "$cdir" >"$work/build-$mode.log" 2>&1; then
    mkdir -p "$work/run-$mode"
    check "CMake consumer (static=$mode) round trips" "$cdir/consumer" "$sample" "$work/run-$mode"
    if [ "$mode" = OFF ]; then
      check "CMake consumer (shared) runs on the installed libdcmcrypt.so.$so" \
        sh -c "ldd '$cdir/consumer' | grep -q '$lib/libdcmcrypt.so.$so'"
    else
      check "CMake consumer (static) needs no libdcmcrypt shared object" \
        sh -c "! ldd '$cdir/consumer' | grep -q libdcmcrypt"
    fi
  else
    cat "$work/cfg-$mode.log" "$work/build-$mode.log" >&2
    check "CMake consumer (static=$mode) builds" false
  fi
done

check "the CMake package refuses another minor version" sh -c "! cmake -S '$src/tests/consumer' \
  -B '$work/cmake-other' -DCMAKE_PREFIX_PATH='$prefix' -DCONSUMER_WANTS=0.999 >/dev/null 2>&1"

# The source tree as a subproject (add_subdirectory, as FetchContent does): same target names,
# only the libraries built (no tools, no tests).
sdir="$work/subproject"
if cmake -S "$src/tests/consumer" -B "$sdir" -DCONSUMER_SUBDIR="$src" -DCONSUMER_STATIC=ON \
     >"$work/cfg-sub.log" 2>&1 && cmake --build "$sdir" -j2 >"$work/build-sub.log" 2>&1; then
  mkdir -p "$work/run-sub"
  check "subproject consumer round trips" "$sdir/consumer" "$sample" "$work/run-sub"
  check "a subproject builds no tools" test ! -e "$sdir/dcmcrypt-subproject/apps"
else
  tail -30 "$work/cfg-sub.log" "$work/build-sub.log" >&2
  check "subproject consumer builds" false
fi

# The installed headers' attributes reach a consumer's compiler: ignoring whether data is
# authentic, or passing NULL where a key is required, fails a -Werror build; the same call used
# properly compiles (the control that the snippet itself is sound).
compiles() { # compiles BODY: a function with BODY, against the installed headers, -Werror
  printf '#include <dcmcrypt/dcmcrypt.h>\nint f(const dcmc_key *k, const dcmc_header *h)\n{ %s }\n' \
    "$1" >"$work/attr.c"
  cc -std=c11 -Wall -Werror -c -o "$work/attr.o" -I"$prefix/include" "$work/attr.c"
}
refused() { ! compiles "$1"; }
check "a checked verification compiles" compiles 'return dcmc_key_check(k, h) == DCMC_OK;'
check "an ignored verification status is a compile error" refused 'dcmc_key_check(k, h); return 0;'
check "a NULL key is a compile error" refused '(void)k; return dcmc_key_check(NULL, h) == DCMC_OK;'

# pkg-config consumer (shared).
export PKG_CONFIG_PATH="$lib/pkgconfig"
check "pkg-config reports $version" sh -c "[ \"\$(pkg-config --modversion dcmcrypt)\" = '$version' ]"
mkdir -p "$work/run-pc"
if cc -std=c11 -Wall -Werror -o "$work/consumer-pc" "$src/tests/consumer/consumer.c" \
     $(pkg-config --cflags --libs dcmcrypt-dicom dcmcrypt-io) 2>"$work/pc.log"; then
  check "pkg-config consumer round trips" \
    env LD_LIBRARY_PATH="$lib" "$work/consumer-pc" "$sample" "$work/run-pc"
else
  cat "$work/pc.log" >&2
  check "pkg-config consumer builds" false
fi
if [ "$fails" -ne 0 ]; then echo "$fails failed"; exit 1; fi
echo "all passed"

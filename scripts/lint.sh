#!/bin/sh
# lint.sh [BUILD_DIR] - static checks of the project's C and C++ sources: clang-tidy with the
# checks of .clang-tidy and cppcheck with the options below on src/, dicom/, apps/ and bench/
# (not tests/), and the house limits on every C/C++ file outside tests/ (at most 600 lines, no
# suppression without a check name and a reason). Prints each finding as
# `file:line: message [check]` and exits 1 if there is any, 2 if it could not run. BUILD_DIR
# (default build/) must hold the compile_commands.json of a configured tree (cmake -S . -B build).
# docs/lint.md says why each check is on or off. LINT_JOBS=N: N clang-tidy processes (default 2).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
JOBS=${LINT_JOBS:-2}
MAX_LINES=600
DIRS="src dicom apps bench"

die() {
  echo "lint.sh: $*" >&2
  exit 2
}
for tool in clang-tidy cppcheck python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found (scripts/install-deps.sh installs it)"
done
[ -f "$BUILD/compile_commands.json" ] ||
  die "no $BUILD/compile_commands.json: configure first (cmake -S $ROOT -B $BUILD)"
BUILD=$(cd "$BUILD" && pwd)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/dcmcrypt-lint.XXXXXX") || die "cannot create a temporary directory"
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
FINDINGS=$TMP/findings
: >"$FINDINGS"
cd "$ROOT" || die "cannot enter $ROOT"

# Every C/C++ source outside tests/ (tracked, or untracked and not ignored, and present: a file
# being moved may still be listed by git; every file outside build*/ without git). The house
# limits apply to all of them; clang-tidy and cppcheck to the units under DIRS.
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  { git ls-files; git ls-files --others --exclude-standard; } | sort -u
else
  find . -type f ! -path './build*' | sed 's#^\./##' | sort
fi | grep -v '^tests/' | grep -E '\.(c|cc|cpp|h|hh|hpp|h\.in)$' |
  while IFS= read -r f; do [ -f "$f" ] && printf '%s\n' "$f"; done >"$TMP/all"
# shellcheck disable=SC2086 # DIRS is a list of words
grep -E "^($(echo $DIRS | tr ' ' '|'))/" "$TMP/all" >"$TMP/sources"

# ---- 1. house limits ----------------------------------------------------------------------------
# Files over MAX_LINES lines, unless they say why with a line /* lint: long file: <reason> */.
while IFS= read -r f; do
  n=$(wc -l <"$f")
  if [ "$n" -gt "$MAX_LINES" ] && ! grep -Eq '/\* lint: long file: [^ ].*\*/' "$f"; then
    echo "$f:1: $n lines, more than $MAX_LINES: split it, or say why in /* lint: long file: <reason> */ [lint-long-file]" >>"$FINDINGS"
  fi
done <"$TMP/all"
# Suppressions must name what they suppress and say why: NOLINT(check): reason,
# NOLINTNEXTLINE(check): reason, cppcheck-suppress id ; reason.
xargs grep -HnE 'NOLINT|cppcheck-suppress' <"$TMP/all" 2>/dev/null |
  grep -vE '(NOLINT(NEXTLINE|BEGIN|END)?\([^)]+\)[ :;,-]+.*[A-Za-z]{2,}|cppcheck-suppress[A-Za-z-]* +[A-Za-z0-9_:*.]+ *;.*[A-Za-z]{2,})' |
  sed -E 's/^([^:]+:[0-9]+):.*/\1: a suppression without a check name and a reason [lint-suppression]/' >>"$FINDINGS"

# ---- 2. the compilation database, restricted to the sources in scope -----------------------------
python3 - "$BUILD/compile_commands.json" "$ROOT" "$TMP" <<'EOF' || die "cannot read $BUILD/compile_commands.json"
import json, os, sys
db, root, tmp = sys.argv[1], sys.argv[2], sys.argv[3]
scope = [l.strip() for l in open(os.path.join(tmp, "sources")) if l.strip()]
entries, seen = [], set()
for e in json.load(open(db)):
    path = os.path.normpath(os.path.join(e["directory"], e["file"]))
    rel = os.path.relpath(path, root)
    # One entry per file (apps/ files are compiled into several tools); files since removed dropped.
    if rel in scope and rel not in seen and os.path.isfile(path):
        seen.add(rel)
        entries.append(e)
json.dump(entries, open(os.path.join(tmp, "compile_commands.json"), "w"), indent=1)
with open(os.path.join(tmp, "units"), "w") as u, open(os.path.join(tmp, "findings"), "a") as f:
    for rel in scope:
        if rel in seen:
            u.write(rel + "\n")
        elif rel.endswith((".c", ".cc", ".cpp")):
            f.write(f"{rel}:1: not in {db}: not checked (re-run cmake, or add it to a target) [lint-not-built]\n")
EOF

# ---- 3. clang-tidy: the checks and options of .clang-tidy ---------------------------------------
mkdir "$TMP/tidy"
# Largest first, so that the longest unit (a C++ file with DCMTK's headers) does not start last.
while IFS= read -r f; do printf '%s %s\n' "$(wc -c <"$f")" "$f"; done <"$TMP/units" |
  sort -rn | cut -d' ' -f2- >"$TMP/order"
export TMP ROOT
# shellcheck disable=SC2016 # the inner shell expands $1, $TMP and $ROOT
xargs -P "$JOBS" -I{} sh -c '
  out="$TMP/tidy/$(printf %s "$1" | tr / _).out"
  clang-tidy -p "$TMP" --quiet --header-filter="^$ROOT/(src|include|dicom|apps|bench)/" \
    "$ROOT/$1" >"$out" 2>"$out.err" || echo "clang-tidy failed on $1" >>"$out.err"' _ {} <"$TMP/order"
cat "$TMP"/tidy/*.out 2>/dev/null |
  sed -nE "s#^$ROOT/##; s#^([^ :]+):([0-9]+):[0-9]+: (warning|error): (.*)\$#\1:\2: \4#p" >>"$FINDINGS"
# A unit clang-tidy could not compile or crashed on: a finding, and its messages on stderr.
for err in "$TMP"/tidy/*.err; do
  if grep -q 'clang-tidy failed on' "$err" 2>/dev/null; then
    cat "$err" >&2
    sed -nE 's/^clang-tidy failed on (.*)$/\1:1: clang-tidy failed (its messages are on stderr) [lint-tool]/p' \
      "$err" >>"$FINDINGS"
  fi
done

# ---- 4. cppcheck ---------------------------------------------------------------------------------
# warning: likely bugs; portability: 32/64-bit and implementation-defined behaviour; performance.
# (style is left to clang-tidy and review: it mostly asks for const and narrower scopes.)
# Suppressions, each with its reason, in scripts/cppcheck-suppressions.txt; inline ones need
# `// cppcheck-suppress id ; reason` (checked above).
if ! cppcheck --project="$TMP/compile_commands.json" --enable=warning,portability,performance \
  --inline-suppr --suppressions-list="$ROOT/scripts/cppcheck-suppressions.txt" \
  -j "$JOBS" --quiet --template='{file}:{line}: {message} [cppcheck-{id}]' 2>"$TMP/cppcheck" \
  >"$TMP/cppcheck.out"; then
  cat "$TMP/cppcheck.out" "$TMP/cppcheck" >&2
  echo "scripts/lint.sh:1: cppcheck failed (its messages are on stderr) [lint-tool]" >>"$FINDINGS"
fi
sed -E "s#^$ROOT/##" "$TMP/cppcheck" | grep -E '^[^ :]+:[0-9]+: ' >>"$FINDINGS"

# ---- report -------------------------------------------------------------------------------------
sort -t: -k1,1 -k2,2n -u "$FINDINGS" >"$TMP/report"
n=$(wc -l <"$TMP/report")
if [ "$n" -gt 0 ]; then
  cat "$TMP/report"
  echo "lint.sh: $n finding(s) ($(wc -l <"$TMP/units") units analysed, $(wc -l <"$TMP/all") files checked)" >&2
  exit 1
fi
echo "lint.sh: clean ($(wc -l <"$TMP/units") units analysed, $(wc -l <"$TMP/all") files checked)" >&2
exit 0

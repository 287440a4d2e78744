# Shared by the shell tests (sourced): a scratch directory $t removed on exit, ok/bad that count
# failures, and expect CODE NAME CMD... that runs CMD with its output in $t/out and $t/err.
# The caller sets `prefix` (the scratch directory's name) before sourcing.
t=$(mktemp -d "/tmp/${prefix:-dcmc-test}-XXXXXX")
trap 'rm -rf "$t"' EXIT
fails=0
ok() { echo "ok   $1"; }
bad() { echo "FAIL $1"; fails=$((fails + 1)); }
expect() { # expect CODE NAME CMD...
  want=$1; name=$2; shift 2
  "$@" >"$t/out" 2>"$t/err"; got=$?
  if [ "$got" -eq "$want" ]; then ok "$name (exit $got)"; else bad "$name: exit $got, wanted $want: $(tail -c 400 "$t/err")"; fi
}

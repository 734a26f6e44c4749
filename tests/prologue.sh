# tests/prologue.sh: the opening every end-to-end shell test sources, first thing after its header
# comment: `. "$(dirname "$0")/prologue.sh"` (Bazel passes the snabb binary as $1: tests/BUILD).
# It gives the test
#   snabb   the binary (an absolute path: a test may cd);
#   here    tests/ (absolute), data = tests/data/pcap, configs = tests/configs;
#   tmp     a private temporary directory, removed at exit;
#   fail MESSAGE      prints "FAIL: MESSAGE" and exits 1;
#   at_exit COMMAND   runs COMMAND at exit (last registered first), after the background jobs the
#                     test left are sent SIGTERM and before $tmp is removed;
# and bash's strict mode (set -euo pipefail). A test that goes on after a failure to report them
# all uses check_failed MESSAGE (counts, does not exit) and ends with `finish NAME`.
# shellcheck shell=bash disable=SC2034  # (the variables are the sourcing test's)
set -euo pipefail
snabb=$(realpath "${1:?usage: $0 SNABB_BINARY}")
here=$(realpath "$(dirname "$0")")
data=$here/data/pcap
configs=$here/configs
tmp=$(mktemp -d)

exit_commands=()
at_exit() { exit_commands+=("$*"); }
prologue_exit() {
  local i
  jobs -p | xargs -r kill 2>/dev/null || true
  for ((i = ${#exit_commands[@]} - 1; i >= 0; i--)); do eval "${exit_commands[i]}" || true; done
  rm -rf "$tmp"
}
trap prologue_exit EXIT

fail() { echo "FAIL: $*"; exit 1; }

failures=0
check_failed() { echo "FAIL: $*"; failures=$((failures + 1)); }
finish() { echo "$1: $failures failed"; [ "$failures" -eq 0 ]; }

#!/usr/bin/env bash
# End-to-end, as root, outside Bazel's sandbox: run directories (observe/rundir.h) against other local
# users, with nobody as the attacker and uid 4321 as an unprivileged victim (setpriv):
#   (a) a victim's $TMPDIR/snabb-UID made, or replaced by a link, by the attacker is refused, and
#       nothing of the victim's is overwritten; (b) root refuses a /var/run/snabb that others can
#       write to or own, and a .snabb-probe link planted there truncates nothing; (c) run
#       directories are 0700 and files 0600, unreadable by others; --group lets one group read.
# Stale directories: a SIGKILLed run's is removed by the next run (a live run's never), os.exit in
# a config or an app leaves none, and `snabb profile PID` refuses a dead process's directory, also
# when the PID is another process's now. Two runs given one --rundir: the second is refused with
# the first's PID. /var/run/snabb is a tmpfs of a private mount namespace (unshare), so the real
# one is never touched.
. "$(dirname "$0")/prologue.sh"
[ "$(id -u)" = 0 ] || fail "needs root"
command -v setpriv >/dev/null && command -v unshare >/dev/null || fail "needs util-linux"

# In /tmp so that the unprivileged users can reach it; the copies are theirs to run.
work=$(mktemp -d /tmp/snabb-rundir-test.XXXXXX)
at_exit 'jobs -p | xargs -r kill -9 2>/dev/null; wait 2>/dev/null; rm -rf "$work"'
chmod 0755 "$work"
cp "$snabb" "$work/snabb"
cp "$here/../examples/basic.lua" "$here/configs/os_exit.lua" "$work/"
chmod 0755 "$work/snabb" && chmod 0644 "$work"/*.lua
s=$work/snabb
mkdir -m 1777 "$work/tmp" # a shared TMPDIR, as /tmp is
# (Arrays, not functions: a function run with & would be a subshell, and $! not snabb's PID.)
attacker=(setpriv --reuid=65534 --regid=65534 --clear-groups)
victim=(setpriv --reuid=4321 --regid=4321 --clear-groups env TMPDIR="$work/tmp")

# wait_for FILE PID: until FILE exists, or fail when process PID has ended first.
wait_for() {
  for _ in $(seq 300); do
    [ -e "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
export -f wait_for # also for as_root.sh, below

# (a) The attacker makes the victim's base directory first. Old code used it: once the victim's run
# directory appeared in it, the attacker put its own in its place, with apps.json.tmp a link to the
# victim's file, which the victim's next apps.json then overwrote.
mkdir -m 0700 "$work/victim" && echo precious >"$work/victim/file"
chown -R 4321:4321 "$work/victim"
"${attacker[@]}" mkdir -m 0777 "$work/tmp/snabb-4321"
"${victim[@]}" "$s" run "$work/basic.lua" --duration 3 >/dev/null 2>"$work/a.err" &
pid=$!
if wait_for "$work/tmp/snabb-4321/$pid/apps.json" "$pid"; then
  "${attacker[@]}" mv "$work/tmp/snabb-4321/$pid" "$work/tmp/snabb-4321/moved"
  "${attacker[@]}" mkdir -m 0777 "$work/tmp/snabb-4321/$pid"
  "${attacker[@]}" ln -s "$work/victim/file" "$work/tmp/snabb-4321/$pid/apps.json.tmp"
fi
status=0
wait "$pid" || status=$?
[ "$(cat "$work/victim/file")" = precious ] || fail "(a) the victim's file was overwritten"
[ "$status" = 1 ] && grep -q "snabb-4321: owned by nobody (uid 65534), not by you" "$work/a.err" ||
  fail "(a) victim not refused: $status $(cat "$work/a.err")"
# ... or a link in its place.
rm -rf "$work/tmp/snabb-4321"
"${attacker[@]}" mkdir -m 0777 "$work/tmp/attacker"
"${attacker[@]}" ln -s "$work/tmp/attacker" "$work/tmp/snabb-4321"
status=0
"${victim[@]}" "$s" run "$work/basic.lua" --duration 1 >/dev/null 2>"$work/a2.err" || status=$?
[ "$status" = 1 ] && grep -q "snabb-4321: a symbolic link owned by nobody (uid 65534), not by you or root; not followed" \
  "$work/a2.err" || fail "(a) link not refused: $status $(cat "$work/a2.err")"
[ -z "$(ls "$work/tmp/attacker")" ] || fail "(a) the victim wrote into the attacker's directory"
rm -f "$work/tmp/snabb-4321"

# (c), unprivileged: the victim's own base is made 0711, its run directory 0700, files 0600.
"${victim[@]}" "$s" run "$work/basic.lua" --duration 3 >/dev/null &
pid=$!
d=$work/tmp/snabb-4321/$pid
wait_for "$d/apps.json" "$pid" || fail "(c) no $d/apps.json"
modes=$(cd "$d" && stat -c "%n %a %u" .. . apps.json audit.log lock vmprofile vmprofile/engine.vmprofile | tr "\n" " " || true)
[ "$modes" = ".. 711 4321 . 700 4321 apps.json 600 4321 audit.log 600 4321 lock 600 4321 vmprofile 700 4321 vmprofile/engine.vmprofile 600 4321 " ] ||
  fail "(c) modes: $modes"
"${attacker[@]}" cat "$d/apps.json" >/dev/null 2>&1 && fail "(c) another user reads the victim's apps.json"
"${victim[@]}" "$s" profile "$pid" | grep -q "^app tee" || fail "(c) the victim cannot profile its own run"
wait "$pid"
[ ! -e "$d" ] || fail "(c) $d left behind"

# The rest as root, with /var/run/snabb the default.
cat >"$work/as_root.sh" <<'SH'
set -euo pipefail
s=$1 work=$2
fail() { echo "FAIL: $*"; exit 1; }
trap 'jobs -p | xargs -r kill -9 2>/dev/null || true' EXIT
attacker() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
base=/var/run/snabb
mount -t tmpfs -o mode=0777 none /run/snabb

# (b) A /var/run/snabb that others can write to, with a .snabb-probe link to a file of root's
# planted in it: old code truncated the file (its writability probe), then used the directory.
echo precious >"$work/rootfile"
attacker ln -s "$work/rootfile" "$base/.snabb-probe"
status=0
"$s" run "$work/basic.lua" --duration 1 >/dev/null 2>"$work/b.err" || status=$?
[ "$(cat "$work/rootfile")" = precious ] || fail "(b) root's file was truncated"
[ "$status" = 1 ] && grep -q "/run/snabb: others can write to it (mode 0777)" "$work/b.err" ||
  fail "(b) not refused: $status $(cat "$work/b.err")"
[ "$(ls -A "$base")" = .snabb-probe ] || fail "(b) root wrote in $base: $(ls -A "$base")"
rm -f "$base/.snabb-probe"
# ... or that another user owns.
chmod 0755 "$base" && chown 65534 "$base"
status=0
"$s" run "$work/basic.lua" --duration 1 >/dev/null 2>"$work/b2.err" || status=$?
[ "$status" = 1 ] && grep -q "/run/snabb: owned by nobody (uid 65534), not by you" "$work/b2.err" ||
  fail "(b) not refused: $status $(cat "$work/b2.err")"
chown 0 "$base"

# (c) as root: 0700 and 0600, and with --group users 0750 and 0640 with that group, which a
# member (uid 4321 in group users) reads and nobody else does.
"$s" run "$work/basic.lua" --duration 3 >/dev/null &
pid=$!
wait_for "$base/$pid/apps.json" "$pid" || fail "(c) no $base/$pid/apps.json"
modes=$(cd "$base/$pid" && stat -c "%n %a" . apps.json audit.log lock vmprofile vmprofile/tee.vmprofile | tr "\n" " " || true)
[ "$modes" = ". 700 apps.json 600 audit.log 600 lock 600 vmprofile 700 vmprofile/tee.vmprofile 600 " ] ||
  fail "(c) root's modes: $modes"
status=0
attacker "$s" profile "$pid" >/dev/null 2>"$work/c.err" || status=$?
[ "$status" = 1 ] && grep -q "^snabb: $base/$pid: not yours to read" "$work/c.err" ||
  fail "(c) nobody profiles root's run: $status $(cat "$work/c.err")"
wait "$pid"
chmod 0711 "$base"
"$s" run "$work/basic.lua" --duration 3 --group users >/dev/null &
pid=$!
wait_for "$base/$pid/apps.json" "$pid" || fail "(c) no $base/$pid/apps.json (--group)"
modes=$(cd "$base/$pid" && stat -c "%n %a %G" . apps.json audit.log lock vmprofile vmprofile/tee.vmprofile | tr "\n" " " || true)
[ "$modes" = ". 750 users apps.json 640 users audit.log 640 users lock 640 users vmprofile 750 users vmprofile/tee.vmprofile 640 users " ] ||
  fail "(c) --group modes: $modes"
setpriv --reuid=4321 --regid=4321 --groups=users "$s" profile "$pid" | grep -q "^app tee" ||
  fail "(c) a member of group users cannot profile the run"
attacker "$s" profile "$pid" >/dev/null 2>&1 && fail "(c) nobody profiles a --group users run"
wait "$pid"
status=0
"$s" run "$work/basic.lua" --group no-such-group >/dev/null 2>"$work/g.err" || status=$?
[ "$status" = 2 ] && grep -qx "snabb run: --group: no group named no-such-group" "$work/g.err" ||
  fail "--group no-such-group: $status $(cat "$work/g.err")"

# Stale: a SIGKILLed run leaves its directory; profile refuses it, also once its PID is another
# process's; the next run removes it, not a live run's.
"$s" run "$work/basic.lua" >/dev/null &
dead=$!
wait_for "$base/$dead/apps.json" "$dead" || fail "no $base/$dead/apps.json"
kill -9 "$dead" && wait "$dead" || true
[ -d "$base/$dead" ] || fail "SIGKILL left no directory to test with"
status=0
"$s" profile "$dead" >/dev/null 2>"$work/p.err" || status=$?
[ "$status" = 1 ] && grep -q "$base/$dead is left from process $dead, which has ended$" "$work/p.err" ||
  fail "profile of a dead PID: $status $(cat "$work/p.err")"
sleep 600 &
reused=$!
mv "$base/$dead" "$base/$reused" # as if its PID were now sleep's
status=0
"$s" profile "$reused" >/dev/null 2>"$work/p2.err" || status=$?
[ "$status" = 1 ] &&
  grep -q "$base/$reused is left from process $reused, which has ended (PID $reused is now another process)" \
    "$work/p2.err" || fail "profile of a reused PID: $status $(cat "$work/p2.err")"
sh -c 'exit 0' &
gone=$!
wait "$gone"
# One without a lock file (an older snabb's) is left alone: in another PID namespace its PID
# may be a live process.
mkdir "$base/$gone" && echo '{}' >"$base/$gone/apps.json"
"$s" run "$work/basic.lua" --duration 6 >/dev/null &
live=$!
wait_for "$base/$live/apps.json" "$live" || fail "no $base/$live/apps.json"
"$s" run "$work/basic.lua" --duration 1 >/dev/null
[ ! -e "$base/$reused" ] || fail "stale directories kept: $(ls "$base")"
[ -e "$base/$live/apps.json" ] && [ -e "$base/$gone" ] || fail "a directory was removed: $(ls "$base")"
kill "$reused"
rm -r "${base:?}/$gone"
wait "$live"

# os.exit in a config, and in an app while the engine runs: no directory left.
for arg in "" app; do
  status=0
  "$s" run "$work/os_exit.lua" $arg >/dev/null 2>&1 || status=$?
  [ "$status" = "$([ -z "$arg" ] && echo 3 || echo 4)" ] || fail "os.exit $arg: status $status"
  [ -z "$(ls -A "$base")" ] || fail "os.exit $arg left $(ls -A "$base")"
done

# Two processes, one --rundir: the second is refused, naming the first; once the first has
# ended (even by SIGKILL) the directory is free again.
kept=$work/kept
"$s" run "$work/basic.lua" --rundir "$kept" >/dev/null &
first=$!
wait_for "$kept/apps.json" "$first" || fail "no $kept/apps.json"
status=0
"$s" run "$work/basic.lua" --rundir "$kept" --duration 1 >/dev/null 2>"$work/l.err" || status=$?
[ "$status" = 1 ] && grep -q "^snabb: run directory $kept: in use by process $first$" "$work/l.err" ||
  fail "second --rundir: $status $(cat "$work/l.err")"
kill -0 "$first" && [ "$(cut -d' ' -f1 "$kept/lock")" = "$first" ] || fail "the first run was disturbed"
kill -9 "$first" && wait "$first" || true
"$s" run "$work/basic.lua" --rundir "$kept" --duration 1 >/dev/null || fail "--rundir not freed"
"$s" profile "$kept" | grep -q "^app tee" || fail "profile of the kept directory"
SH
unshare --mount --propagation private bash "$work/as_root.sh" "$s" "$work"
echo "rundir_test: OK"

#!/usr/bin/env bash
# reconfig_test: live reconfiguration without loss (engine.configure, runtime/README.md). Runs
# reconfig_check.lua: 100 reconfigurations of a loaded graph (apps added, removed, changed; links
# moved), each checked for exact accounting (packets in = out + counted drops + still queued),
# for kept links and kept apps; then every app stopped and the pool found empty. Three seeds.
. "$(dirname "$0")/prologue.sh"

for seed in 20 21 22; do
  out=$("$snabb" "$here/reconfig_check.lua" 100 "$seed") || fail "seed $seed: $out"
  echo "$out"
  [[ $out == *"reconfig_check: 100 reconfigurations under load: in "* ]] || fail "seed $seed: no summary: $out"
done
echo "reconfig_test: ok"

#!/usr/bin/env bash
# End-to-end: `snabb bench --html` reports opened in headless Chromium (Debian's, driven by
# playwright-core from npm; tools/install-deps installs both). tests/html_report_check.js checks
# what a reader sees against the result embedded in the page: the function under test first and
# the harness apart, "Mpps in" visible over "Mpps out" where they are equal, steps and no smoothing,
# the x axis ending with the run, rate, version, CPU and command line shown.
. "$(dirname "$0")/prologue.sh"
. "$(dirname "$0")/browser.sh"

# Throttled: in equals out in every sample (one app that forwards all it gets).
"$snabb" bench "$here/../examples/forward.lua" --pcap "$data/v4.pcap" --duration 0.5 --rate 1Mpps \
  --html "$tmp/forward.html" >/dev/null
node "$here/html_report_check.js" "$tmp/forward.html"
# A function that drops a fifth: lost in the graph, freed by app dropper.
"$snabb" bench "$here/configs/drop_fifth.lua" --pcap "$data/v6.pcap" --packets 2000000 \
  --html "$tmp/drop.html" >/dev/null
node "$here/html_report_check.js" "$tmp/drop.html"
grep -q 'freed by <code>dropper</code> 400,000' "$tmp/drop.html" || fail "no loss attributed to dropper"
echo "html_report_test: OK"

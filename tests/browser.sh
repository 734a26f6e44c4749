# tests/browser.sh: sourced after prologue.sh by the tests that drive a page in headless Chromium
# (Debian's, through playwright-core from npm; tools/install-deps installs the three): checks they
# are there, exports NODE_PATH so that node finds playwright-core, and HOME=$tmp for Chromium's
# profile.
# shellcheck shell=bash
command -v node >/dev/null || fail "node is missing (tools/install-deps installs it)"
[ -x /usr/bin/chromium ] || fail "chromium is missing (tools/install-deps installs it)"
NODE_PATH=$(npm root -g 2>/dev/null || true)
export NODE_PATH
[ -d "$NODE_PATH/playwright-core" ] || fail "playwright-core is missing (tools/install-deps installs it)"
export HOME="$tmp" # Chromium's profile

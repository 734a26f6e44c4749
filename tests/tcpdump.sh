#!/usr/bin/env bash
# tcpdump for tests. Run as root, tcpdump switches to its own user once the file is open, which
# Bazel's sandbox forbids ("Couldn't change to 'tcpdump' uid=..."); as root it runs as nobody in a
# user namespace instead.
if [ "$(id -u)" -eq 0 ]; then
  exec unshare --user --map-user=65534 --map-group=65534 tcpdump "$@"
fi
exec tcpdump "$@"

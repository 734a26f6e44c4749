# tests/dpdk_setup.sh: what a test of DPDK's multi-process mode sets up, sourced after prologue.sh
# (tests/dpdk_workers_test.sh, tests/dpdk_supervised_test.sh): `dpdk_setup NS PAGES NEEDED` adds
# PAGES hugepages of 2 MiB (taken away at exit) and fails unless NEEDED are free (other processes
# on the machine may take free hugepages too: snabb's packet pool does when it can), mounts a
# hugetlbfs at $tmp/huge, and makes network namespace NS (IPv6 off, so that the kernel sends
# nothing of its own); the EAL's files of file prefix NS are removed at exit.
# shellcheck shell=bash
dpdk_setup() {
  local ns=$1 pages=$2 needed=$3 old_pages free
  old_pages=$(cat /proc/sys/vm/nr_hugepages)
  at_exit "echo $old_pages >/proc/sys/vm/nr_hugepages"
  echo $((old_pages + pages)) >/proc/sys/vm/nr_hugepages
  free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
  [ "$free" -ge "$needed" ] || fail "only $free hugepages free after adding $pages, $needed needed"
  mkdir "$tmp/huge"
  mount -t hugetlbfs -o pagesize=2M nodev "$tmp/huge"
  at_exit "umount '$tmp/huge'; rm -rf '/var/run/dpdk/$ns' '/var/run/dpdk/$ns.snabb-lock'"
  ip netns add "$ns"
  at_exit "ip netns del $ns"
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

#!/usr/bin/env bash
# Mirrored disks (ftvs/mirror): resync throughput of 128 MiB of marked data
# against the CoServer link's bulk rate measured in the same run and the same
# link session, over one veth link between two network namespaces (needs
# root). Copies on the disk (files under /tmp: progress checkpoints fsync)
# and in RAM (/dev/shm: the protocol's ceiling). The machine is shared, so
# each row is one run and "best" compares the best link with the best
# resync. Nothing is asserted (goal: resync >= 90% of the link).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
if [[ $(id -u) -ne 0 ]]; then
	echo "mirror: skipped (needs root for network namespaces)"
	exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run='^$' -bench='BenchmarkResyncVsLink' -benchtime=1x -count=3 ./ftvs/mirror >"$out" 2>&1 || { cat "$out"; exit 1; }
awk '
/^BenchmarkResyncVsLink/ {
	split($1, a, "="); m=a[2]; sub(/-[0-9]+$/, "", m); n++; mode[n]=m
	for (i=1;i<=NF;i++) { if ($(i+1)=="link-MB/s") l[n]=$i; if ($(i+1)=="resync-MB/s") r[n]=$i }
	if (l[n] > bl[m]) bl[m]=l[n]; if (r[n] > br[m]) br[m]=r[n]
}
END {
	printf "%-40s %10s %12s %7s\n", "mirror resync, 128 MiB marked (veth)", "link MB/s", "resync MB/s", "ratio"
	for (k=1;k<=n;k++) printf "%-40s %10.1f %12.1f %6.0f%%\n", "copies on " mode[k], l[k], r[k], 100*r[k]/l[k]
	for (m in bl) printf "%-40s %10.1f %12.1f %6.0f%%\n", "best, copies on " m, bl[m], br[m], 100*br[m]/bl[m]
}' "$out"

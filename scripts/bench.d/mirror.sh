#!/usr/bin/env bash
# Mirrored disks (ftvs/mirror): resync throughput of marked data against the
# CoServer link's measured bulk rate, over one veth link between two network
# namespaces (needs root). Both numbers come from the same run and the same
# link session; copies are files. Nothing is asserted (goal: resync >= 90%
# of the link).
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
	n++
	for (i=1;i<=NF;i++) { if ($(i+1)=="link-MB/s") l[n]=$i; if ($(i+1)=="resync-MB/s") r[n]=$i; if ($(i+1)=="resync-%-of-link") p[n]=$i }
}
END {
	printf "%-46s %10s %12s %8s\n", "mirror resync, 128 MiB marked (veth, files)", "link MB/s", "resync MB/s", "ratio"
	for (k=1;k<=n;k++) printf "%-46s %10.1f %12.1f %7.0f%%\n", "run " k, l[k], r[k], p[k]
}' "$out"

#!/usr/bin/env bash
# Mirrored disks (ftvs/mirror): resync throughput of 128 MiB of marked data
# against the CoServer link's bulk rate measured in the same run and the same
# link session, over one veth link between two network namespaces (needs
# root). Copies on the disk (files under /tmp: progress checkpoints fsync)
# and in RAM (/dev/shm: the protocol's ceiling). The machine is shared, so
# each row is one run of 5 link/resync pairs: the rates are medians and the
# ratio is the median of each resync over the link transfer just before it;
# "median" is the median row. Nothing is asserted (goal: resync >= 90% of
# the link).
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
	for (i=1;i<=NF;i++) { if ($(i+1)=="link-MB/s") l[n]=$i; if ($(i+1)=="resync-MB/s") r[n]=$i; if ($(i+1)=="resync-%-of-link") p[n]=$i }
	k[m]++; pm[m, k[m]]=p[n]
}
END {
	printf "%-40s %10s %12s %7s\n", "mirror resync, 128 MiB marked (veth)", "link MB/s", "resync MB/s", "ratio"
	for (j=1;j<=n;j++) printf "%-40s %10.1f %12.1f %6.0f%%\n", "copies on " mode[j], l[j], r[j], p[j]
	for (m in k) {
		c=k[m]; for (x=1;x<=c;x++) v[x]=pm[m, x]
		for (x=1;x<=c;x++) for (y=x+1;y<=c;y++) if (v[y] < v[x]) { t=v[x]; v[x]=v[y]; v[y]=t }
		printf "%-40s %10s %12s %6.0f%%\n", "median, copies on " m, "", "", v[int((c+1)/2)]
	}
}' "$out"

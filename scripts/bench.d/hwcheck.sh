#!/usr/bin/env bash
# hwcheck: time of a live inventory (goal: under 300 ms), the median of
# several runs of the built binary; also a snapshot capture and a compare.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
BIN=${BIN:-bin/ftvs}
[[ -x $BIN ]] || make -s build
work=$(mktemp -d /tmp/ftvs-bench-hwcheck.XXXXXX)
trap 'rm -rf "$work"' EXIT

# median_ms RUNS CMD...: run CMD RUNS times, print the median wall time.
median_ms() {
	local runs=$1
	shift
	local t=()
	for ((i = 0; i < runs; i++)); do
		local t0=$(date +%s%N)
		"$@" >/dev/null 2>&1 || true
		t+=($(( ($(date +%s%N) - t0) / 1000000 )))
	done
	printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%d ms (median of %d, min %d, max %d)", a[int((NR+1)/2)], NR, a[1], a[NR]}'
}

echo "live inventory --json (goal < 300 ms): $(median_ms 11 $BIN hwcheck inventory --json)"
echo "live inventory, text with pci.ids names: $(median_ms 11 $BIN hwcheck inventory)"
$BIN hwcheck inventory --json >"$work/live.json"
n=0
snap() { n=$((n + 1)); $BIN hwcheck snapshot --out "$work/snap$n.tar.gz"; }
echo "snapshot capture: $(median_ms 5 snap)"
echo "compare live JSON vs a snapshot: $(median_ms 5 $BIN hwcheck compare "$work/live.json" "$work/snap1.tar.gz")"

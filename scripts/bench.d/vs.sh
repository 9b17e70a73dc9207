#!/usr/bin/env bash
# The solo VS against the Linux kernel's TCP on the same veth path: bulk
# download throughput and ratio (goal >= 0.8), 1 KiB requests/s with 50
# connections (wrk), frames/s through the solo driver. Needs root (network
# namespaces); prints, asserts nothing. FTVS_BENCH_BYTES sets the file size.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
if [[ $(id -u) -ne 0 ]]; then
	echo "vs: skipped (needs root for network namespaces)"
	exit 0
fi
FTVS_BENCH=1 go test -count=1 -timeout 20m -run '^Test(VS|Port)Bench$' -v ./ftvs/vsrun/bench |
	grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^ok ' || true

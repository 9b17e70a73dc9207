#!/usr/bin/env bash
# The lockstep pair against the solo VS, same namespaces and veth/bridge
# path, one run: bulk download throughput and ratio (goal >= 0.95), added
# p50/p99 latency of small requests on a kept-alive connection, CoServer-link
# bytes per client byte, failover stall p50/p99 over FTVS_BENCH_KILLS kills
# of the primary (default 20) and the reintegration pause of each rejoin.
# Needs root; prints, asserts nothing. FTVS_BENCH_MIB sets the file size.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
if [[ $(id -u) -ne 0 ]]; then
	echo "lockstep: skipped (needs root for network namespaces)"
	exit 0
fi
FTVS_BENCH=1 go test -count=1 -timeout 20m -run '^TestLockstepBench$' -v ./ftvs/coserver |
	grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^ok ' -e '^        time=' -e 'intact in' || true

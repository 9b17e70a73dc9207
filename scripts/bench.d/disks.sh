#!/usr/bin/env bash
# The real pair's disk and FTP figures: fio 4 KiB random read and write at
# queue depth 16 on the NBD export of a mirrored virtual disk, and an FTP
# download, in lockstep and with the same runtime alone (secondary killed),
# side by side in each round (goal >= 0.8 for fio). Needs root and fio;
# prints, asserts nothing. FTVS_BENCH_ROUNDS sets the rounds (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
if [[ $(id -u) -ne 0 ]]; then
	echo "disks: skipped (needs root for network namespaces)"
	exit 0
fi
FTVS_BENCH=1 go test -count=1 -timeout 20m -run '^TestDiskServicesBench$' -v ./ftvs/coserver |
	grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^ok ' -e '^        time=' || true

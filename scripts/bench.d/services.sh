#!/usr/bin/env bash
# The VS's NBD and FTP services: fio 4 KiB random read/write at queue depth 16
# on the solo VS's NBD export vs nbdkit's file plugin on the same backing file
# (ratio), and FTP vs HTTP download rate of the same file from the same VS.
# Needs root (network namespaces); prints, asserts nothing.
# FTVS_BENCH_BYTES sets the file and disk size (default 256 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
if [[ $(id -u) -ne 0 ]]; then
	echo "services: skipped (needs root for network namespaces)"
	exit 0
fi
FTVS_BENCH=1 go test -count=1 -timeout 20m -run '^TestServicesBench$' -v ./ftvs/services/nbd |
	grep -v -e '^=== RUN' -e '^--- PASS' -e '^PASS$' -e '^ok ' || true

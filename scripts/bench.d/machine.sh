#!/usr/bin/env bash
# machine: CPU cost of the deterministic core. A 64 MiB HTTP download from
# the machine to an in-process client stack (TSO 64 KiB): machine-MB/s is
# bytes per second of CPU spent inside Machine.Step (stack + HTTP service +
# file reads from an in-memory store); requests per CPU second for 50 clients
# pipelining small-file requests; Snapshot+StateHash throughput.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
go test -run='^$' -bench='MachineDownload|SmallRequests|StateHash' -benchtime=5x ./ftvs/machine |
	awk '/^Benchmark/ { print }'

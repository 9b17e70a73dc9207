#!/usr/bin/env bash
# netstack: bulk download throughput of the deterministic stack (on a TAP
# with TSO/checksum offload, the interop test loop as its shell) against a
# Linux kernel TCP server on a veth pair, both fetched by curl in a network
# namespace; plus the stack's in-process micro-benchmarks (Snapshot: encoding
# MB/s of 8 connections with 4 MiB send buffers each). Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
go test -run '^$' -bench 'Sender|Receiver|Checksum|Snapshot' -benchtime 1s ./ftvs/netstack/ | grep -E '^Benchmark' || true
if [[ $(id -u) -ne 0 ]]; then
	echo "netstack: skipping the TAP/veth download comparison (needs root)"
	exit 0
fi
out=$(go test -run '^$' -bench 'Curl(Stack|Kernel)' -benchtime 5x ./ftvs/netstack/interop)
echo "$out" | grep -E '^Benchmark'
stack=$(echo "$out" | awk '/^BenchmarkCurlStack/ {for (i=1;i<=NF;i++) if ($(i+1)=="Mbit/s") print $i}')
kernel=$(echo "$out" | awk '/^BenchmarkCurlKernel/ {for (i=1;i<=NF;i++) if ($(i+1)=="Mbit/s") print $i}')
if [[ -n $stack && -n $kernel ]]; then
	awk -v s="$stack" -v k="$kernel" 'BEGIN { printf "netstack: bulk download stack %.0f Mbit/s, kernel %.0f Mbit/s, ratio %.2f\n", s, k, s/k }'
fi

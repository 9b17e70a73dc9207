#!/usr/bin/env bash
# netstack: bulk download throughput of the deterministic stack (on a TAP
# with TSO/checksum offload, the interop test loop as its shell) against a
# Linux kernel TCP server on a veth pair, both fetched by curl in a network
# namespace; plus the stack's in-process micro-benchmarks (Snapshot: encoding
# MB/s of 8 connections with 4 MiB send buffers each); and the longest
# stall of a rate-limited reader. Needs root.
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
# Longest stall of a rate-limited reader (12 MiB at 1.5 MB/s), stack vs
# Linux as the sender. curl --limit-rate's own stall (it reads ~10 MB at
# once, then sleeps with data waiting) dominates and is the same for both;
# the paced Go reader (64 KiB SO_RCVBUF, 16 KiB reads) shows what the sender
# adds: the longest time one read blocked on a reopened window.
out=$(go test -run '^$' -bench 'SlowReader|PacedReader' -benchtime 1x ./ftvs/netstack/interop)
echo "$out" | grep -E '^Benchmark'
metric() { echo "$out" | awk -v b="$1" '$1 ~ "^"b {for (i=1;i<=NF;i++) if ($(i+1)=="stall-ms") print $i}'; }
printf 'netstack: slow reader longest stall, curl --limit-rate 1500k: stack %s ms, kernel %s ms; paced reader blocked read: stack %s ms, kernel %s ms\n' \
	"$(metric BenchmarkSlowReaderStack)" "$(metric BenchmarkSlowReaderKernel)" "$(metric BenchmarkPacedReaderStack)" "$(metric BenchmarkPacedReaderKernel)"

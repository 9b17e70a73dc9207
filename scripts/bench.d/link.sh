#!/usr/bin/env bash
# CoServer link and lockstep output rule over a veth pair between two network
# namespaces (needs root): link round trip through the whole session (AEAD,
# framing, queues; the peer in this process, and in a child process as the
# daemons are), small-message rate, bulk MB/s, and the latency the
# output rule adds to one input's output (lockstep with a synced peer vs
# solo). Nothing is asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
if [[ $(id -u) -ne 0 ]]; then
	echo "link: skipped (needs root for network namespaces)"
	exit 0
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
go test -run='^$' -bench='BenchmarkLink' -benchtime=2s ./ftvs/link >"$out" 2>&1 || { cat "$out"; exit 1; }
go test -run='^$' -bench='BenchmarkOutput' -benchtime=2s ./ftvs/lockstep >>"$out" 2>&1 || { cat "$out"; exit 1; }
go test -run='^$' -bench='BenchmarkReintegrationPause' -benchtime=2x -timeout 20m ./ftvs/lockstep >>"$out" 2>&1 || { cat "$out"; exit 1; }
awk '
/^BenchmarkLinkRTT-/     { for (i=1;i<=NF;i++) { if ($(i+1)=="ns/op") rtt=$i/1000; if ($(i+1)=="heartbeat-rtt-µs") hb=$i } }
/^BenchmarkLinkRTTProcess/ { for (i=1;i<=NF;i++) if ($(i+1)=="ns/op") prtt=$i/1000 }
/^BenchmarkLinkSmall/    { for (i=1;i<=NF;i++) { if ($(i+1)=="msgs/s") sm=$i; if ($(i+1)=="MB/s") smb=$i } }
/^BenchmarkLinkBulk/     { for (i=1;i<=NF;i++) { if ($(i+1)=="MB/s") bulk=$i; if ($(i+1)=="msgs/s") bm=$i } }
/^BenchmarkOutputSolo/   { for (i=1;i<=NF;i++) if ($(i+1)=="ns/op") solo=$i/1000 }
/^BenchmarkOutputLockstep/ { for (i=1;i<=NF;i++) if ($(i+1)=="ns/op") ls=$i/1000 }
/^BenchmarkReintegrationPause/ {
	split($1, a, "="); c=a[2]; sub(/-[0-9]+$/, "", c); conns[++nr]=c
	for (i=1;i<=NF;i++) { if ($(i+1)=="pause-µs") rp[nr]=$i; if ($(i+1)=="join-ms") rj[nr]=$i; if ($(i+1)=="snapshot-KiB") rs[nr]=$i }
}
END {
	printf "%-46s %12s\n", "measure (veth pair, one link)", "value"
	printf "%-46s %9.1f µs\n", "link round trip, 64 B message and echo", rtt
	printf "%-46s %9.1f µs\n", "link round trip, echo in another process", prtt
	printf "%-46s %9.1f µs\n", "link heartbeat RTT (ping/pong)", hb
	printf "%-46s %9.0f /s\n", "64 B messages", sm
	printf "%-46s %9.1f MB/s\n", "64 KiB messages", bulk
	printf "%-46s %9.1f µs\n", "input to output, solo", solo
	printf "%-46s %9.1f µs\n", "input to output, lockstep (output rule)", ls
	printf "%-46s %9.1f µs  (goal <= link RTT + 50 = %.1f)\n", "added by the output rule", ls-solo, rtt+50
	for (k=1;k<=nr;k++) {
		printf "%-46s %9.2f ms  (snapshot %.0f KiB, join %.0f ms; goal <= 50 ms)\n", \
			sprintf("reintegration pause, %s downloads (loopback)", conns[k]), rp[k]/1000, rs[k], rj[k]
	}
}' "$out"

#!/usr/bin/env bash
# make demo: two CoServers in network namespaces serve one virtual server; a
# client downloads a file while the primary is killed (SIGKILL), the killed
# node is restarted and rejoins, and then the other node is killed.
# Needs root. Cleans up after itself, also when interrupted.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MIB=${DEMO_SIZE_MIB:-512}
RATE=${DEMO_RATE:-40M}          # curl --limit-rate, so the download spans the kills
P=${DEMO_PREFIX:-fd4demo}       # namespace prefix
BIN=${FTVS_BIN:-$PWD/bin/ftvs}
WORK=$(mktemp -d /tmp/ftvs-demo.XXXXXX)
KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
VSIP=10.97.0.100
VSMAC=02:f7:00:00:00:01

if [[ $(id -u) -ne 0 ]]; then echo "demo: needs root (network namespaces)" >&2; exit 1; fi
./scripts/deps.sh
[[ -x $BIN ]] || make build >/dev/null

pids=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	# Whatever still runs inside the demo's namespaces was started by us.
	for n in lan c1 c2 cli; do
		for p in $(ip netns pids "$P-$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	done
	wait 2>/dev/null
	for n in lan c1 c2 cli; do ip netns del "$P-$n" 2>/dev/null; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'echo "demo: interrupted" >&2; exit 130' INT TERM

say() { printf '%s demo: %s\n' "$(date +%T.%3N)" "$*"; }
in_ns() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

say "network: namespaces $P-{lan,c1,c2,cli}; production and management bridges; two crossover links"
for n in lan c1 c2 cli; do ip netns del "$P-$n" 2>/dev/null || true; ip netns add "$P-$n"; in_ns $n ip link set lo up; done
in_ns lan ip link add brp type bridge
in_ns lan ip link add brm type bridge
veth() { # ns1 if1 ns2 if2
	ip -n "$P-$1" link add "$2" type veth peer name "$4" netns "$P-$3"
	ip -n "$P-$1" link set "$2" up
	ip -n "$P-$3" link set "$4" up
}
for i in 1 2; do
	veth c$i prod lan p$i; in_ns lan ip link set p$i master brp
	veth c$i mgmt lan m$i; in_ns lan ip link set m$i master brm
	in_ns c$i ip addr add 10.98.0.$i/24 dev mgmt
done
veth cli eth0 lan pc; in_ns lan ip link set pc master brp
in_ns cli ip addr add 10.97.0.10/24 dev eth0
in_ns lan ip link set brp up; in_ns lan ip link set brm up
for l in 1 2; do
	veth c1 cs$l c2 cs$l
	in_ns c1 ip addr add 10.99.$l.1/24 dev cs$l
	in_ns c2 ip addr add 10.99.$l.2/24 dev cs$l
done

mkdir -p "$WORK/www"
say "content: $SIZE_MIB MiB of random bytes"
head -c "${SIZE_MIB}M" /dev/urandom >"$WORK/www/big.bin"
WANT=$(sha256sum "$WORK/www/big.bin" | cut -d' ' -f1)

for i in 1 2; do
	o=$((3 - i))
	cat >"$WORK/node$i.yaml" <<EOF
node: $i
pair_key: $KEY
links:
  - {interface: cs1, local: 10.99.1.$i:7470, peer: 10.99.1.$o:7470}
  - {interface: cs2, local: 10.99.2.$i:7470, peer: 10.99.2.$o:7470}
redirected: {interface: prod}
management: {listen: 10.98.0.$i:7443, peer: 10.98.0.$o:7443}
vs:
  mac: $VSMAC
  ip: $VSIP/24
  services: {http: {port: 80}}
  content: $WORK/www
state_dir: $WORK/state$i
EOF
done

declare -A pid
start() {
	# ip netns exec execs the daemon: $! is the daemon itself.
	ip netns exec "$P-c$1" "$BIN" coserver --config "$WORK/node$1.yaml" >>"$WORK/node$1.log" 2>&1 &
	pid[$1]=$!
	pids+=($!)
}
status() { in_ns c$1 "$BIN" status --addr 10.98.0.$1:7443 --json 2>/dev/null; }
field() { sed -n "s/^  \"$2\": \"\{0,1\}\([^\",]*\).*/\1/p" <<<"$1" | head -1; }
role() { field "$(status "$1")" role; }
wait_for() { # what node role [peer]
	local t=0
	while ((t < 300)); do
		local s; s=$(status "$2" || true)
		if [[ $(field "$s" role) == "$3" && ( -z ${4:-} || $(field "$s" peer) == "$4" ) ]]; then return 0; fi
		sleep 0.1; t=$((t + 1))
	done
	echo "demo: timed out waiting for $1" >&2; tail -20 "$WORK/node$2.log" >&2; exit 1
}

say "starting CoServer 1 and CoServer 2"
start 1; start 2
wait_for "the pair to sync" 1 primary synced
say "node 1 primary, node 2 secondary (in sync)"

say "client: curl --limit-rate $RATE http://$VSIP/big.bin"
ip netns exec "$P-cli" bash -o pipefail -c "curl -sS --fail --limit-rate $RATE http://$VSIP/big.bin | '$BIN' coserver stallmeter --marks '$WORK/kills' >'$WORK/result.json'; echo \$? >'$WORK/curl.rc'" &
CURL=$!
pids+=($CURL)

total=$((SIZE_MIB * 1024 * 1024))
wait_bytes() { # fraction of the file the VS must have sent
	local want=$(($1 * total / 100)) t=0
	while ((t < 1200)); do
		local b; b=$(in_ns cli cat /sys/class/net/eth0/statistics/rx_bytes)
		((b - rx0 >= want)) && return 0
		sleep 0.1; t=$((t + 1))
	done
}
rx0=$(in_ns cli cat /sys/class/net/eth0/statistics/rx_bytes)
wait_bytes 30
say "kill -9 the primary (node 1) at ~30% of the download"
date +%s%N >>"$WORK/kills"
kill -9 "${pid[1]}"
wait "${pid[1]}" 2>/dev/null || true
wait_for "node 2 to go live" 2 primary
say "node 2 is primary (went live)"
wait_bytes 50
say "restart node 1"
start 1
wait_for "node 1 to rejoin" 2 primary synced
s2=$(status 2)
PAUSE=$(field "$s2" last_pause_us)
say "node 1 rejoined as secondary (reintegration pause ${PAUSE} us on the primary)"
wait_bytes 75
say "kill -9 node 2 (now the primary) at ~75%"
date +%s%N >>"$WORK/kills"
kill -9 "${pid[2]}"
wait "${pid[2]}" 2>/dev/null || true
wait_for "node 1 to go live" 1 primary
say "node 1 is primary again"
say "ftvs status on node 1:"
in_ns c1 "$BIN" status --addr 10.98.0.1:7443 | sed 's/^/    /' || true
wait "$CURL" || true
rc=$(cat "$WORK/curl.rc" 2>/dev/null || echo "?")
res=$(cat "$WORK/result.json" 2>/dev/null || echo '{}')
got=$(sed -n 's/.*"sha256":"\([0-9a-f]*\)".*/\1/p' <<<"$res")
bytes=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' <<<"$res")
stall=$(sed -n 's/.*"max_stall_ms":\([0-9.]*\).*/\1/p' <<<"$res")
kstalls=$(sed -n 's/.*"stalls_at_marks_ms":\[\([0-9.,]*\)\].*/\1/p' <<<"$res" | tr ',' ' ')
echo
echo "=== ftvs demo summary ==="
echo "download:            ${bytes:-0} of $total bytes, curl exit status $rc (no retries)"
if [[ $got == "$WANT" ]]; then echo "sha256:              match ($WANT)"; else echo "sha256:              MISMATCH (got ${got:-none})"; fi
printf 'client stall at each kill: %s ms\n' "$(for s in $kstalls; do printf '%.0f ' "$s"; done)"
printf 'longest client stall: %.0f ms (any cause, curl --limit-rate pauses included)\n' "${stall:-0}"
echo "reintegration pause: ${PAUSE:-?} us (primary's loop stopped for the snapshot)"
[[ $got == "$WANT" && $rc == 0 ]]

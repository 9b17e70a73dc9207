#!/usr/bin/env bash
# installer: a pair of unattended installs in network namespaces (two
# crossover veths, a production and a management bridge with a station each),
# file-backed disks of 10 GiB (sparse): the time of each step on both nodes,
# with 1 s beacon windows; then the dry run alone. Needs root and iproute2.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
BIN=${BIN:-bin/ftvs}
[[ -x $BIN ]] || make -s build
if [[ $(id -u) -ne 0 ]]; then echo "installer: needs root (namespaces); skipped"; exit 0; fi
P=fi6z
work=$(mktemp -d /tmp/ftvs-bench-installer.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for ns in a b p m; do ip netns del $P$ns 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
for ns in a b p m; do
	ip netns del $P$ns 2>/dev/null || true
	ip netns add $P$ns
	ip -n $P$ns link set lo up
	ip netns exec $P$ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
for i in 1 3; do
	ip link add ${P}x$i netns ${P}a type veth peer name ${P}y$i netns ${P}b
	ip -n ${P}a link set ${P}x$i name nic$i
	ip -n ${P}b link set ${P}y$i name nic$i
done
for sw in p:nic0:192.168.50.9 m:nic2:10.0.0.1; do
	IFS=: read -r ns nic ip <<<"$sw"
	ip -n $P$ns link add br0 type bridge
	ip -n $P$ns link set br0 up
	ip -n $P$ns addr add $ip/24 dev br0
	for n in a b; do
		ip link add ${P}t$n netns $P$n type veth peer name port$n netns $P$ns
		ip -n $P$n link set ${P}t$n name $nic
		ip -n $P$ns link set port$n master br0 up
	done
	# the station: broadcast pings from the bridge's address
	ip netns exec $P$ns ping -q -b -i 0.2 ${ip%.*}.255 >/dev/null 2>&1 &
	pids+=($!)
done
inv=$PWD/testdata/installer/inventory.json
pol=$PWD/testdata/installer/hwpolicy.yaml
for n in a b; do
	truncate -s 10G "$work/$n.img"
	cat >"$work/$n.yaml" <<EOC
version: 1
pair_key: "5f1c0d3e8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
nics: {scan: all, listen: 1s}
addresses: {management: [10.0.0.11/24, 10.0.0.12/24]}
disk: {target: "$work/$n.img"}
virtual_disks: [{name: boot, size: 512MiB}, {name: data, size: 8GiB}]
vs: {mac: "02:f7:00:00:00:01", ip: 192.168.50.10/24}
hwcheck: {policy: "$pol"}
EOC
done
# run_pair ARGS: both installers at once; returns when both reached the
# launch step or ended (an install with the runtime in the build execs
# ftvs coserver, which is stopped here).
run_pair() {
	local mine=()
	for n in a b; do
		ip netns exec $P$n "$BIN" install --config "$work/$n.yaml" --inventory "$inv" --state-dir "$work/state$n" "$@" >"$work/$n.out" 2>&1 &
		mine+=($!)
		pids+=($!)
	done
	for ((i = 0; i < 1200; i++)); do
		done_n=0
		for k in 0 1; do
			if ! kill -0 "${mine[$k]}" 2>/dev/null || grep -q 'exec ftvs coserver' "$work/$([[ $k == 0 ]] && echo a || echo b).out"; then
				done_n=$((done_n + 1))
			fi
		done
		((done_n == 2)) && break
		sleep 0.1
	done
	kill "${mine[@]}" 2>/dev/null || true
	wait "${mine[@]}" 2>/dev/null || true
}
t0=$(date +%s%N)
run_pair
echo "pair install (ESP 96 MiB, system 256 MiB, VS boot 512 MiB, data 8 GiB; 1 s beacon windows): $(( ($(date +%s%N) - t0) / 1000000 )) ms wall for both"
for n in a b; do
	echo "  node $n: $(grep -oE '^\[[0-9]/6\] [A-Za-z]+|\(at [0-9.]+s\)' "$work/$n.out" | paste -sd' ' | sed 's/ (at/ at/g; s/)//g')"
done
for n in a b; do rm -f "$work/$n.img"; truncate -s 10G "$work/$n.img"; done
t0=$(date +%s%N)
run_pair --dry-run
echo "pair dry run: $(( ($(date +%s%N) - t0) / 1000000 )) ms wall for both ($(grep -oE 'nothing written.*' "$work/a.out"))"

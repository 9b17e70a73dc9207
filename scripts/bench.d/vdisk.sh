#!/usr/bin/env bash
# vdisk resync throughput on files, side by side in one run with plain dd and
# cp copying the same amount of data on the same filesystem. Nothing is
# asserted; the figures are printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
MB=${FTVS_BENCH_VDISK_MB:-512}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/ftvs-bench-vdisk.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Build from this tree (bin/ftvs may predate the vdisk commands).
go build -o "$work/ftvs" ./cmd/ftvs
bin=$work/ftvs
id=7d9b0e52-3c4f-4d7e-8f16-0b1a2c3d4e5f
"$bin" vdisk create --size "${MB}MiB" --node 1 --uuid $id "$work/a.img" >/dev/null
off=$("$bin" vdisk inspect --json "$work/a.img" | sed -n 's/.*"data_offset": \([0-9]*\).*/\1/p')
# Random data in node 1's data area (written once, so both tools read it
# from the page cache alike).
head -c $((MB << 20)) /dev/urandom >"$work/src.bin"
dd if="$work/src.bin" of="$work/a.img" bs=1M seek=$((off >> 20)) conv=notrunc,fdatasync status=none

secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}'; }
rate() { awk -v mb="$MB" -v t="$1" 'BEGIN{printf "%.1f", mb/t}'; }

best() { awk -v a="$1" -v b="$2" 'BEGIN{print (a == "" || b < a) ? b : a}'; }
t_full= t_dd= t_cp= t_ver=
# Three rounds, best of each (the machine is shared; the best run is the
# least disturbed one).
for round in 1 2 3; do
	rm -f "$work/b.img" "$work/dd.bin" "$work/cp.bin"
	"$bin" vdisk create --size "${MB}MiB" --node 2 --uuid $id "$work/b.img" >/dev/null
	# Full sync into a new copy: every byte read, written, and fdatasync'ed
	# at checkpoints (64 MiB) and at the end.
	t_full=$(best "$t_full" "$(secs "$bin" vdisk resync "$work/a.img" "$work/b.img")")
	# dd of the same data with one fdatasync at the end.
	t_dd=$(best "$t_dd" "$(secs dd if="$work/src.bin" of="$work/dd.bin" bs=1M conv=fdatasync status=none)")
	# cp, then sync of that file.
	t_cp=$(best "$t_cp" "$(secs bash -c "cp '$work/src.bin' '$work/cp.bin' && sync '$work/cp.bin'")")
	# verify: both copies checksummed region by region (the skip-equal cost).
	t_ver=$(best "$t_ver" "$(secs "$bin" vdisk verify "$work/a.img" "$work/b.img")")
done
if "$bin" vdisk verify "$work/a.img" "$work/b.img" >/dev/null; then same=yes; else same=NO; fi

printf '%-42s %8s MiB/s\n' "vdisk full resync ${MB} MiB, best of 3" "$(rate "$t_full")"
printf '%-42s %8s MiB/s\n' "dd bs=1M conv=fdatasync, same data" "$(rate "$t_dd")"
printf '%-42s %8s MiB/s\n' "cp + sync, same data" "$(rate "$t_cp")"
printf '%-42s %8s MiB/s (both copies read)\n' "vdisk verify (SHA-256 per 1 MiB)" "$(rate "$t_ver")"
printf '%-42s %8s\n' "copies identical after resync (verify)" "$same"
printf '%-42s %8s\n' "resync / dd ratio" "$(awk -v a="$t_dd" -v b="$t_full" 'BEGIN{printf "%.2f", a/b}')"

#!/usr/bin/env bash
# Boot media: image build time with a cold and a warm kernel cache, the
# time of each medium from a built initramfs, and boot-to-installer time
# per boot path (QEMU TCG, 1 vCPU, 1 GiB; from the boot tests' own logs).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
work=$(mktemp -d /tmp/ftvs-bench-images.XXXXXX)
trap 'rm -rf "$work"' EXIT
# This tree's ftvs, whatever bin/ holds.
BIN=$work/ftvs
CGO_ENABLED=0 GOAMD64=v1 go build -o "$BIN" ./cmd/ftvs

secs() { local t0=$1; echo "$(( ($(date +%s%N) - t0) / 1000000 ))" | awk '{printf "%.1f s", $1/1000}'; }

t0=$(date +%s%N)
FTVS_CACHE=$work/cold-cache $BIN image initramfs --out "$work/cold.cpio.gz" >/dev/null 2>&1
echo "initramfs, cold kernel cache (apt-get download + unpack + modules.dep + build): $(secs "$t0")"

t0=$(date +%s%N)
FTVS_CACHE=$work/cold-cache $BIN image initramfs --out "$work/initramfs.cpio.gz" >/dev/null 2>&1
echo "initramfs, warm kernel cache: $(secs "$t0")   size $(du -h "$work/initramfs.cpio.gz" | cut -f1)"

for m in usb iso pxe; do
	t0=$(date +%s%N)
	FTVS_CACHE=$work/cold-cache $BIN image $m --initramfs "$work/initramfs.cpio.gz" --out "$work/out-$m" >/dev/null 2>&1
	echo "$m from a built initramfs: $(secs "$t0")   size $(du -sh "$work/out-$m" | cut -f1)"
done

echo "boot to installer banner (QEMU TCG):"
go test -count=1 -p 1 -parallel 1 -v -timeout 15m -run 'TestDirectBoot|TestUSBUnderOVMF|TestISOUnder|TestPXEUnder' ./images/boottest/ 2>&1 |
	grep -E 'QEMU start to installer banner|config fetch|setup \(once' | sed 's/^ *[a-z_]*test.go:[0-9]*: /  /' | sort -u

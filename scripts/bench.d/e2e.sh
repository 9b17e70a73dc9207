#!/usr/bin/env bash
# End to end in QEMU (TCG, 1 vCPU and 1 GiB per machine): build the
# installer with `ftvs image initramfs --config testdata/e2e/install.yaml`,
# then the unattended pair install from power-on to the VS serving (goal
# <= 10 minutes under TCG), each stage on the way, and a download across
# the primary's QEMU being killed (images/e2e TestPairInstallAndFailover).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
work=$(mktemp -d /tmp/fe7-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
CGO_ENABLED=0 GOAMD64=v1 go build -o "$work/ftvs" ./cmd/ftvs

t0=$(date +%s%N)
"$work/ftvs" image initramfs --config testdata/e2e/install.yaml --out "$work/installer.cpio.gz" >"$work/build.log" 2>&1 ||
	{ cat "$work/build.log"; exit 1; }
echo "installer initramfs with the e2e config (warm kernel cache): $(( ($(date +%s%N) - t0) / 1000000 )) ms"

FTVS_E2E_INITRAMFS=$work/installer.cpio.gz go test -count=1 -v -timeout 15m \
	-run '^TestPairInstallAndFailover$' ./images/e2e/ >"$work/test.log" 2>&1 ||
	{ tail -n 80 "$work/test.log"; exit 1; }
sed -n 's/^ *pair_test.go:[0-9]*: stage /pair install, /p; s/^ *pair_test.go:[0-9]*: \(killed .*\)/failover: \1/p' "$work/test.log"

#!/usr/bin/env bash
# make bench: every figure is measured side by side in this one run and
# printed; nothing here is asserted. Sections are added as features land.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
for b in scripts/bench.d/*.sh; do
	[[ -e $b ]] || continue
	echo "== $(basename "$b" .sh)"
	bash "$b"
done

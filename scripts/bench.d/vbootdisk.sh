#!/usr/bin/env bash
# vbootdisk: the VS boot disk store streaming a 64 MiB file in 64 KiB chunks
# (FTP STOR/RETR's pattern): in memory with 512 B and 4 KiB clusters, and on
# a file-backed disk (page cache) beside go-diskfs v1.9.4 on the same image.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
go test -p 1 -count=1 -run '^$' -bench 'Stream' -benchtime 3x ./ftvs/vbootdisk/ |
	awk '/^Benchmark/ {sub(/-[0-9]+$/, "", $1); printf "%-45s %s MB/s\n", $1, $(NF-1)}'

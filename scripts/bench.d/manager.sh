#!/usr/bin/env bash
# manager: what an alert costs the caller (Notify, three channels) and what
# one authenticated status call over HTTPS costs (ftvs ctl status, the page).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
go test -p 1 -run '^$' -bench 'BenchmarkNotify' -benchtime 200000x ./ftvs/manager/alert | awk '/^Benchmark/ {print "alert Notify (3 channels):", $3, $4}'
go test -p 1 -run '^$' -bench 'BenchmarkStatusHTTPS' -benchtime 2s ./ftvs/manager/api | awk '/^Benchmark/ {print "GET /api/v1/status over TLS:", $3, $4}'

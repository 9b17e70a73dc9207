package coserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// TestDiskServicesBench prints the disk and FTP figures for the
// real pair (scripts/bench.d/disks.sh runs it with FTVS_BENCH=1): fio 4 KiB
// random read and write at queue depth 16 on the NBD export, and an FTP
// download, each in lockstep and then with the same runtime alone (the
// secondary killed), side by side in each round. Nothing is asserted but
// that every run completes.
func TestDiskServicesBench(t *testing.T) {
	if os.Getenv("FTVS_BENCH") == "" {
		t.Skip("benchmark: set FTVS_BENCH=1 (scripts/bench.d/disks.sh)")
	}
	netnstest.Require(t, "fio")
	rounds := 2
	if n, err := strconv.Atoi(os.Getenv("FTVS_BENCH_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	p := newPair(t, pairOpts{sizeMiB: 128, prefix: "fdb"})
	p.withDisks(t, "256MiB")
	p.startPair()
	p.waitRole(1, "primary", "synced", 90*time.Second)

	fio := func(rw string) float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		c := p.cli.Cmd(ctx, "fio", "--name=bench", "--ioengine=nbd", "--uri=nbd://"+vsIP+"/data",
			"--rw="+rw, "--bs=4k", "--iodepth=16", "--size=192M", "--time_based", "--runtime=6",
			"--output-format=json")
		c.Dir = p.dir
		out, err := c.Output()
		if err != nil {
			t.Fatalf("fio %s: %v\n%s", rw, err, out)
		}
		var res struct {
			Jobs []struct {
				Read, Write struct {
					IOPS float64 `json:"iops"`
				}
			} `json:"jobs"`
		}
		if err := json.Unmarshal(out[strings.IndexByte(string(out), '{'):], &res); err != nil || len(res.Jobs) == 0 {
			t.Fatalf("fio %s: output: %v\n%s", rw, err, out)
		}
		if rw == "randread" {
			return res.Jobs[0].Read.IOPS
		}
		return res.Jobs[0].Write.IOPS
	}
	ftp := func() float64 {
		out, err := p.cli.Run("curl", "-sS", "--fail", "-o", "/dev/null", "-w", "%{speed_download}", "ftp://"+vsIP+"/"+p.file)
		if err != nil {
			t.Fatalf("ftp download: %v", err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(out), 64)
		if err != nil {
			t.Fatalf("ftp download: speed %q: %v", out, err)
		}
		return v / 1e6
	}
	type figures struct{ read, write, ftp []float64 }
	var lock, solo figures
	measure := func(f *figures) {
		f.read = append(f.read, fio("randread"))
		f.write = append(f.write, fio("randwrite"))
		f.ftp = append(f.ftp, ftp())
	}
	for round := range rounds {
		measure(&lock)
		p.kill(2)
		p.waitRole(1, "primary", "", 10*time.Second)
		measure(&solo)
		if round < rounds-1 {
			p.start(2)
			p.waitRole(1, "primary", "synced", 90*time.Second)
		}
	}
	fmt.Printf("disk and FTP benchmark (%d CPUs; the pair's two daemons and the client share them; %d rounds, lockstep then alone in each)\n", numCPU(), rounds)
	fmt.Printf("| figure | lockstep | alone | lockstep / alone |\n|---|---|---|---|\n")
	row := func(name, unit string, l, s []float64) {
		ml, ms := median(l), median(s)
		fmt.Printf("| %s | %.0f %s | %.0f %s | %.2f (goal >= 0.8; rounds %s vs %s) |\n", name, ml, unit, ms, unit, ml/ms, rounds3(l), rounds3(s))
	}
	row("NBD fio 4K random read, qd16", "IOPS", lock.read, solo.read)
	row("NBD fio 4K random write, qd16", "IOPS", lock.write, solo.write)
	row("FTP download", "MB/s", lock.ftp, solo.ftp)
}

// Package bench measures the solo VS against the Linux kernel's own TCP on
// the same veth path. It is run by scripts/bench.d/vs.sh (FTVS_BENCH=1) and
// prints figures; it asserts nothing about speed.
package bench

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/port"
	"github.com/ftvs/ftvs/ftvs/vsrun"
	"github.com/ftvs/ftvs/ftvs/vsrun/internal/vstest"
)

type result struct {
	name      string
	bulk      float64 // bytes/s, median of runs
	bulkRuns  []float64
	rps       float64
	framesBig float64 // driver frames (in+out) per second during bulk
	framesRPS float64 // during the small-file run
	gsoShare  float64
}

func TestVSBench(t *testing.T) {
	if os.Getenv("FTVS_BENCH") != "1" {
		t.Skip("benchmark: run by scripts/bench.d/vs.sh (FTVS_BENCH=1)")
	}
	size := int64(1 << 30)
	if s, err := strconv.ParseInt(os.Getenv("FTVS_BENCH_BYTES"), 10, 64); err == nil && s > 0 {
		size = s
	}
	dir := vstest.Dir(t)
	vstest.WriteFile(t, filepath.Join(dir, "big.bin"), size, 1)
	vstest.WriteFile(t, filepath.Join(dir, "small.bin"), 1024, 2)

	var res []result
	for _, k := range []port.Kind{port.AFPacket, port.TAP} {
		tp := vstest.Start(t, vstest.Options{Kind: k}, dir)
		r := measure(t, tp, "VS solo, "+string(k), size, tp.Solo)
		if err := tp.Stop(); err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	res = append(res, kernel(t, dir, size))

	kern := res[len(res)-1]
	fmt.Printf("vs: bulk download of %d MiB over one veth pair (curl, median of 3), kernel %s\n", size>>20, hostInfo())
	for _, r := range res {
		fmt.Printf("  %-22s %8.0f MB/s %6.2f Gbit/s  ratio to kernel %.2f  (runs %s)\n",
			r.name, r.bulk/1e6, r.bulk*8/1e9, r.bulk/kern.bulk, runs(r.bulkRuns))
	}
	fmt.Printf("vs: small files (1 KiB GET, keep-alive), 50 connections, wrk -t2 -d5s\n")
	for _, r := range res {
		fmt.Printf("  %-22s %8.0f req/s  ratio to kernel %.2f\n", r.name, r.rps, r.rps/kern.rps)
	}
	fmt.Printf("vs: frames through the solo driver (inputs + outputs per second)\n")
	for _, r := range res[:len(res)-1] {
		fmt.Printf("  %-22s bulk %8.0f frames/s (%.0f%% of output frames GSO)   small files %8.0f frames/s\n",
			r.name, r.framesBig, r.gsoShare*100, r.framesRPS)
	}
}

func hostInfo() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return strings.TrimSpace(string(b))
}

func runs(v []float64) string {
	var s []string
	for _, x := range v {
		s = append(s, fmt.Sprintf("%.0f", x/1e6))
	}
	return strings.Join(s, "/") + " MB/s"
}

func median(v []float64) float64 {
	c := append([]float64(nil), v...)
	sort.Float64s(c)
	return c[len(c)/2]
}

var rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

func measure(t *testing.T, tp *vstest.Topo, name string, size int64, solo *vsrun.Solo) result {
	r := result{name: name}
	url := vstest.URL("big.bin")
	for i := 0; i < 3; i++ {
		var before vsrun.Stats
		if solo != nil {
			before = solo.Driver.Stats()
		}
		start := time.Now()
		out := tp.Client.MustRun("curl", "-sS", "--fail", "--max-time", "300", "-o", "/dev/null", "-w", "%{size_download}", url)
		el := time.Since(start).Seconds()
		if n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64); n != size {
			t.Fatalf("%s: downloaded %s bytes of %d", name, out, size)
		}
		r.bulkRuns = append(r.bulkRuns, float64(size)/el)
		if solo != nil {
			after := solo.Driver.Stats()
			fr := float64(after.Inputs-before.Inputs+after.FramesOut-before.FramesOut) / el
			r.framesBig = max(r.framesBig, fr)
			if d := after.FramesOut - before.FramesOut; d > 0 {
				r.gsoShare = float64(after.GSOOut-before.GSOOut) / float64(d)
			}
		}
	}
	r.bulk = median(r.bulkRuns)
	var before vsrun.Stats
	if solo != nil {
		before = solo.Driver.Stats()
	}
	start := time.Now()
	out := tp.Client.MustRun("wrk", "-t2", "-c50", "-d5s", vstest.URL("small.bin"))
	el := time.Since(start).Seconds()
	m := rpsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: wrk printed no rate: %s", name, out)
	}
	if strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		fmt.Printf("  (%s: wrk reported errors: %s)\n", name, strings.ReplaceAll(strings.TrimSpace(out[strings.Index(out, "Requests/sec")-0:]), "\n", "; "))
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	if solo != nil {
		after := solo.Driver.Stats()
		r.framesRPS = float64(after.Inputs-before.Inputs+after.FramesOut-before.FramesOut) / el
	}
	return r
}

// kernel serves the same directory with Go's net/http on the kernel's TCP,
// from the VS's namespace position (an address on v0).
func kernel(t *testing.T, dir string, size int64) result {
	tp := vstest.Net(t, vstest.Options{Kind: port.AFPacket})
	tp.VS.Addr("v0", vstest.VSIP+"/24")
	var ln net.Listener
	if err := tp.VS.Do(func() (err error) { ln, err = net.Listen("tcp4", vstest.VSIP+":80"); return }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	return measure(t, tp, "Linux kernel, net/http", size, nil)
}

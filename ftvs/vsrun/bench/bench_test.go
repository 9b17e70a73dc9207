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
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
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
	p50, p99  string // request latency under that load (wrk --latency)
}

func TestVSBench(t *testing.T) {
	if os.Getenv("FTVS_BENCH") != "1" {
		t.Skip("benchmark: run by scripts/bench.d/vs.sh (FTVS_BENCH=1)")
	}
	netnstest.Require(t, "curl", "wrk")
	size := int64(1 << 30)
	if s, err := strconv.ParseInt(os.Getenv("FTVS_BENCH_BYTES"), 10, 64); err == nil && s > 0 {
		size = s
	}
	dir := vstest.Dir(t)
	vstest.WriteFile(t, filepath.Join(dir, "big.bin"), size, 1)
	vstest.WriteFile(t, filepath.Join(dir, "small.bin"), 1024, 2)

	// All three servers are up at once and their runs interleave, so the
	// noise of a shared machine falls on each alike. The kernel server sits
	// on the VS's own veth end (a second address), the very same path.
	tpA := vstest.Start(t, vstest.Options{Kind: port.AFPacket}, dir)
	tpA.VS.Addr("v0", kernelIP+"/24")
	var ln net.Listener
	if err := tpA.VS.Do(func() (err error) { ln, err = net.Listen("tcp4", kernelIP+":80"); return }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	tpT := vstest.Start(t, vstest.Options{Kind: port.TAP}, dir)
	servers := []*server{
		{r: result{name: "VS solo, afpacket"}, tp: tpA, base: "http://" + vstest.VSIP + "/", solo: tpA.Solo},
		{r: result{name: "VS solo, tap+bridge"}, tp: tpT, base: "http://" + vstest.VSIP + "/", solo: tpT.Solo},
		{r: result{name: "Linux kernel, net/http"}, tp: tpA, base: "http://" + kernelIP + "/"},
	}
	for round := 0; round < 5; round++ {
		for _, s := range servers {
			s.bulkRun(t, size)
		}
	}
	var res []result
	for _, s := range servers {
		s.r.bulk = median(s.r.bulkRuns)
		s.smallRun(t)
		res = append(res, s.r)
	}
	kern := res[len(res)-1]
	fmt.Printf("vs: bulk download of %d MiB over one veth pair (curl, median of 5), kernel %s\n", size>>20, hostInfo())
	for _, r := range res {
		fmt.Printf("  %-22s %8.0f MB/s %6.2f Gbit/s  ratio to kernel %.2f  (runs %s)\n",
			r.name, r.bulk/1e6, r.bulk*8/1e9, r.bulk/kern.bulk, runs(r.bulkRuns))
	}
	fmt.Printf("vs: small files (1 KiB GET, keep-alive), 50 connections, wrk -t2 -d5s\n")
	for _, r := range res {
		fmt.Printf("  %-22s %8.0f req/s  ratio to kernel %.2f  latency p50 %s p99 %s\n", r.name, r.rps, r.rps/kern.rps, r.p50, r.p99)
	}
	fmt.Printf("vs: frames through the solo driver (inputs + outputs per second)\n")
	for _, r := range res[:len(res)-1] {
		fmt.Printf("  %-22s bulk %8.0f frames/s (%.0f%% of output frames GSO)   small files %8.0f frames/s\n",
			r.name, r.framesBig, r.gsoShare*100, r.framesRPS)
	}
}

func hostInfo() string {
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	load, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(load))
	if len(f) > 0 {
		f = f[:1]
	}
	gogc := os.Getenv("GOGC")
	if gogc == "" {
		gogc = strconv.Itoa(vsrun.GCPercent)
	}
	return fmt.Sprintf("%s, %d CPUs, load %s, GOGC %s", strings.TrimSpace(string(rel)), runtime.NumCPU(), strings.Join(f, ""), gogc)
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

var (
	rpsRE = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	p50RE = regexp.MustCompile(`(?m)^\s+50%\s+(\S+)`)
	p99RE = regexp.MustCompile(`(?m)^\s+99%\s+(\S+)`)
)

const kernelIP = "10.77.0.3"

type server struct {
	r    result
	tp   *vstest.Topo
	base string
	solo *vsrun.Solo
}

func (s *server) frames() uint64 {
	if s.solo == nil {
		return 0
	}
	st := s.solo.Driver.Stats()
	return st.Inputs + st.FramesOut
}

func (s *server) bulkRun(t *testing.T, size int64) {
	var before vsrun.Stats
	if s.solo != nil {
		before = s.solo.Driver.Stats()
	}
	start := time.Now()
	out := s.tp.Client.MustRun("curl", "-sS", "--fail", "--max-time", "300", "-o", "/dev/null", "-w", "%{size_download}", s.base+"big.bin")
	el := time.Since(start).Seconds()
	if n, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64); n != size {
		t.Fatalf("%s: downloaded %s bytes of %d", s.r.name, out, size)
	}
	s.r.bulkRuns = append(s.r.bulkRuns, float64(size)/el)
	if s.solo != nil {
		after := s.solo.Driver.Stats()
		s.r.framesBig = max(s.r.framesBig, float64(after.Inputs-before.Inputs+after.FramesOut-before.FramesOut)/el)
		if d := after.FramesOut - before.FramesOut; d > 0 {
			s.r.gsoShare = float64(after.GSOOut-before.GSOOut) / float64(d)
		}
	}
}

func (s *server) smallRun(t *testing.T) {
	before := s.frames()
	start := time.Now()
	out := s.tp.Client.MustRun("wrk", "-t2", "-c50", "-d5s", "--latency", s.base+"small.bin")
	el := time.Since(start).Seconds()
	m := rpsRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("%s: wrk printed no rate: %s", s.r.name, out)
	}
	if strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		fmt.Printf("  (%s: wrk reported errors: %s)\n", s.r.name, strings.ReplaceAll(strings.TrimSpace(out), "\n", "; "))
	}
	s.r.rps, _ = strconv.ParseFloat(m[1], 64)
	if m := p50RE.FindStringSubmatch(out); m != nil {
		s.r.p50 = m[1]
	}
	if m := p99RE.FindStringSubmatch(out); m != nil {
		s.r.p99 = m[1]
	}
	s.r.framesRPS = float64(s.frames()-before) / el
}

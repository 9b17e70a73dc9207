package coserver_test

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLockstepBench prints lockstep-vs-solo figures (scripts/bench.d/
// lockstep.sh runs it with FTVS_BENCH=1). Nothing is asserted but
// correctness of each download.
func TestLockstepBench(t *testing.T) {
	if os.Getenv("FTVS_BENCH") == "" {
		t.Skip("benchmark: set FTVS_BENCH=1 (scripts/bench.d/lockstep.sh)")
	}
	kills := 20
	if n, err := strconv.Atoi(os.Getenv("FTVS_BENCH_KILLS")); err == nil && n >= 0 {
		kills = n
	}
	size := 512
	if n, err := strconv.Atoi(os.Getenv("FTVS_BENCH_MIB")); err == nil && n > 0 {
		size = n
	}
	// The daemons' default timeouts (peer_dead 120 ms), as deployed.
	p := newPair(t, pairOpts{sizeMiB: size, timeouts: "{heartbeat: 20ms}"})
	urls := make([]string, 300)
	for i := range urls {
		urls[i] = "http://" + vsIP + "/small.txt"
	}
	latencies := func() []time.Duration {
		out, err := p.cli.Run("curl", append([]string{"-sS", "--fail"}, interleave(urls)...)...)
		if err != nil {
			t.Fatalf("small requests: %v", err)
		}
		var ds []time.Duration
		for _, f := range strings.Fields(out) {
			if v, err := strconv.ParseFloat(f, 64); err == nil {
				ds = append(ds, time.Duration(v*float64(time.Second)))
			}
		}
		return ds[10:] // the first requests open the connection
	}
	linkBytes := func() int64 {
		var n int64
		for _, ifn := range []string{"cs1", "cs2"} {
			for _, dir := range []string{"rx_bytes", "tx_bytes"} {
				out, _ := p.cs[1].Run("cat", "/sys/class/net/"+ifn+"/statistics/"+dir)
				v, _ := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
				n += v
			}
		}
		return n
	}
	var solo, lock []float64
	var soloCPU, primCPU, secCPU []float64 // CPU seconds per GB downloaded
	var soloLat, lockLat []time.Duration
	var perByte []float64
	rounds := 3
	if n, err := strconv.Atoi(os.Getenv("FTVS_BENCH_ROUNDS")); err == nil && n >= 0 {
		rounds = n
	}
	for round := range rounds {
		s := p.cs[1].Start(ftvsBin, "vs", "run", "--iface", "prod", "--mac", vsMAC, "--ip", vsIP+"/24", "--root", p.dir+"/www")
		time.Sleep(300 * time.Millisecond)
		c0 := cpuSeconds(s.Process.Pid)
		d := p.download(p.file)
		p.check(d, fmt.Sprintf("solo round %d", round+1))
		soloCPU = append(soloCPU, (cpuSeconds(s.Process.Pid)-c0)/(float64(p.size)/1e9))
		solo = append(solo, float64(p.size)/d.res.Elapsed.Seconds()/1e6)
		soloLat = append(soloLat, latencies()...)
		_ = syscall.Kill(-s.Process.Pid, syscall.SIGKILL)
		_ = s.Wait()

		p.startPair()
		b0 := linkBytes()
		a0, s0 := cpuSeconds(p.procs[1].Process.Pid), cpuSeconds(p.procs[2].Process.Pid)
		d = p.download(p.file)
		p.check(d, fmt.Sprintf("lockstep round %d", round+1))
		gb := float64(p.size) / 1e9
		primCPU = append(primCPU, (cpuSeconds(p.procs[1].Process.Pid)-a0)/gb)
		secCPU = append(secCPU, (cpuSeconds(p.procs[2].Process.Pid)-s0)/gb)
		perByte = append(perByte, float64(linkBytes()-b0)/float64(p.size))
		lock = append(lock, float64(p.size)/d.res.Elapsed.Seconds()/1e6)
		lockLat = append(lockLat, latencies()...)
		p.kill(1)
		p.kill(2)
	}

	// Failover: kill whichever node is primary 0.4 s into a download,
	// restart it, let it rejoin, repeat.
	var stalls, pauses []time.Duration
	if kills > 0 {
		p.startPair()
		prim := 1
		for k := range kills {
			d := p.download(p.file)
			time.Sleep(400 * time.Millisecond)
			at := time.Now()
			p.kill(prim)
			other := 3 - prim
			p.waitRole(other, "primary", "", 10*time.Second)
			// Rejoin while the download still runs: the pause is taken
			// with a live connection in the snapshot.
			p.start(prim)
			st := p.waitRole(other, "primary", "synced", 30*time.Second)
			p.waitRole(prim, "secondary", "", 5*time.Second)
			p.check(d, fmt.Sprintf("failover %d", k+1))
			stalls = append(stalls, d.res.StallAround(at, 3*time.Second))
			pauses = append(pauses, time.Duration(st.LastPauseUS)*time.Microsecond)
			prim = other
		}
	}
	host, _ := os.Hostname()
	cpu := cpuModel()
	fmt.Printf("lockstep benchmark (%s, %s, %d CPUs, %d MiB file, curl in a namespace over veth + bridge)\n", host, cpu, numCPU(), size)
	fmt.Printf("| figure | value |\n|---|---|\n")
	ms, ml := median(solo), median(lock)
	fmt.Printf("| bulk download, solo VS (median of 3) | %.0f MB/s |\n", ms)
	fmt.Printf("| bulk download, lockstep pair (median of 3) | %.0f MB/s |\n", ml)
	fmt.Printf("| lockstep / solo | %.2f (goal >= 0.95; rounds solo %s, lockstep %s MB/s) |\n", ml/ms, rounds3(solo), rounds3(lock))
	sp50, sp99 := pct(soloLat, 50), pct(soloLat, 99)
	lp50, lp99 := pct(lockLat, 50), pct(lockLat, 99)
	fmt.Printf("| small request latency solo p50 / p99 | %s / %s |\n", us(sp50), us(sp99))
	fmt.Printf("| small request latency lockstep p50 / p99 | %s / %s |\n", us(lp50), us(lp99))
	fmt.Printf("| added by lockstep p50 / p99 | %s / %s |\n", us(lp50-sp50), us(lp99-sp99))
	fmt.Printf("| CoServer-link bytes per client byte | %.3f |\n", median(perByte))
	fmt.Printf("| CPU seconds per GB: solo VS / lockstep primary / secondary | %.2f / %.2f / %.2f |\n", median(soloCPU), median(primCPU), median(secCPU))
	if kills > 0 {
		fmt.Printf("| failover stall p50 / p99 / max (%d kills of the primary) | %s / %s / %s |\n", kills,
			msf(pct(stalls, 50)), msf(pct(stalls, 99)), msf(pct(stalls, 100)))
		fmt.Printf("| reintegration pause p50 / max (%d rejoins) | %s / %s |\n", kills, us(pct(pauses, 50)), us(pct(pauses, 100)))
	}
}

// interleave gives curl a "-o /dev/null -w FORMAT" before every URL so each
// transfer prints its own time on the shared connection.
func interleave(urls []string) []string {
	var a []string
	for _, u := range urls {
		a = append(a, "-o", "/dev/null", "-w", "%{time_total}\n", u)
	}
	return a
}

// cpuSeconds is a process's user+system CPU time so far.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

func rounds3(v []float64) string {
	var b strings.Builder
	for i, x := range v {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%.0f", x)
	}
	return b.String()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func pct(v []time.Duration, p int) time.Duration {
	if len(v) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), v...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s) - 1) * p / 100
	return s[i]
}

func us(d time.Duration) string  { return fmt.Sprintf("%d µs", d.Microseconds()) }
func msf(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return "unknown CPU"
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

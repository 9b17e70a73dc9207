package coserver_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// watchPrimary samples both nodes' status every period until stop is
// closed and returns the longest time between two samples that found an
// unfenced primary.
func (p *pair) watchPrimary(stop chan struct{}, period time.Duration) <-chan time.Duration {
	res := make(chan time.Duration, 1)
	go func() {
		var gap time.Duration
		last := time.Now()
		for {
			select {
			case <-stop:
				res <- gap
				return
			case <-time.After(period):
			}
			for i := 1; i <= 2; i++ {
				if s, err := p.status(i); err == nil && s.Role == "primary" && !s.Fenced {
					gap = max(gap, time.Since(last))
					last = time.Now()
					break
				}
			}
		}
	}()
	return res
}

// handOverTook is how long node i's last hand-over took, from its log
// (its events do not survive the re-execution that follows): from the
// moment it stopped stamping to the secondary's answer, so an upper bound
// on the time the VS had no primary stamping. -1: no hand-over logged.
func (p *pair) handOverTook(t *testing.T, i int) time.Duration {
	t.Helper()
	m := regexp.MustCompile(`handed the primary role over"[^\n]* took=(\S+)`).FindAllStringSubmatch(p.procs[i].Output(), -1)
	if m == nil {
		return -1
	}
	d, err := time.ParseDuration(m[len(m)-1][1])
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pingVS pings the VS from the client every 10 ms until the returned
// function is called; that returns the longest time between two replies
// and the number of replies (a client's view of the VS's availability).
func (p *pair) pingVS(t *testing.T) func() (time.Duration, int) {
	t.Helper()
	pr := p.cli.Start("ping", "-n", "-D", "-i", "0.01", vsIP)
	return func() (time.Duration, int) {
		_ = pr.Process.Kill()
		_ = pr.Wait() // reaped here: the cleanup has nothing left to wait for
		var gap time.Duration
		var last float64
		n := 0
		for _, m := range regexp.MustCompile(`\[(\d+\.\d+)\] \d+ bytes from`).FindAllStringSubmatch(pr.Output(), -1) {
			ts, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				gap = max(gap, time.Duration((ts-last)*float64(time.Second)))
			}
			last = ts
			n++
		}
		if n < 10 {
			t.Fatalf("the VS answered %d pings: %s", n, tailLines(pr.Output(), 10))
		}
		return gap, n
	}
}

func tailLines(s string, n int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// TestHandOverOutOfService takes the primary out of service during a
// download while its secondary is in sync: it hands the primary role over
// (no failover): the secondary goes live at once, with neither the peer
// timeout (1 s here) nor the split-brain guard's check, the download goes
// on on its TCP connection, the client's pings (every 10 ms) never go
// unanswered for 300 ms, no split-brain or divergence is seen, and the old primary rejoins as
// secondary by snapshot when brought back.
func TestHandOverOutOfService(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p := newPair(t, pairOpts{prefix: "fho", sizeMiB: 16, timeouts: upgradeTimeouts})
	token := p.managed(t, ftvsBin)
	p.startPair()
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(1, token); return err == nil }) {
		t.Fatal("node 1's manager API does not answer")
	}
	api1 := []string{"--addr", "10.98.0.1:7444", "--ca", p.apiCA(1), "--token-file", token}
	if os.Getenv("FHO_DUMP") != "" {
		p.lan.Start("tcpdump", "-nn", "-e", "-i", "any", "-w", os.Getenv("FHO_DUMP"), "tcp or arp")
		time.Sleep(time.Second)
	}
	d := p.download(p.file, "--limit-rate", "1500k")
	p.waitProgress(p.rxBytes(), 0.1)
	stop := make(chan struct{})
	gaps := p.watchPrimary(stop, 20*time.Millisecond)
	pings := p.pingVS(t)
	time.Sleep(500 * time.Millisecond)
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "out", "1"}, api1...)...); err != nil {
		t.Fatalf("ctl out 1: %v\n%s", err, out)
	}
	p.waitRole(1, "out-of-service", "", 20*time.Second)
	st2 := p.waitRole(2, "primary", "none", 10*time.Second)
	time.Sleep(time.Second)
	close(stop)
	gap := <-gaps
	pingGap, replies := pings()
	took := p.handOverTook(t, 1)
	// (curl's rate limit pauses the transfer itself once the VS filled the
	// client's buffer: its stall says nothing about the hand-over.)
	stall := p.check(d, "download across the hand-over")
	t.Logf("FIGURES hand-over: primary stopped stamping to secondary live %s; longest time between two of %d ping replies (10 ms) %s; longest time without a primary in the status samples %s; client stall %s",
		took, replies, pingGap.Round(time.Millisecond), gap.Round(time.Millisecond), stall.Round(time.Millisecond))

	evs := p.logNodes(t)
	live := first(evs[2], "go-live")
	if live == nil || !strings.Contains(live.Detail, "hand-over at seq") {
		t.Fatalf("node 2's go-live %+v: want a take-over by hand-over", live)
	}
	if first(evs[2], "go-live-check") != nil {
		t.Error("node 2 asked the split-brain guard: the go-live was a failover, not a hand-over")
	}
	if st2.Failovers != 0 {
		t.Errorf("node 2 counts %d failovers for a hand-over", st2.Failovers)
	}
	if n := count(evs[2], "divergence", "split-brain", "protocol-error"); n > 0 {
		t.Errorf("node 2: %d divergence/split-brain/protocol events", n)
	}
	if took < 0 {
		t.Fatalf("node 1 never handed the primary role over; its log:\n%s", tailLines(p.procs[1].Output(), 40))
	}
	if took > 300*time.Millisecond {
		t.Errorf("the hand-over took %s, want well under the 1 s peer timeout (< 300 ms)", took)
	}
	if pingGap >= 300*time.Millisecond {
		t.Errorf("the VS did not answer the client's pings for %s around the hand-over, want < 300 ms (the peer timeout is 1 s)", pingGap)
	}
	if gap >= 500*time.Millisecond {
		t.Errorf("no node was primary for %s in the status samples around the hand-over, want < 500 ms", gap)
	}

	// Back in service, the old primary rejoins by snapshot and follows.
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "in", "1"}, api1...)...); err != nil {
		t.Fatalf("ctl in 1: %v\n%s", err, out)
	}
	p.waitRole(2, "primary", "synced", 30*time.Second)
	p.waitRole(1, "secondary", "", 10*time.Second)
	p.check(p.download(p.file), "download after the old primary rejoined")
}

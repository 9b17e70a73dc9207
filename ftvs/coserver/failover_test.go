package coserver_test

import (
	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"os"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// repeats of each kill test; FTVS_KILL_REPEATS overrides (the issue asks
// for 5; the default keeps the package within its time budget on 2 cores).
func repeats() int {
	if n, err := strconv.Atoi(os.Getenv("FTVS_KILL_REPEATS")); err == nil && n > 0 {
		return n
	}
	return 2
}

func logStalls(t *testing.T, what string, st []time.Duration) {
	sort.Slice(st, func(i, j int) bool { return st[i] < st[j] })
	t.Logf("%s: client stall around each kill (%d kills): %v", what, len(st), st)
}

// TestKillPrimaryDuringDownload: SIGKILL of the primary half-way through a
// large download; the secondary goes live, curl (no retry) gets every byte
// intact.
func TestKillPrimaryDuringDownload(t *testing.T) {
	var stalls []time.Duration
	for r := range repeats() {
		p := newPair(t, pairOpts{sizeMiB: 256})
		p.startPair()
		rx0 := p.rxBytes()
		d := p.download(p.file)
		p.waitProgress(rx0, 0.4)
		at := time.Now()
		p.kill(1)
		p.waitRole(2, "primary", "", 10*time.Second)
		p.check(d, "kill primary #"+strconv.Itoa(r+1))
		stalls = append(stalls, d.res.StallAround(at, 2*time.Second))
	}
	logStalls(t, "primary killed", stalls)
}

// TestKillSecondaryDuringDownload: SIGKILL of the secondary: the primary
// carries on alone, held outputs are released, the download completes.
func TestKillSecondaryDuringDownload(t *testing.T) {
	var stalls []time.Duration
	for r := range repeats() {
		p := newPair(t, pairOpts{sizeMiB: 256})
		p.startPair()
		rx0 := p.rxBytes()
		d := p.download(p.file)
		p.waitProgress(rx0, 0.4)
		at := time.Now()
		p.kill(2)
		p.waitRole(1, "primary", "none", 10*time.Second)
		p.check(d, "kill secondary #"+strconv.Itoa(r+1))
		stalls = append(stalls, d.res.StallAround(at, 2*time.Second))
	}
	logStalls(t, "secondary killed", stalls)
}

// TestRestartRejoinThenKillOther: the killed primary is restarted, rejoins
// the new primary from a snapshot while the download runs, and then the new
// primary is killed too: the download still completes intact.
func TestRestartRejoinThenKillOther(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 256})
	p.startPair()
	rx0 := p.rxBytes()
	d := p.download(p.file, "--limit-rate", "30M")
	p.waitProgress(rx0, 0.25)
	p.kill(1)
	p.waitRole(2, "primary", "", 10*time.Second)
	p.start(1)
	st := p.waitRole(2, "primary", "synced", 20*time.Second)
	p.waitRole(1, "secondary", "", 5*time.Second)
	if st.Snapshots < 1 {
		t.Fatalf("node 2 synced node 1 without a snapshot: %+v", st)
	}
	t.Logf("reintegration pause on the primary: %dus", st.LastPauseUS)
	p.waitProgress(rx0, 0.7)
	p.kill(2)
	p.waitRole(1, "primary", "", 10*time.Second)
	p.check(d, "restart, rejoin, kill the other")
}

// TestFrozenSecondaryRejoins: the secondary's process is stopped for
// longer than peer_dead (SIGSTOP, as a stalled machine): the primary drops
// it and serves alone; once it runs again it must notice it was dropped
// (even if it never saw the silence itself), rejoin from a snapshot, and be
// a correct failover target: the primary is then killed mid-download.
func TestFrozenSecondaryRejoins(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 128})
	p.startPair()
	for k := range 3 {
		pid := p.procs[2].Process.Pid
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		time.Sleep(400 * time.Millisecond)
		_ = syscall.Kill(pid, syscall.SIGCONT)
		p.waitRole(1, "primary", "synced", 15*time.Second)
		p.waitRole(2, "secondary", "", 5*time.Second)
		t.Logf("freeze %d: node 2 follows again", k+1)
	}
	st, _ := p.status(1)
	if st.Snapshots < 2 {
		t.Fatalf("node 2 rejoined without a snapshot: %+v", st)
	}
	rx0 := p.rxBytes()
	d := p.download(p.file)
	p.waitProgress(rx0, 0.4)
	p.kill(1)
	p.waitRole(2, "primary", "", 10*time.Second)
	p.check(d, "primary killed after the secondary's freezes")
}

// TestColdStartAlone: a node alone at start waits for its peer by default;
// with cold_start.solo_after it serves alone after the checks, and a peer
// started later joins it.
func TestColdStartAlone(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 8})
	p.start(2)
	time.Sleep(1500 * time.Millisecond)
	if st, err := p.status(2); err != nil || st.Role != "deciding" {
		t.Fatalf("node 2 alone without solo_after: %+v %v, want deciding", st, err)
	}
	p.kill(2)
	if err := os.WriteFile(p.cfgPath(2), []byte(p.config(2)+"cold_start: {solo_after: 1s}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.start(2)
	p.waitRole(2, "primary", "none", 10*time.Second)
	p.check(p.download(p.file), "node 2 alone after cold_start.solo_after")
	p.start(1)
	p.waitRole(2, "primary", "synced", 20*time.Second)
	p.waitRole(1, "secondary", "", 5*time.Second)
	p.kill(2)
	p.waitRole(1, "primary", "", 10*time.Second)
	p.check(p.download(p.file), "node 1 after node 2 (the cold-started primary) died")
}

// TestKillPrimaryDuringFTPDownload: the review's case, an FTP download
// (passive mode, curl) carrying on while the primary is killed.
func TestKillPrimaryDuringFTPDownload(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 256})
	p.startPair()
	rx0 := p.rxBytes()
	d := p.fetch("ftp://"+vsIP+"/"+p.file, "--limit-rate", "60M")
	p.waitProgress(rx0, 0.4)
	p.kill(1)
	p.waitRole(2, "primary", "", 10*time.Second)
	p.check(d, "FTP download, primary killed")
}

// TestDroppedSecondaryNeverGoesLive: the secondary freezes (SIGSTOP), the
// primary stops waiting for it, serves alone (releasing outputs the
// secondary never applied) and then dies before the secondary has
// rejoined. The secondary's log is stale: it must not go live (clients
// would get answers that contradict what they saw), and it does not,
// because the primary's drop notice reached it over the management network.
func TestDroppedSecondaryNeverGoesLive(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 128})
	p.startPair()
	rx0 := p.rxBytes()
	d := p.download(p.file, "--limit-rate", "40M")
	p.waitProgress(rx0, 0.2)
	pid := p.procs[2].Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	if !netnstest.WaitFor(5*time.Second, func() bool {
		st, err := p.status(1)
		return err == nil && hasEvent(st, "peer-lost") && hasEvent(st, "drop-notice")
	}) {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		t.Fatal("the primary did not stop waiting for the frozen secondary")
	}
	time.Sleep(200 * time.Millisecond) // it serves alone for a while
	p.kill(1)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	time.Sleep(3 * time.Second)
	st, err := p.status(2)
	if err != nil {
		t.Fatal(err)
	}
	if st.Role == "primary" {
		t.Fatalf("a secondary the primary had dropped went live on its stale log: %+v", st.Events)
	}
	if !hasEvent(st, "dropped") {
		t.Fatalf("node 2 never learnt it was dropped: %+v", st.Events)
	}
	_ = d.cmd.Process.Kill() // the VS is down, as it must be: no client waits forever
}

package coserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
	"github.com/ftvs/ftvs/ftvs/internal/ackcheck"
	"github.com/ftvs/ftvs/ftvs/internal/nbdclient"
	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// The mirrored-disk guarantees proven on the daemon pair: an NBD client
// (ftvs/internal/nbdclient, over TCP to the VS from the client namespace)
// writes unique patterns and records what the VS acknowledged; the tests
// kill, restart, partition and break the nodes and then read everything
// back (ftvs/internal/ackcheck) and compare the two copies.

// nbd connects to the VS's NBD export "data" from the client namespace.
func (p *pair) nbd(t *testing.T) *nbdclient.Client { t.Helper(); return p.nbdFrom(t, p.cli) }

// nbdFrom connects to the VS's NBD export "data" from namespace ns.
func (p *pair) nbdFrom(t *testing.T, ns *netnstest.NS) *nbdclient.Client {
	t.Helper()
	c, err := p.dialNBD(ns, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (p *pair) dialNBD(ns *netnstest.NS, timeout time.Duration) (*nbdclient.Client, error) {
	var conn net.Conn
	if err := ns.Do(func() error {
		var err error
		conn, err = net.DialTimeout("tcp", vsIP+":10809", timeout)
		return err
	}); err != nil {
		return nil, fmt.Errorf("dial the VS's NBD port: %w", err)
	}
	c, err := nbdclient.Handshake(conn, "data", 90*time.Second)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("nbd handshake: %w", err)
	}
	return c, nil
}

// nbdFirst connects as soon as a VS answers (within timeout).
func (p *pair) nbdFirst(t *testing.T, timeout time.Duration) *nbdclient.Client {
	t.Helper()
	var c *nbdclient.Client
	var last error
	if !netnstest.WaitFor(timeout, func() bool {
		c, last = p.dialNBD(p.cli, time.Second)
		return last == nil
	}) {
		t.Fatalf("no VS answered NBD in %s: %v", timeout, last)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// checker runs an ackcheck writer until stop is called; stop returns
// the writer's error (nil: every request was answered).
type checker struct {
	c      *nbdclient.Client
	k      *ackcheck.Checker
	cancel context.CancelFunc
	done   chan error
}

func startChecker(c *nbdclient.Client, base, blocks int) *checker {
	ctx, cancel := context.WithCancel(context.Background())
	ch := &checker{c: c, k: ackcheck.New(blocks), cancel: cancel, done: make(chan error, 1)}
	ch.k.Base = base
	go func() { ch.done <- ch.k.Run(ctx, c, 8, 300) }()
	return ch
}

func (ch *checker) stop() error {
	ch.cancel()
	return <-ch.done
}

// abort stops the writer when the server is gone: the connection is closed
// (requests in flight are recorded as unsure).
func (ch *checker) abort() error {
	ch.cancel()
	_ = ch.c.Close()
	return <-ch.done
}

// alive fails the test when the writer stopped on an error.
func (ch *checker) alive(t *testing.T, when string) {
	t.Helper()
	select {
	case err := <-ch.done:
		t.Fatalf("%s: the NBD writer stopped: %v (stats %+v)", when, err, ch.k.Stats())
	default:
	}
}

// diskFigures is node i's status of its first disk as the status
// document shows it once the manager's figures are in ("disks"; nil
// before, or when the node does not answer).
type diskFigures struct {
	Name          string `json:"name"`
	State         string `json:"state"`
	Attached      bool   `json:"attached"`
	Blocked       string `json:"blocked"`
	ResyncedBytes int64  `json:"resynced_bytes"`
}

func (p *pair) diskFigures(i int) *diskFigures {
	out, err := p.cs[i].Run(ftvsBin, "status", "--json", "--addr", fmt.Sprintf("10.98.0.%d:7443", i))
	if err != nil {
		return nil
	}
	var st struct {
		Disks []diskFigures `json:"disks"`
	}
	if json.Unmarshal([]byte(out), &st) != nil || len(st.Disks) == 0 {
		return nil
	}
	return &st.Disks[0]
}

// resyncedBytes is what both nodes' resyncs copied so far (-1: the status
// does not say).
func (p *pair) resyncedBytes() int64 {
	var n int64 = -1
	for i := 1; i <= 2; i++ {
		if f := p.diskFigures(i); f != nil {
			n = max(n, 0) + f.ResyncedBytes
		}
	}
	return n
}

// hasEvent says whether node i's status lists an event kind whose
// detail contains sub.
func (p *pair) hasEvent(i int, kind, sub string) bool {
	st, err := p.status(i)
	if err != nil {
		return false
	}
	for _, e := range st.Events {
		if e.Kind == kind && strings.Contains(e.Detail, sub) {
			return true
		}
	}
	return false
}

// diskEvents are node i's disk-* events, one per line.
func (p *pair) diskEvents(i int) string {
	st, err := p.status(i)
	if err != nil {
		return fmt.Sprintf("(node %d: %v)", i, err)
	}
	var l []string
	for _, e := range st.Events {
		if strings.HasPrefix(e.Kind, "disk-") {
			l = append(l, fmt.Sprintf("%s %s: %s", e.Time.Format("15:04:05.000"), e.Kind, e.Detail))
		}
	}
	return strings.Join(l, "\n")
}

// countEvents counts node i's events of kind (repeats included).
func (p *pair) countEvents(i int, kind string) int {
	st, err := p.status(i)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range st.Events {
		if e.Kind == kind {
			n += 1 + e.Repeat
		}
	}
	return n
}

// inspect is `ftvs vdisk inspect --json` of a copy (its daemon stopped).
type inspected struct {
	State   string `json:"state"`
	Crashed bool   `json:"crashed_primary"`
	Gens    struct {
		Current string    `json:"current"`
		Bitmap  string    `json:"bitmap"`
		History [2]string `json:"history"`
	} `json:"generations"`
	MarkedBytes int64 `json:"marked_bytes"`
}

func inspect(t *testing.T, path string) inspected {
	t.Helper()
	out, err := exec.Command(ftvsBin, "vdisk", "inspect", "--json", path).Output()
	if err != nil {
		t.Fatalf("vdisk inspect %s: %v", path, err)
	}
	var j inspected
	if err := json.Unmarshal(out, &j); err != nil {
		t.Fatalf("vdisk inspect %s: %v: %s", path, err, out)
	}
	return j
}

// verifyCopies asserts the two stopped copies hold the same data.
func verifyCopies(t *testing.T, copies [3]string) {
	t.Helper()
	res, err := exec.Command(ftvsBin, "vdisk", "verify", copies[1], copies[2]).CombinedOutput()
	if err != nil {
		t.Fatalf("vdisk verify: the copies differ: %v\n%s", err, res)
	}
	t.Logf("vdisk verify: %s", strings.TrimSpace(string(res)))
}

// TestAckedWritesSurviveFailovers: the checker writes through a series of
// failovers (the secondary killed and restarted, then four times the
// primary killed, the survivor alone, the old primary back and
// resynchronised); every write the VS acknowledged is read back, and the
// two copies end byte-identical.
func TestAckedWritesSurviveFailovers(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fdp"})
	copies := p.withDisks(t, "64MiB")
	p.startPair()
	c := p.nbd(t)
	ch := startChecker(c, 0, 8192) // 32 MiB of the disk
	time.Sleep(2 * time.Second)

	failovers, restarts := 0, 0
	var markedTotal int64
	var resyncTime time.Duration
	step := func(kill, survivor int) {
		t.Helper()
		st, _ := p.status(kill)
		wasPrimary := st != nil && st.Role == "primary"
		if wasPrimary {
			// Kill it while its secondary follows: a primary that just
			// dropped its secondary (a silence on this loaded machine)
			// leaves a node that rightly refuses to go live.
			p.waitRole(kill, "primary", "synced", 30*time.Second)
		}
		p.kill(kill)
		if wasPrimary {
			failovers++
		}
		p.waitRole(survivor, "primary", "", 15*time.Second)
		time.Sleep(2 * time.Second) // the survivor writes alone: marks to resync
		ch.alive(t, fmt.Sprintf("after node %d was killed", kill))
		acked := ch.k.Stats().Acked
		before, resyncs := p.resyncedBytes(), p.countEvents(survivor, "disk-resync-done")
		marked := inspect(t, copies[survivor]).MarkedBytes // the survivor's on-disk marks (4 MiB regions)
		markedTotal += marked
		t0 := time.Now()
		p.start(kill)
		restarts++
		p.waitRole(survivor, "primary", "synced", 90*time.Second)
		el := time.Since(t0)
		if p.countEvents(survivor, "disk-resync-done") <= resyncs {
			t.Errorf("node %d rejoined after writes it missed, but node %d reports no finished resync:\n%s", kill, survivor, p.diskEvents(survivor))
		}
		copied := "resync bytes not in the status"
		if after := p.resyncedBytes(); after >= 0 && before >= 0 {
			copied = fmt.Sprintf("resync copied %d bytes", after-before)
		}
		resyncTime += el
		t.Logf("node %d killed (was primary: %v), node %d served alone and marked %d MiB, node %d back and synced in %s (%s); %d writes acked so far",
			kill, wasPrimary, survivor, marked>>20, kill, el.Round(time.Millisecond), copied, ch.k.Stats().Acked)
		if ch.k.Stats().Acked == acked {
			t.Errorf("no write was acknowledged while node %d was away or resyncing", kill)
		}
		ch.alive(t, fmt.Sprintf("after node %d rejoined", kill))
		time.Sleep(time.Second)
	}
	step(2, 1) // the secondary
	for range 2 {
		step(1, 2) // the primary
		step(2, 1) // the primary again (node 2 took over)
	}
	if err := ch.stop(); err != nil {
		t.Fatalf("the NBD writer failed during the failovers: %v", err)
	}
	if err := ch.k.Verify(c); err != nil {
		t.Fatalf("acknowledged writes lost: %v", err)
	}
	s := ch.k.Stats()
	t.Logf("FIGURES acked-writes: %d failovers (primary killed), %d restarts; %d writes acked (%d FUA, %d flushes), longest reply %s; %d blocks read back: %d hold their last acked write, %d never written; %d MiB marked while alone, restart-to-synced %s in all",
		failovers, restarts, s.Acked, s.FUA, s.Flushes, s.MaxLatency.Round(time.Millisecond), s.Checked, s.Written, s.Zero, markedTotal>>20, resyncTime.Round(time.Millisecond))
	if s.Written == 0 || failovers < 4 {
		t.Fatalf("nothing proven: %d blocks written, %d failovers", s.Written, failovers)
	}
	p.kill(2)
	p.kill(1)
	verifyCopies(t, copies)
}

// TestDoubleCrash: both daemons are killed while the checker writes, then
// restarted one after the other. The first back must not serve alone (its
// copy was running when it stopped: the peer may be newer); when both are
// back the generations pick the newer copy as the one resync source, every
// acknowledged write is read back and the copies end identical.
//   - stale-first: node 2 is killed, node 1 writes alone, node 1 is killed;
//     node 2 (stale) restarts first.
//   - newer-first: node 1 (the primary) is killed, node 2 takes over and
//     writes alone, node 2 is killed; node 2 (newer) restarts first.
//   - together: both killed at once in lockstep; node 2 restarts first.
func TestDoubleCrash(t *testing.T) {
	for _, tc := range []struct {
		name          string
		firstKilled   int // 0: both at once
		firstRestart  int
		wantSource    int
		wantDirection string
	}{
		{"stale-first", 2, 2, 1, "from node 1 to node 2"},
		{"newer-first", 1, 2, 2, "from node 2 to node 1"},
		{"together", 0, 2, 1, "from node 1 to node 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fdp", extra: "cold_start: {solo_after: 2s}\n"})
			copies := p.withDisks(t, "64MiB")
			p.startPair()
			ch := startChecker(p.nbd(t), 0, 8192)
			time.Sleep(2 * time.Second)
			if tc.firstKilled == 0 {
				done := make(chan struct{})
				go func() { p.kill(2); close(done) }()
				p.kill(1)
				<-done
			} else {
				other := 3 - tc.firstKilled
				p.kill(tc.firstKilled)
				p.waitRole(other, "primary", "", 15*time.Second)
				time.Sleep(2500 * time.Millisecond) // writes on one copy only
				ch.alive(t, "alone")
				p.kill(other)
			}
			werr := ch.abort()
			s := ch.k.Stats()
			t.Logf("both killed: %d writes acked, %d unanswered (writer: %v)", s.Acked, s.Failed, werr)
			var md [3]inspected
			for i := 1; i <= 2; i++ {
				md[i] = inspect(t, copies[i])
				t.Logf("node %d copy after the double crash: %+v", i, md[i])
				if !md[i].Crashed || md[i].State != "UpToDate" {
					t.Errorf("node %d copy: crashed %v state %s, want a crashed UpToDate copy", i, md[i].Crashed, md[i].State)
				}
			}
			src, dst := tc.wantSource, 3-tc.wantSource
			if tc.firstKilled != 0 && (md[src].Gens.Bitmap != md[dst].Gens.Current || md[src].Gens.Current == md[dst].Gens.Current) {
				t.Errorf("generations: node %d (alone last) bitmap %s current %s, node %d current %s: want the newer copy's bitmap generation to be the stale one's current",
					src, md[src].Gens.Bitmap, md[src].Gens.Current, dst, md[dst].Gens.Current)
			}
			if tc.firstKilled == 0 && md[1].Gens.Current != md[2].Gens.Current {
				t.Errorf("killed together in lockstep, but current generations differ: %s vs %s", md[1].Gens.Current, md[2].Gens.Current)
			}

			first := tc.firstRestart
			p.start(first)
			if !netnstest.WaitFor(15*time.Second, func() bool { return p.hasEvent(first, "cold-start", "not starting alone") }) {
				st, _ := p.status(first)
				t.Fatalf("node %d, back alone, never refused to start alone: %+v", first, st)
			}
			if st, err := p.status(first); err != nil || st.Role == "primary" {
				t.Fatalf("node %d serves alone after a double crash (status %+v, %v)", first, st, err)
			}
			p.start(3 - first)
			t0 := time.Now()
			// The first reads, as soon as a VS answers: they must already see
			// the newer copy's data (a VS started on the stale copy would not).
			c := p.nbdFirst(t, 60*time.Second)
			t.Logf("a VS answers NBD %s after the second start", time.Since(t0).Round(time.Millisecond))
			if err := ch.k.Verify(c); err != nil {
				t.Fatalf("first reads after the double crash miss acknowledged writes: %v", err)
			}
			var prim int
			if !netnstest.WaitFor(90*time.Second, func() bool {
				for i := 1; i <= 2; i++ {
					if st, err := p.status(i); err == nil && st.Role == "primary" && st.Peer == "synced" {
						prim = i
						return true
					}
				}
				return false
			}) {
				t.Fatalf("the pair did not come back in sync:\nnode 1:\n%s\nnode 2:\n%s", p.diskEvents(1), p.diskEvents(2))
			}
			t.Logf("pair back in %s, node %d primary", time.Since(t0).Round(time.Millisecond), prim)
			if prim != src {
				t.Errorf("node %d is primary; the newer copy is node %d's", prim, src)
			}
			if !p.hasEvent(src, "disk-resync-start", tc.wantDirection) {
				t.Errorf("node %d never started the resync %s:\n%s", src, tc.wantDirection, p.diskEvents(src))
			}
			if p.countEvents(dst, "disk-resync-start") != 0 {
				t.Errorf("node %d started a resync as well (two directions):\n%s", dst, p.diskEvents(dst))
			}
			if err := ch.k.Verify(c); err != nil {
				t.Fatalf("acknowledged writes lost in the double crash: %v", err)
			}
			s = ch.k.Stats()
			t.Logf("FIGURES double-crash %s: %d acked writes, %d unanswered; %d blocks read back, %d with their last acked write", tc.name, s.Acked, s.Failed, s.Checked, s.Written)
			p.kill(1)
			p.kill(2)
			a, b := inspect(t, copies[1]), inspect(t, copies[2])
			if a.Gens.Current != b.Gens.Current {
				t.Errorf("after the resync: current generations %s and %s differ", a.Gens.Current, b.Gens.Current)
			}
			verifyCopies(t, copies)
		})
	}
}

// TestStagedSplitBrain: a full partition (both CoServer links, the
// management network both ways, and the production LAN split in two, with
// a client on each side) lets the secondary's guard pass, so both nodes
// serve and both are written. When the links and management come back the
// split brain is detected (an event on both nodes) and NOT resolved: no
// resync starts and each copy still holds what its own side acknowledged,
// and nothing of the other's. Node 2, which went live later, fences itself
// within a short bound ("fenced (split brain)": no frame from the VS MAC,
// its copy untouched) while node 1 keeps serving, so the LAN can heal too:
// tcpdump on the bridge then sees VS frames from node 1's port only, and
// node 1's writer and a new client from the formerly split side carry on.
// The operator's procedure then resolves it at node 1's manager API
// (`ftvs ctl resolve-split-brain --keep 1`): node 2, fenced and running,
// discards its VS, its copy is resynchronised from node 1's and the pair
// runs in lockstep with identical copies.
func TestStagedSplitBrain(t *testing.T) {
	netnstest.Require(t, "tcpdump")
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fdp"})
	copies := p.withDisks(t, "64MiB")
	token := p.managed(t, ftvsBin)
	p.startPair()
	c1 := p.nbd(t)
	ch1 := startChecker(c1, 0, 8192) // blocks 0..8191 from the client on node 1's side
	time.Sleep(2 * time.Second)

	// The production LAN splits (node 2's port and a second client move to
	// a bridge of their own), then management both ways, then the CoServer
	// links.
	cli2 := p.splitSite()
	t.Log("partitioned: both nodes serve")
	c2 := p.nbdFrom(t, cli2)
	ch2 := startChecker(c2, 8192, 4096) // blocks 8192..12287 from the client on node 2's side
	time.Sleep(3 * time.Second)
	ch1.alive(t, "partitioned, node 1's side")
	ch2.alive(t, "partitioned, node 2's side")
	if err := ch2.stop(); err != nil {
		t.Fatalf("node 2's side: %v", err)
	}
	// No copy was overwritten by the other side, and node 2's holds its own
	// side's writes (read before it fences: afterwards its VS is cut off).
	if err := ch2.k.Verify(c2); err != nil {
		t.Fatalf("node 2's copy lost its own acknowledged writes: %v", err)
	}

	// The links and management come back; the LAN stays split for now.
	resyncs := [3]int{0, p.countEvents(1, "disk-resync-start"), p.countEvents(2, "disk-resync-start")}
	p.healManagement()
	p.healLinks()
	healed := time.Now()
	// Node 2 went live later: it fences itself, node 1 keeps serving.
	var st2 *coserver.Status
	if !netnstest.WaitFor(10*time.Second, func() bool {
		var err error
		st2, err = p.status(2)
		return err == nil && st2.Role == "fenced (split brain)" && st2.Fenced
	}) {
		t.Fatalf("node 2 did not fence itself within 10 s of the links healing: %+v", st2)
	}
	fencedAfter := time.Since(healed)
	if !hasEvent(st2, "split-brain") {
		t.Errorf("node 2's fencing raised no split-brain event: %+v", st2.Events)
	}
	fenced2 := fileSum(t, copies[2])
	for i := 1; i <= 2; i++ {
		if !netnstest.WaitFor(30*time.Second, func() bool { return p.countEvents(i, "disk-split-brain") > 0 }) {
			t.Fatalf("node %d never reported the split brain:\n%s", i, p.diskEvents(i))
		}
	}
	t.Logf("split brain reported on both nodes:\n%s", p.diskEvents(1))

	// The LAN heals too: node 2's port and the second client back on the
	// one bridge. Only node 1's port may carry frames from the VS MAC.
	stopDumps := p.dumpVSFrames()
	p.healLAN()
	time.Sleep(3 * time.Second) // time for a wrong resync, or a second VS, to show
	// A client on the formerly split side now reaches the survivor.
	c3, err := p.dialNBD(cli2, 15*time.Second)
	if err != nil {
		t.Fatalf("a client on the healed LAN: %v", err)
	}
	t.Cleanup(func() { _ = c3.Close() })
	if err := ackcheck.New(4096).WithBase(8192).Verify(c3); err != nil {
		t.Fatalf("the survivor (node 1) serves node 2's split-brain writes: %v", err)
	}
	ch1.alive(t, "after the LAN healed")
	n := stopDumps()
	t.Logf("node 2 fenced %s after the links healed; with the LAN healed, frames from the VS MAC: %d on node 1's port, %d on node 2's", fencedAfter.Round(time.Millisecond), n[1], n[2])
	if n[1] == 0 || n[2] != 0 {
		t.Fatalf("VS frames per bridge port: node1 %d, node2 %d: want node 1's only", n[1], n[2])
	}
	for i := 1; i <= 2; i++ {
		st, err := p.status(i)
		want := map[int]string{1: "primary", 2: "fenced (split brain)"}[i]
		if err != nil || st.Role != want {
			t.Fatalf("node %d after the split brain healed: %+v %v (want %s)", i, st, err, want)
		}
		if n := p.countEvents(i, "disk-resync-start"); n > resyncs[i] {
			t.Fatalf("node %d started a resync after the split brain:\n%s", i, p.diskEvents(i))
		}
		if f := p.diskFigures(i); f != nil && f.Blocked == "" {
			t.Errorf("node %d's disk status does not say it waits for the operator: %+v", i, f)
		}
	}
	if err := ch1.stop(); err != nil {
		t.Fatalf("node 1's side: %v", err)
	}
	if err := ch1.k.Verify(c1); err != nil {
		t.Fatalf("node 1's copy lost its own acknowledged writes: %v", err)
	}
	if got := fileSum(t, copies[2]); got != fenced2 {
		t.Fatalf("node 2's copy changed while it was fenced")
	}
	s1, s2 := ch1.k.Stats(), ch2.k.Stats()
	t.Logf("split brain not resolved by itself: node 1's copy holds its %d acked writes, node 2's its %d and is unchanged since it fenced", s1.Acked, s2.Acked)

	// The operator's procedure at node 1's manager API: keep node 1's data.
	// Node 2, fenced and running, discards its VS and its changes.
	t0 := time.Now()
	if out, err := p.cs[1].Run(ftvsBin, "ctl", "--addr", "10.98.0.1:7444", "--ca", p.apiCA(1), "--token-file", token,
		"resolve-split-brain", "--keep", "1"); err != nil {
		t.Fatalf("ctl resolve-split-brain --keep 1: %v\n%s", err, out)
	}
	p.waitRole(1, "primary", "synced", 90*time.Second)
	p.waitRole(2, "secondary", "", 20*time.Second)
	t.Logf("resolved: node 2 resynchronised from node 1 and in lockstep after %s", time.Since(t0).Round(time.Millisecond))
	if !p.hasEvent(1, "disk-resync-start", "from node 1 to node 2") {
		t.Errorf("node 1 did not resync node 2:\n%s", p.diskEvents(1))
	}
	if err := ch1.k.Verify(c1); err != nil {
		t.Fatalf("after the resolution node 1's writes are gone: %v", err)
	}
	p.kill(1)
	p.waitRole(2, "primary", "", 15*time.Second)
	// Through node 2 now: node 1's writes are there, node 2's discarded.
	c := p.nbd(t)
	if err := ch1.k.Verify(c); err != nil {
		t.Fatalf("node 2's resynchronised copy lacks node 1's writes: %v", err)
	}
	if err := ackcheck.New(4096).WithBase(8192).Verify(c); err != nil {
		t.Fatalf("node 2's discarded split-brain writes are still there: %v", err)
	}
	t.Logf("FIGURES split-brain: %d + %d writes acked on the two sides; node 2 fenced %s after the links healed; after resolve node 2 serves node 1's %d blocks, its own %d discarded", s1.Acked, s2.Acked, fencedAfter.Round(time.Millisecond), ch1.k.Stats().Written, s2.Written)
	p.kill(2)
	verifyCopies(t, copies)
}

// TestDiskIOErrorDetaches: one node's copy starts failing every data read
// and write (TEST-ONLY hook FTVS_TEST_DISK_FAULT) while the checker
// writes: the copy is detached, a disk-detached event is in that node's
// status, and the checker carries on without an error.
//   - primary: every acknowledged write reads back through node 1, whose VS
//     now reads node 2's copy over the link; node 1 is then killed and node
//     2's copy, the only good one, serves them all too; node 1's copy is
//     left Inconsistent.
//   - secondary: node 1 goes on marking; node 2 is restarted without the
//     fault ("the disk was replaced"), its copy is resynchronised, and after
//     node 1 is killed node 2 serves every acknowledged write.
func TestDiskIOErrorDetaches(t *testing.T) {
	for _, bad := range []int{1, 2} {
		name := map[int]string{1: "primary", 2: "secondary"}[bad]
		t.Run(name, func(t *testing.T) {
			p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fdp"})
			copies := p.withDisks(t, "64MiB")
			trigger := fmt.Sprintf("%s/fail-node%d-disk", p.dir, bad)
			hook := []string{"FTVS_TEST_FAULTS=i-want-this-replica-to-diverge", "FTVS_TEST_DISK_FAULT=data=" + trigger}
			for i := 1; i <= 2; i++ {
				if i == bad {
					p.start(i, hook...)
				} else {
					p.start(i)
				}
			}
			p.waitRole(1, "primary", "synced", 20*time.Second)
			c := p.nbd(t)
			ch := startChecker(c, 0, 8192)
			time.Sleep(2 * time.Second)
			before := ch.k.Stats().Acked
			if err := os.WriteFile(trigger, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if !netnstest.WaitFor(15*time.Second, func() bool { return p.countEvents(bad, "disk-detached") > 0 }) {
				t.Fatalf("node %d's failing copy was never detached:\n%s", bad, p.diskEvents(bad))
			}
			t.Logf("node %d's copy detached:\n%s", bad, p.diskEvents(bad))
			time.Sleep(4 * time.Second) // the VS carries on with the good copy
			ch.alive(t, "after the disk error")
			if f := p.diskFigures(bad); f != nil && f.Attached {
				t.Errorf("node %d's status still shows its copy attached: %+v", bad, f)
			}
			if st, err := p.status(1); err != nil || st.Role != "primary" {
				t.Fatalf("node 1 after node %d's disk failed: %+v %v", bad, st, err)
			}
			if err := ch.stop(); err != nil {
				t.Fatalf("the NBD client saw an error after the disk failed: %v", err)
			}
			after := ch.k.Stats().Acked - before
			if after < 100 {
				t.Fatalf("only %d writes acknowledged after the disk failed", after)
			}
			if err := ch.k.Verify(c); err != nil {
				t.Fatalf("reads through node 1 miss acknowledged writes: %v", err)
			}
			if bad == 2 {
				p.kill(2)
				p.waitRole(1, "primary", "none", 15*time.Second)
				resyncs := p.countEvents(1, "disk-resync-done")
				t0 := time.Now()
				p.start(2) // the disk was replaced: no fault now
				p.waitRole(1, "primary", "synced", 90*time.Second)
				if p.countEvents(1, "disk-resync-done") <= resyncs {
					t.Errorf("node 2's copy rejoined without a resync:\n%s", p.diskEvents(1))
				}
				t.Logf("node 2 back with a working disk, resynchronised and in lockstep after %s", time.Since(t0).Round(time.Millisecond))
			}
			p.kill(1)
			p.waitRole(2, "primary", "", 15*time.Second)
			if err := ch.k.Verify(p.nbd(t)); err != nil {
				t.Fatalf("node 2's copy misses acknowledged writes: %v", err)
			}
			p.kill(2)
			if md := inspect(t, copies[1]); bad == 1 && md.State != "Inconsistent" {
				t.Errorf("node 1's detached copy is %s, want Inconsistent (never trusted again without a resync)", md.State)
			}
			s := ch.k.Stats()
			t.Logf("FIGURES io-error %s: %d writes acked (%d after the error), %d blocks verified through node 1 and again through node 2", name, s.Acked, after, s.Checked)
		})
	}
}

// TestDivergenceResyncsDisks: node 2 runs with the test-only hook that
// replaces one of its inputs (a TCP segment of the NBD stream, carrying
// writes) while the checker writes: its VS and its disk miss what the
// primary applied. The divergence check resynchronises node 2; its disk
// must be brought to the primary's content too, or the writes in that
// segment are missing from node 2's copy: after node 1 is killed, node 2
// must serve every acknowledged write, and the copies must end identical.
func TestDivergenceResyncsDisks(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fdp"})
	copies := p.withDisks(t, "64MiB")
	p.start(1)
	p.start(2, "FTVS_TEST_FAULTS=i-want-this-replica-to-diverge", "FTVS_TEST_DIVERGE_AT_SEQ=3000")
	p.waitRole(1, "primary", "synced", 20*time.Second)
	c := p.nbd(t)
	ch := startChecker(c, 0, 8192)
	if !netnstest.WaitFor(60*time.Second, func() bool {
		st, err := p.status(1)
		// Snapshots counts the resnapshot once it is sent; the peer is
		// synced again once it acked it.
		return err == nil && st.Divergences >= 1 && st.Snapshots >= 2 && st.Peer == "synced"
	}) {
		st, _ := p.status(1)
		t.Fatalf("no divergence detected and healed: %+v", st)
	}
	t.Logf("divergence healed:\n%s", p.diskEvents(1))
	if p.countEvents(1, "disk-resync-diverged") == 0 {
		t.Errorf("node 1 did not resynchronise the disks before the resnapshot")
	}
	time.Sleep(time.Second)
	if err := ch.stop(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	p.kill(1)
	p.waitRole(2, "primary", "", 15*time.Second)
	if err := ch.k.Verify(p.nbd(t)); err != nil {
		t.Fatalf("node 2's copy after the divergence misses acknowledged writes: %v", err)
	}
	s := ch.k.Stats()
	t.Logf("FIGURES divergence: %d writes acked, %d blocks read back through node 2 after node 1 was killed", s.Acked, s.Checked)
	p.kill(2)
	verifyCopies(t, copies)
}

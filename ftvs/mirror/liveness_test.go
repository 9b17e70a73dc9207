package mirror

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// gatePacer lets the first free chunks go, then holds the resync until
// open is called: the test decides when the bulk may end.
type gatePacer struct {
	mu      sync.Mutex
	free    int
	gate    chan struct{}
	waiting chan struct{} // closed when a Take first blocks on the gate
	once    sync.Once
}

func newGatePacer(free int) *gatePacer {
	return &gatePacer{free: free, gate: make(chan struct{}), waiting: make(chan struct{})}
}

func (g *gatePacer) Take(ctx context.Context, n int64) error {
	g.mu.Lock()
	if g.free > 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	g.mu.Unlock()
	g.once.Do(func() { close(g.waiting) })
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gatePacer) open() { close(g.gate) }

// flap is what one node's link session reports when it alone lost the
// peer for a moment: the session itself stays reliable (no message is
// lost; the other node sees nothing).
func flap(m *Mirror, up bool) {
	if up {
		m.Handle(link.Delivery{Event: &link.Event{Kind: link.EventPeerUp}})
		return
	}
	m.Handle(link.Delivery{Event: &link.Event{Kind: link.EventPeerSilent}})
}

type connectResult struct {
	dec vdisk.Decision
	err error
}

func goConnect(ctx context.Context, m *Mirror) <-chan connectResult {
	ch := make(chan connectResult, 1)
	go func() {
		dec, err := m.Connect(ctx)
		ch <- connectResult{dec, err}
	}()
	return ch
}

func waitConnect(t *testing.T, what string, ch <-chan connectResult, within time.Duration) connectResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(within):
		t.Fatalf("%s: Connect still blocked after %v", what, within)
		return connectResult{}
	}
}

// gatedSource restarts node 1 with a gated pacer, takes it solo and
// writes 8 MiB (32 chunks of 256 KiB) for it to resync.
func gatedSource(t *testing.T, p *pair) *gatePacer {
	g := newGatePacer(2)
	p.pacers[1] = g
	p.crash(1)
	p.start(1)
	if err := p.n[1].m.PeerLost(); err != nil {
		t.Fatal(err)
	}
	for i := range 8 * 256 {
		writeBlock(t, p.n[1].m, uint64(i), int64(i)*4096)
	}
	return g
}

// The joiner (resync target) alone sees the link drop and come back while
// the source streams. Its daemon runs another Connect round at that
// peer-up; the source's daemon saw nothing and runs none. That second
// round used to wait for an OpBulkDone that no source round would ever
// send: the joiner never asked to join. Now the wait ends at the link
// event, and the next round asks the source how its bulk goes.
func TestTargetOneSidedFlapDuringResyncDoesNotHang(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	g := gatedSource(t, p)
	src := goConnect(ctx, p.n[1].m)
	dst := goConnect(ctx, p.n[2].m)
	select {
	case <-g.waiting:
	case <-time.After(20 * time.Second):
		t.Fatal("the source's resync never started")
	}
	flap(p.n[2].m, false)
	// A wait for the bulk ends on a link event, not when the bulk ends.
	r := waitConnect(t, "target during the flap", dst, 5*time.Second)
	if !errors.Is(r.err, ErrPeerLost) {
		t.Fatalf("target's Connect at the link event: %v, want ErrPeerLost", r.err)
	}
	// While the link hears nothing, calls fail at once.
	start := time.Now()
	if _, err := p.n[2].m.Connect(ctx); !errors.Is(err, ErrPeerLost) || time.Since(start) > time.Second {
		t.Fatalf("Connect while the peer is silent: %v after %v, want ErrPeerLost at once", err, time.Since(start))
	}
	flap(p.n[2].m, true)
	g.open()
	if r := waitConnect(t, "source", src, 30*time.Second); r.err != nil {
		t.Fatalf("source's Connect: %v", r.err)
	}
	// The target's daemon retries at the peer-up: the source is past its
	// bulk and runs no new round; the target must not wait for one.
	r = waitConnect(t, "target's round after the flap", goConnect(ctx, p.n[2].m), 10*time.Second)
	if r.err != nil || r.dec.Source != 1 {
		t.Fatalf("target's round after the flap: %v %v, want nil and source node 1", r.dec, r.err)
	}
	if err := p.n[1].m.FinishResync(ctx); err != nil {
		t.Fatal(err)
	}
	p.assertIdentical()
	if st := p.n[2].disk.Metadata().State; st != vdisk.UpToDate {
		t.Fatalf("target after FinishResync: %v, want UpToDate", st)
	}
}

// The source alone sees the link drop during its bulk: its round fails at
// once (calls fail while the peer is silent, so even its bulk-done notice
// never leaves). The target, which saw nothing, used to wait for that
// notice forever; now it learns from the source that no resync runs and
// fails its round, and the next rounds on both sides finish the resync.
func TestSourceOneSidedFlapDuringResyncDoesNotHang(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	g := gatedSource(t, p)
	src := goConnect(ctx, p.n[1].m)
	dst := goConnect(ctx, p.n[2].m)
	select {
	case <-g.waiting:
	case <-time.After(20 * time.Second):
		t.Fatal("the source's resync never started")
	}
	flap(p.n[1].m, false)
	g.open()
	if r := waitConnect(t, "source during the flap", src, 10*time.Second); !errors.Is(r.err, ErrPeerLost) {
		t.Fatalf("source's Connect at the flap: %v, want ErrPeerLost", r.err)
	}
	// CallTimeout is 5 s in the harness, polls every second.
	if r := waitConnect(t, "target", dst, 15*time.Second); !errors.Is(r.err, ErrNoResync) {
		t.Fatalf("target's Connect: %v, want ErrNoResync", r.err)
	}
	flap(p.n[1].m, true)
	if _, err := p.reconnect(ctx); err != nil {
		t.Fatalf("the next round: %v", err)
	}
	p.assertIdentical()
}

// A source that drops OpResyncState unanswered (an older version does not
// know the op) is asked once; the target then waits for its OpBulkDone as
// before instead of failing every round.
func TestTargetWaitsForASourceThatCannotBeAsked(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	g := gatedSource(t, p)
	// Node 1's deliveries go through a filter that drops the question.
	in := make(chan link.Delivery, 1024)
	p.hook[1].Store(&in)
	go func() {
		for d := range in {
			if d.Event == nil && d.Type == DefaultTypeBase {
				if r, err := ParseRequest(d.Payload); err == nil && r.Op == OpResyncState {
					continue
				}
			}
			p.n[1].m.Handle(d)
		}
	}()
	t.Cleanup(func() { p.hook[1].Store(nil) })
	src := goConnect(ctx, p.n[1].m)
	dst := goConnect(ctx, p.n[2].m)
	<-g.waiting
	// Past the first question's timeout (5 s in the harness).
	time.Sleep(7 * time.Second)
	g.open()
	if r := waitConnect(t, "source", src, 30*time.Second); r.err != nil {
		t.Fatalf("source: %v", r.err)
	}
	if r := waitConnect(t, "target", dst, 10*time.Second); r.err != nil {
		t.Fatalf("target: %v, want the wait to end at the source's bulk-done", r.err)
	}
	if err := p.n[1].m.FinishResync(ctx); err != nil {
		t.Fatal(err)
	}
	p.assertIdentical()
}

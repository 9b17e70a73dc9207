package lockstep

import (
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/link/linktest"
)

func netnsEnv(t testing.TB, prefix string, net8 int) (*pairEnv, *linktest.Pair) {
	p := linktest.NewPair(t, prefix, 2, net8)
	e := &pairEnv{t: t, rec: &recorder{}, slow: true}
	e.nodeLinks[1], e.nodeLinks[2] = p.LinksA, p.LinksB
	e.nets[1], e.nets[2] = linktest.Net{NS: p.A}, linktest.Net{NS: p.B}
	return e, p
}

// TestOneLinkCutNoFailover: losing one of two CoServer links under load
// moves the stream to the other; no failover, no lost input, output rule
// intact, replicas equal.
func TestOneLinkCutNoFailover(t *testing.T) {
	e, p := netnsEnv(t, "fl6l", 65)
	e.slow = true
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{})
	synced := a.waitEvent(t, EventPeerSynced)
	stop := make(chan struct{})
	subs := submitUntil(a, stop, 20*time.Microsecond)
	a.waitFor(t, "busy", func(st Status) bool { return st.Seq > synced.Seq+1000 })
	k := 0 // cut the link that carries the stream
	if ls := a.sess.Status().Links; ls[1].Active {
		k = 1
	}
	linktest.Run(t, "ip", "-n", p.A, "link", "set", p.IfA[k], "down")
	at := a.node.Status().Seq
	a.waitFor(t, "busy after the cut", func(st Status) bool { return st.Seq > at+3000 })
	close(stop)
	<-subs
	st := a.quiet(t, at+3000)
	for _, s := range []*side{a, b} {
		for len(s.events) > 0 {
			if ev := <-s.events; ev.Kind == EventGoLive || ev.Kind == EventPeerLost || ev.Kind == EventNoGoLive {
				t.Fatalf("node %d: %v on a single link cut: %s", s.id, ev.Kind, ev.Reason)
			}
		}
	}
	if n := checkOutputRule(t, e.rec.snapshot(), 1, 2, synced.Seq); uint64(n) < st.Seq-synced.Seq {
		t.Errorf("%d gated outputs for %d inputs", n, st.Seq-synced.Seq)
	}
	deadline := time.Now().Add(20 * time.Second)
	for a.sess.Status().Links[k].Up && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ls := a.sess.Status().Links; ls[k].Up || !ls[1-k].Up || !ls[1-k].Active {
		t.Errorf("link states after cutting link %d: %+v", k, ls)
	}
	sameState(t, a, b)
}

// TestBothLinksCutGoLive: with every link gone (cables pulled) the
// secondary goes live on silence alone, and the primary carries on solo:
// without the daemon's split-brain guard both serve, which Hello reports
// as split brain when a link returns.
func TestBothLinksCutGoLive(t *testing.T) {
	e, p := netnsEnv(t, "fl6g", 66)
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{})
	synced := a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 500)
	a.quiet(t, synced.Seq+500)
	for i := range 2 {
		linktest.Run(t, "ip", "-n", p.B, "link", "del", p.IfB[i])
	}
	b.waitEvent(t, EventGoLive)
	a.waitEvent(t, EventPeerLost)
	checkOutputRule(t, e.rec.snapshot(), 1, 2, synced.Seq)
}

// TestImpairedLinks: delay and loss on both links slow the acks but change
// nothing else: every output still waits for its ack, replicas stay equal.
func TestImpairedLinks(t *testing.T) {
	p, how := linktest.NewImpairedPair(t, "fl6i", 2, 67,
		netnstest.Impairment{Delay: 3 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.02, Seed: 7})
	t.Log(how)
	e := &pairEnv{t: t, rec: &recorder{}, slow: true}
	e.nodeLinks[1], e.nodeLinks[2] = p.LinksA, p.LinksB
	e.nets[1], e.nets[2] = linktest.Net{NS: p.A}, linktest.Net{NS: p.B}
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{})
	synced := a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 2000)
	st := a.quiet(t, synced.Seq+2000)
	if n := checkOutputRule(t, e.rec.snapshot(), 1, 2, synced.Seq); uint64(n) < st.Seq-synced.Seq {
		t.Errorf("%d gated outputs for %d inputs", n, st.Seq-synced.Seq)
	}
	sameState(t, a, b)
}

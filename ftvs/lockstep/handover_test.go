package lockstep

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// loseType is a transport that loses every message of one type while on.
type loseType struct {
	Transport
	typ  uint8
	on   atomic.Bool
	lost atomic.Int32
}

func (l *loseType) Send(typ uint8, p []byte) error {
	if typ == l.typ && l.on.Load() {
		l.lost.Add(1)
		return nil
	}
	return l.Transport.Send(typ, p)
}

// lastEmit is the highest seq node released an output for, and how many.
func lastEmit(ops []op, node int) (last uint64, n int) {
	for _, o := range ops {
		if o.node == node && o.what == "emit" {
			last = max(last, o.seq)
			n++
		}
	}
	return last, n
}

// TestHandOver: the primary hands its role to the in-sync secondary during
// a stream of inputs; the secondary goes live at once, while the old
// primary's link still hears it (no silence, no guard), and the old
// primary released nothing its peer had not applied and nothing after N.
func TestHandOver(t *testing.T) {
	e := newEnv(t)
	var asked atomic.Int32
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{mayGoLive: func() bool { asked.Add(1); return true }})
	synced := a.waitEvent(t, EventPeerSynced)
	stop := make(chan struct{})
	subs := submitUntil(a, stop, 0)
	a.waitFor(t, "busy", func(st Status) bool { return st.Seq > synced.Seq+500 })
	t0 := time.Now()
	res, err := a.node.HandOver(context.Background(), 2*time.Second)
	if err != nil {
		t.Fatalf("hand-over: %v", err)
	}
	seq := res.Seq
	live := b.waitEvent(t, EventGoLive)
	took := time.Since(t0)
	close(stop)
	submitted := <-subs
	// Every submission was stamped by the old primary or returned to the
	// caller (at most one Submit racing the role change is lost).
	stamped := 0
	for _, o := range e.rec.snapshot() {
		if o.node == 1 && o.what == "apply" && strings.HasPrefix(string(o.data), "bg ") {
			stamped++
		}
	}
	if lost := submitted - stamped - len(res.Unstamped); lost < 0 || lost > 1 {
		t.Errorf("%d submitted, %d stamped, %d returned unstamped", submitted, stamped, len(res.Unstamped))
	}
	t.Logf("%d inputs returned unstamped", len(res.Unstamped))
	if !live.Planned || live.Seq != seq+1 {
		t.Errorf("go-live %+v, want a planned one at seq %d", live, seq+1)
	}
	if asked.Load() != 0 {
		t.Errorf("the split-brain guard was asked %d times on a hand-over", asked.Load())
	}
	if !b.sess.Status().PeerAlive {
		t.Errorf("the peer fell silent: the go-live did not come from the hand-over")
	}
	if took >= e.peerTimeout() {
		t.Errorf("hand-over to go-live took %v, not less than the peer timeout %v", took, e.peerTimeout())
	}
	t.Logf("hand-over at seq %d: the secondary was live %v after the request", seq, took)
	if st := a.node.Status(); st.Role != RoleJoining || st.Peer != PeerNone || st.HeldOutputs != 0 {
		t.Errorf("old primary after the hand-over: %+v", st)
	}
	if err := a.node.Submit(context.Background(), 0, nil); !errors.Is(err, ErrNotPrimary) {
		t.Errorf("old primary accepts inputs after the hand-over: %v", err)
	}
	// The new primary serves alone; the old one released nothing more.
	submitN(t, b, 0, 100)
	b.waitFor(t, "serving", func(st Status) bool { return st.Seq >= live.Seq+100 })
	ops := e.rec.snapshot()
	checkOutputRule(t, ops, 1, 2, synced.Seq)
	if last, _ := lastEmit(ops, 1); last != seq {
		t.Errorf("old primary's last output is for seq %d, want %d (everything up to the hand-over, nothing after)", last, seq)
	}
	if _, n := lastEmit(ops, 2); n < 101 {
		t.Errorf("new primary released %d outputs, want at least 101", n)
	}
	// The old primary rejoins from a snapshot (as the daemon does after
	// its re-execution) and follows.
	a.kill()
	a2 := e.start(1, RoleJoining, sideOpts{})
	b.waitEvent(t, EventPeerSynced)
	a2.waitEvent(t, EventRestored)
	submitN(t, b, 100, 100)
	b.quiet(t, live.Seq+200)
	sameState(t, a2, b)
}

// TestHandOverLostMessage: the hand-over message never reaches the
// secondary. Without the answer the old primary cannot know whether the
// peer took over: at the timeout it gives up all the same and releases
// nothing more; the secondary stays a secondary while the old primary's
// node runs, and goes live by the ordinary path (silence, guard) once it
// is gone.
func TestHandOverLostMessage(t *testing.T) {
	e := newEnv(t)
	var asked atomic.Int32
	var lose *loseType
	a := e.start(1, RolePrimary, sideOpts{wrap: func(tr Transport) Transport {
		lose = &loseType{Transport: tr, typ: msgHandOver}
		lose.on.Store(true)
		return lose
	}})
	b := e.start(2, RoleJoining, sideOpts{mayGoLive: func() bool { asked.Add(1); return true }})
	synced := a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 300)
	res, err := a.node.HandOver(context.Background(), 300*time.Millisecond)
	seq := res.Seq
	if !errors.Is(err, ErrHandOverUnconfirmed) {
		t.Fatalf("hand-over with its message lost: %v, want ErrHandOverUnconfirmed", err)
	}
	if st := a.node.Status(); st.Role != RoleJoining || seq != st.Seq {
		t.Fatalf("old primary after an unconfirmed hand-over at seq %d: %+v", seq, st)
	}
	if lose.lost.Load() != 1 {
		t.Fatalf("%d hand-over messages lost, want 1", lose.lost.Load())
	}
	if st := b.node.Status(); st.Role != RoleSecondary || st.Seq != seq {
		t.Fatalf("secondary without the hand-over message: %+v, want a secondary at seq %d", st, seq)
	}
	a.kill()
	live := b.waitEvent(t, EventGoLive)
	if live.Planned || live.Seq != seq+1 {
		t.Errorf("go-live %+v, want an unplanned one at seq %d", live, seq+1)
	}
	if asked.Load() == 0 {
		t.Error("the secondary went live after a lost hand-over without asking the split-brain guard")
	}
	ops := e.rec.snapshot()
	checkOutputRule(t, ops, 1, 2, synced.Seq)
	if last, _ := lastEmit(ops, 1); last != seq {
		t.Errorf("old primary's last output is for seq %d, want %d", last, seq)
	}
}

// TestHandOverAbandoned: a secondary that does not ack in time, or dies,
// ends the hand-over with an error and the primary carries on: it stamps
// what was submitted meanwhile and releases every output.
func TestHandOverAbandoned(t *testing.T) {
	e := newEnv(t)
	var acks *loseType
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{wrap: func(tr Transport) Transport {
		acks = &loseType{Transport: tr, typ: msgAck}
		return acks
	}})
	synced := a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 100)
	a.quiet(t, synced.Seq+100)

	// A secondary whose acks stop: the hand-over times out, nothing is lost.
	acks.on.Store(true)
	submitN(t, a, 100, 10)
	if _, err := a.node.HandOver(context.Background(), 150*time.Millisecond); err == nil {
		t.Fatal("hand-over succeeded without the secondary's ack")
	}
	acks.on.Store(false)
	if st := a.node.Status(); st.Role != RolePrimary || st.Peer != PeerSynced {
		t.Fatalf("primary after an abandoned hand-over: %+v", st)
	}
	submitN(t, a, 110, 10)
	a.quiet(t, synced.Seq+120)
	if st := b.node.Status(); st.Role != RoleSecondary {
		t.Fatalf("secondary after an abandoned hand-over: %+v", st)
	}

	// The secondary dies during the hand-over: the primary goes on alone.
	b.kill()
	t0 := time.Now()
	_, err := a.node.HandOver(context.Background(), 10*time.Second)
	if err == nil || time.Since(t0) > 5*time.Second {
		t.Fatalf("hand-over to a dead secondary: err %v after %v", err, time.Since(t0))
	}
	t.Logf("abandoned: %v", err)
	if _, err := a.node.HandOver(context.Background(), time.Second); !errors.Is(err, ErrNoSyncedPeer) {
		t.Errorf("hand-over without a secondary: %v, want ErrNoSyncedPeer", err)
	}
	submitN(t, a, 120, 50)
	st := a.waitFor(t, "solo", func(st Status) bool { return st.Peer == PeerNone && st.Seq >= synced.Seq+170 })
	if st.Role != RolePrimary {
		t.Fatalf("primary after its secondary died during the hand-over: %+v", st)
	}
	if last, n := lastEmit(e.rec.snapshot(), 1); last != st.Seq || uint64(n) != st.Seq {
		t.Errorf("primary released %d outputs up to seq %d, want all %d", n, last, st.Seq)
	}
}

// TestHandOverRefused: a secondary not ready to take over (its disks, say)
// refuses; the primary carries on with its peer still synced, and a later
// hand-over, once it is ready, succeeds.
func TestHandOverRefused(t *testing.T) {
	e := newEnv(t)
	var ready atomic.Bool
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{mayTake: ready.Load})
	synced := a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 100)
	if _, err := a.node.HandOver(context.Background(), 2*time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("hand-over to a secondary that may not take over: %v, want a refusal", err)
	}
	submitN(t, a, 100, 100)
	if st := a.quiet(t, synced.Seq+200); st.Role != RolePrimary {
		t.Fatalf("primary after a refused hand-over: %+v", st)
	}
	if st := b.node.Status(); st.Role != RoleSecondary {
		t.Fatalf("secondary after refusing the hand-over: %+v", st)
	}
	ready.Store(true)
	res, err := a.node.HandOver(context.Background(), 2*time.Second)
	if err != nil {
		t.Fatalf("hand-over once ready: %v", err)
	}
	if live := b.waitEvent(t, EventGoLive); !live.Planned || live.Seq != res.Seq+1 {
		t.Errorf("go-live %+v after the hand-over at %d", live, res.Seq)
	}
	checkOutputRule(t, e.rec.snapshot(), 1, 2, synced.Seq)
}

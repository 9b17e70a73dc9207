package lockstep

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
)

// checkOutputRule asserts, on the recorded global order, that every output
// node p released for an input at or after from came after node s applied
// that input, and that p released each input's output once, in order.
func checkOutputRule(t *testing.T, ops []op, p, s int, from uint64) (checked int) {
	t.Helper()
	applied := map[uint64]bool{}
	var last uint64
	for _, o := range ops {
		switch {
		case o.node == s && o.what == "apply":
			applied[o.seq] = true
		case o.node == p && o.what == "emit":
			if o.seq <= last {
				t.Fatalf("node %d released output of seq %d after seq %d", p, o.seq, last)
			}
			last = o.seq
			if o.seq >= from {
				if !applied[o.seq] {
					t.Fatalf("output rule broken: node %d released output of seq %d before node %d applied it", p, o.seq, s)
				}
				checked++
			}
		}
	}
	return checked
}

func TestOutputRule(t *testing.T) {
	e := newEnv(t)
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{})
	synced := a.waitEvent(t, EventPeerSynced)
	b.waitEvent(t, EventRestored)
	submitN(t, a, 0, 3000)
	st := a.quiet(t, synced.Seq+3000)
	n := checkOutputRule(t, e.rec.snapshot(), 1, 2, synced.Seq)
	if n < 3000 {
		t.Fatalf("only %d gated outputs released, want at least 3000 (status %+v)", n, st)
	}
	if st.HeldOutputs != 0 || st.LogEntries != 0 {
		t.Errorf("log not drained after the last ack: %+v", st)
	}
	// Pipelining: the primary executed ahead of the acks instead of waiting.
	if st.MaxHeld < 2 {
		t.Errorf("primary never ran ahead of the secondary's acks (MaxHeld %d)", st.MaxHeld)
	}
	sameState(t, a, b)
	t.Logf("status %+v", st)
}

func TestDivergenceDetectedAndHealed(t *testing.T) {
	e := newEnv(t)
	var target uint64
	fired := 0
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{diverge: func(in *machine.Input) {
		if target != 0 && in.Seq == target && fired == 0 {
			fired++
			in.Payload = append([]byte("corrupt "), in.Payload...)
		}
	}})
	synced := a.waitEvent(t, EventPeerSynced)
	b.waitEvent(t, EventRestored)
	target = synced.Seq + 50 // read by node 2's loop only after its next batch
	submitN(t, a, 0, 200)
	d := a.waitEvent(t, EventDivergence)
	if d.Seq < target {
		t.Errorf("divergence reported at seq %d, before the fault at %d", d.Seq, target)
	}
	a.waitEvent(t, EventSnapshotSent)
	a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 200, 200)
	st := a.quiet(t, synced.Seq+400)
	if st.Divergences != 1 {
		t.Errorf("%d divergences, want 1", st.Divergences)
	}
	sameState(t, a, b) // healed by the resync
}

func TestGoLiveWhenPrimaryDies(t *testing.T) {
	e := newEnv(t)
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{})
	synced := a.waitEvent(t, EventPeerSynced)
	stop := make(chan struct{})
	subs := submitUntil(a, stop, 0)
	a.waitFor(t, "busy", func(st Status) bool { return st.Seq > synced.Seq+500 })
	a.kill()
	close(stop)
	<-subs
	live := b.waitEvent(t, EventGoLive)
	ops := e.rec.snapshot()
	// The go-live input is the gratuitous ARP command, right after the log.
	var garp, last *op
	for i := range ops {
		if ops[i].node == 2 && ops[i].what == "apply" && ops[i].seq == live.Seq {
			garp = &ops[i]
		}
		if ops[i].what == "apply" && ops[i].seq == live.Seq-1 {
			last = &ops[i] // either node: the same input (node 2 may hold it only in a snapshot)
		}
	}
	if garp == nil || garp.kind != machine.InCommand || !bytes.Equal(garp.data, machine.GratuitousARPCommand()) {
		t.Fatalf("go-live input at seq %d is %+v, want the gratuitous ARP command", live.Seq, garp)
	}
	// The virtual clock counted the silence: the survivor declared the peer
	// silent PeerTimeout after it last heard it, so the go-live input is
	// about that much later in virtual time than the last log input (less
	// the survivor's lag in applying that input, hence the half); a clock
	// restarted at the last input would put it microseconds later.
	// (No recorded input before it: the log ended in the snapshot.)
	if last != nil && garp.now-last.now < int64(e.peerTimeout()/2) {
		t.Errorf("go-live input at virtual time %d, last log input %+v: the silence (%v) is not counted", garp.now, last, e.peerTimeout())
	}
	// Nothing the dead primary released is unknown to the survivor.
	checkOutputRule(t, ops, 1, 2, synced.Seq)
	// The survivor serves alone: its outputs leave at once, numbering goes on.
	submitN(t, b, 0, 100)
	st := b.waitFor(t, "serving", func(st Status) bool { return st.Seq >= live.Seq+100 })
	if st.Role != RolePrimary || st.Peer != PeerNone {
		t.Errorf("survivor status %+v", st)
	}
	var emitted int
	for _, o := range e.rec.snapshot() {
		if o.node == 2 && o.what == "emit" && o.seq >= live.Seq {
			emitted++
		}
	}
	if emitted < 101 {
		t.Errorf("survivor released %d outputs, want at least 101", emitted)
	}

	// The dead node comes back, joins from a snapshot and follows.
	a2 := e.start(1, RoleJoining, sideOpts{})
	b.waitEvent(t, EventPeerSynced)
	a2.waitEvent(t, EventRestored)
	submitN(t, b, 100, 100)
	b.quiet(t, live.Seq+200)
	sameState(t, a2, b)
}

// TestGoLiveWhenPrimaryRestartsQuickly: the primary's process dies and a new
// one connects before the secondary's silence timeout. The secondary holds
// the VS: it must go live (and the new process join it), not give up its
// state and wait for a snapshot nobody can send.
func TestGoLiveWhenPrimaryRestartsQuickly(t *testing.T) {
	e := newEnv(t)
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{})
	synced := a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 50)
	a.waitFor(t, "acked", func(st Status) bool { return st.PeerApplied >= synced.Seq+50 })
	a.kill()
	a2 := e.start(1, RoleJoining, sideOpts{})
	live := b.waitEvent(t, EventGoLive)
	a2.waitEvent(t, EventRestored)
	submitN(t, b, 50, 50)
	b.quiet(t, live.Seq+50)
	sameState(t, a2, b)
}

func TestPrimarySoloWhenSecondaryDies(t *testing.T) {
	e := newEnv(t)
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{})
	a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 500)
	b.kill()
	submitN(t, a, 500, 500)
	a.waitEvent(t, EventPeerLost)
	st := a.waitFor(t, "solo and drained", func(st Status) bool { return st.Peer == PeerNone && st.HeldOutputs == 0 })
	emitted := 0
	for _, o := range e.rec.snapshot() {
		if o.node == 1 && o.what == "emit" {
			emitted++
		}
	}
	if uint64(emitted) != st.Seq {
		t.Errorf("primary released %d outputs for %d inputs", emitted, st.Seq)
	}
}

func TestReintegrationUnderLoad(t *testing.T) {
	e := newEnv(t)
	a := e.start(1, RolePrimary, sideOpts{})
	stop := make(chan struct{})
	subs := submitUntil(a, stop, 50*time.Microsecond)
	a.waitFor(t, "busy", func(st Status) bool { return st.Seq > 2000 })
	b := e.start(2, RoleJoining, sideOpts{})
	snap := a.waitEvent(t, EventSnapshotSent)
	a.waitEvent(t, EventPeerSynced)
	r := b.waitEvent(t, EventRestored)
	if r.Seq != snap.Seq {
		t.Errorf("restored at seq %d, snapshot was at %d", r.Seq, snap.Seq)
	}
	// The primary kept executing while the snapshot travelled.
	a.waitFor(t, "still serving", func(st Status) bool { return st.Seq > snap.Seq+500 })
	close(stop)
	<-subs
	a.quiet(t, snap.Seq+500)
	sameState(t, a, b)
	t.Logf("snapshot at seq %d, %d bytes, primary paused %v", snap.Seq, snap.Size, snap.Pause)
}

func TestNoGoLiveWhenGuardRefuses(t *testing.T) {
	e := newEnv(t)
	a := e.start(1, RolePrimary, sideOpts{})
	b := e.start(2, RoleJoining, sideOpts{mayGoLive: func() bool { return false }})
	a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 10)
	a.quiet(t, 10)
	a.kill()
	ev := b.waitEvent(t, EventNoGoLive)
	if st := b.node.Status(); st.Role == RolePrimary {
		t.Errorf("node went live although the guard refused (%s)", ev.Reason)
	}
}

func TestNotInSyncDoesNotGoLive(t *testing.T) {
	e := newEnv(t)
	b := e.start(2, RoleJoining, sideOpts{})
	// No primary ever answers: the joiner never holds the log, so it must
	// never go live even once its peer is silent.
	a := e.start(1, RoleJoining, sideOpts{})
	for !b.sess.Status().PeerAlive {
		time.Sleep(time.Millisecond)
	}
	a.kill()
	b.waitEvent(t, EventNoGoLive)
	if st := b.node.Status(); st.Role == RolePrimary {
		t.Error("joiner without a snapshot went live")
	}
}

// TestLargeSnapshotThroughSmallWindow: a 24 MiB snapshot through a link
// whose send window holds 4 MiB: the primary queues chunks as acks free the
// window (never blocking its loop, never dropping the joiner) and the inputs
// stamped meanwhile follow it.
func TestLargeSnapshotThroughSmallWindow(t *testing.T) {
	e := newEnv(t)
	e.slow = true
	const pad = 24 << 20
	a := e.start(1, RolePrimary, sideOpts{rep: &bigToy{pad: pad}, window: 4 << 20})
	submitN(t, a, 0, 100)
	b := e.start(2, RoleJoining, sideOpts{rep: &bigToy{pad: pad}, window: 4 << 20})
	snap := a.waitEvent(t, EventSnapshotSent)
	submitN(t, a, 100, 300) // while the snapshot travels
	a.waitEvent(t, EventPeerSynced)
	r := b.waitEvent(t, EventRestored)
	if r.Seq != snap.Seq || r.Size != 24+pad {
		t.Fatalf("restored %d bytes at seq %d, sent %d at %d; primary %+v; joiner %+v", r.Size, r.Seq, snap.Size, snap.Seq, a.sess.Status(), b.sess.Status())
	}
	st := a.quiet(t, 400)
	if st.Snapshots != 1 {
		t.Errorf("%d snapshots for one join (joiner dropped?)", st.Snapshots)
	}
	sameState(t, a, b)
}

// TestPrimaryHoldsUntilMayGoOnAlone: a primary whose peer falls silent
// releases nothing the peer did not apply, and stamps nothing, until its
// MayGoOnAlone hook says yes (asked again through Reconsider); then it
// goes on alone under a new generation.
func TestPrimaryHoldsUntilMayGoOnAlone(t *testing.T) {
	e := newEnv(t)
	var alone atomic.Bool
	asked := make(chan struct{}, 16)
	a := e.start(1, RolePrimary, sideOpts{mayAlone: func() bool {
		asked <- struct{}{}
		return alone.Load()
	}})
	b := e.start(2, RoleJoining, sideOpts{})
	synced := a.waitEvent(t, EventPeerSynced)
	stop := make(chan struct{})
	// Paced: the log bound must not drop the peer before it falls silent.
	subs := submitUntil(a, stop, time.Millisecond)
	a.waitFor(t, "busy", func(st Status) bool { return st.Seq > synced.Seq+100 })
	b.kill()
	ev := a.waitEvent(t, EventNoGoLive)
	close(stop)
	<-subs
	<-asked
	st := a.waitFor(t, "halted", func(st Status) bool { return st.Halted })
	if st.Role != RolePrimary || st.Peer == PeerNone {
		t.Fatalf("halted primary status %+v (%s)", st, ev.Reason)
	}
	// Nothing released beyond what the dead peer applied, and the
	// sequencer stands still while halted.
	checkOutputRule(t, e.rec.snapshot(), 1, 2, synced.Seq)
	time.Sleep(100 * time.Millisecond)
	if st2 := a.node.Status(); st2.Seq != st.Seq || !st2.Halted {
		t.Fatalf("halted primary went on: seq %d -> %d, status %+v", st.Seq, st2.Seq, st2)
	}
	checkOutputRule(t, e.rec.snapshot(), 1, 2, synced.Seq)

	// Asked again with the hook still refusing: still halted.
	a.node.Reconsider()
	<-asked
	if st2 := a.node.Status(); !st2.Halted || st2.Peer == PeerNone {
		t.Fatalf("primary went on although MayGoOnAlone refused: %+v", st2)
	}
	alone.Store(true)
	a.node.Reconsider()
	lost := a.waitEvent(t, EventPeerLost)
	st = a.waitFor(t, "solo", func(st Status) bool { return st.Peer == PeerNone && !st.Halted && st.HeldOutputs == 0 })
	if lost.Seq != st.Seq {
		t.Errorf("went on alone at seq %d, status seq %d", lost.Seq, st.Seq)
	}
	// Every input it executed has its output out now, and it serves again.
	submitN(t, a, 0, 20)
	st = a.waitFor(t, "serving", func(st Status) bool { return st.Seq >= lost.Seq+20 })
	emitted := map[uint64]bool{}
	for _, o := range e.rec.snapshot() {
		if o.node == 1 && o.what == "emit" {
			emitted[o.seq] = true
		}
	}
	for s := synced.Seq; s <= st.Seq; s++ {
		if !emitted[s] {
			t.Fatalf("output of seq %d never released after going on alone (status %+v)", s, st)
		}
	}
}

// TestHaltedPrimaryResumesWhenPeerReturns: the peer comes back instead;
// it rejoins from a snapshot and the held outputs leave with its ack.
func TestHaltedPrimaryResumesWhenPeerReturns(t *testing.T) {
	e := newEnv(t)
	a := e.start(1, RolePrimary, sideOpts{mayAlone: func() bool { return false }})
	b := e.start(2, RoleJoining, sideOpts{})
	a.waitEvent(t, EventPeerSynced)
	submitN(t, a, 0, 50)
	a.quiet(t, 50)
	b.kill()
	a.waitEvent(t, EventNoGoLive)
	b2 := e.start(2, RoleJoining, sideOpts{})
	a.waitEvent(t, EventPeerSynced)
	b2.waitEvent(t, EventRestored)
	st := a.waitFor(t, "resumed", func(st Status) bool { return !st.Halted && st.Peer == PeerSynced })
	submitN(t, a, 50, 50)
	a.quiet(t, st.Seq+50)
	sameState(t, a, b2)
}

package lockstep

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// preparingToy is a toy whose PrepareSnapshot fails while fail is set
// (the daemon's mirrored disks could not end their resync); snaps counts
// the snapshots taken.
type preparingToy struct {
	toy
	fail  atomic.Bool
	snaps atomic.Int32
}

func (r *preparingToy) PrepareSnapshot() error {
	if r.fail.Load() {
		return errors.New("test: resync not finished")
	}
	return nil
}

func (r *preparingToy) Snapshot() []byte {
	r.snaps.Add(1)
	return r.toy.Snapshot()
}

// A join whose snapshot the primary's replica refuses to prepare sends
// nothing: the joiner stays joining (it never restores, never follows),
// the primary stays solo and keeps serving; a later join is answered.
func TestJoinRefusedWhenSnapshotCannotBePrepared(t *testing.T) {
	e := newEnv(t)
	rep := &preparingToy{}
	rep.fail.Store(true)
	a := e.start(1, RolePrimary, sideOpts{rep: rep})
	submitN(t, a, 0, 20)
	b := e.start(2, RoleJoining, sideOpts{})
	ev := a.waitEvent(t, EventSnapshotRefused)
	if ev.Reason != "test: resync not finished" {
		t.Errorf("refusal reason %q", ev.Reason)
	}
	if n := rep.snaps.Load(); n != 0 {
		t.Fatalf("the primary took %d snapshots although PrepareSnapshot failed", n)
	}
	submitN(t, a, 20, 20)
	time.Sleep(300 * time.Millisecond) // a snapshot, if sent, would arrive meanwhile
	if st := b.node.Status(); st.Role != RoleJoining || st.Seq != 0 {
		t.Fatalf("joiner after a refused snapshot: %+v, want joining at seq 0", st)
	}
	select {
	case ev := <-b.events:
		if ev.Kind == EventRestored {
			t.Fatalf("joiner restored a snapshot the primary refused (seq %d)", ev.Seq)
		}
	default:
	}
	if st := a.node.Status(); st.Role != RolePrimary || st.Peer != PeerNone || st.Seq < 40 {
		t.Fatalf("primary after the refusal: %+v, want solo primary at seq >= 40", st)
	}

	// Prepared this time: a new join request (here: the joiner restarts)
	// gets the snapshot.
	rep.fail.Store(false)
	b.kill()
	b = e.start(2, RoleJoining, sideOpts{})
	snap := a.waitEvent(t, EventSnapshotSent)
	a.waitEvent(t, EventPeerSynced)
	if r := b.waitEvent(t, EventRestored); r.Seq != snap.Seq {
		t.Errorf("restored at seq %d, snapshot at %d", r.Seq, snap.Seq)
	}
	submitN(t, a, 40, 10)
	a.quiet(t, 50)
	sameState(t, a, b)
}

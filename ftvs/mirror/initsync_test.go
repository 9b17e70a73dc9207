package mirror

import (
	"context"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// Two new copies (vdisk.Create on each node, never synced) meet and both
// nodes Connect at once. The interleaving that made the target refuse
// ("neither copy holds good data") about once in thirty daemon pair
// starts is forced here: node 2 asks for node 1's metadata first and gets
// them while node 1 is still new, but that reply reaches node 2 only after
// node 1's own Connect persisted BeginResync on itself and on node 2 (node
// 2 is then Inconsistent with node 1's fresh generation). Node 2 must still
// come out a resync target of node 1 (node 1 is the initial sync source by
// rule), and after FinishResync both copies are UpToDate and identical.
func TestFreshPairInitialSyncRace(t *testing.T) {
	p := newPairWith(t, pairOpts{size: 16 << 20, fresh: true})
	for id := uint8(1); id <= 2; id++ {
		md := p.n[id].disk.Metadata()
		if md.Gens.Current != vdisk.JustCreated || md.State != vdisk.Inconsistent {
			t.Fatalf("node %d: not a new copy: %+v", id, md)
		}
	}
	// Node 1 writes something before the copies ever met: the initial
	// sync must carry it to node 2.
	want := pattern(7, 4<<20)
	if _, err := p.n[1].disk.WriteAt(want, 4<<20); err != nil {
		t.Fatal(err)
	}

	// Node 2's deliveries go through the test: the first reply it gets
	// (to its OpGetMeta) is held until node 1's OpSetMeta landed on node 2.
	in := make(chan link.Delivery, 1024)
	p.hook[2].Store(&in)
	replyType := p.n[2].m.cfg.TypeBase + 1
	held := make(chan struct{})
	release := make(chan struct{})
	go func() {
		holding := true
		var first link.Delivery
		for {
			select {
			case d := <-in:
				if holding && d.Event == nil && d.Type == replyType {
					first, holding = d, false
					close(held)
					go func() {
						<-release
						p.n[2].m.Handle(first)
					}()
					continue
				}
				p.n[2].m.Handle(d)
			case <-t.Context().Done():
				return
			}
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c2 := goConnect(ctx, p.n[2].m)
	select {
	case <-held:
	case <-time.After(20 * time.Second):
		t.Fatal("node 2's metadata request got no reply")
	}
	c1 := goConnect(ctx, p.n[1].m)
	// Node 1 decides the initial sync (both copies were new when it
	// asked) and persists BeginResync: on itself, then node 2.
	deadline := time.Now().Add(20 * time.Second)
	for p.n[2].disk.Metadata().Gens.Current == vdisk.JustCreated {
		if time.Now().After(deadline) {
			t.Fatal("node 1 never persisted BeginResync on node 2")
		}
		time.Sleep(time.Millisecond)
	}
	if md := p.n[1].disk.Metadata(); md.Gens.Current == vdisk.JustCreated || md.State != vdisk.UpToDate {
		t.Fatalf("node 1 after its BeginResync: %+v, want a new generation, UpToDate", md)
	}
	close(release) // node 2 now reads a stale reply to its old question

	r1 := waitConnect(t, "node 1 (source)", c1, 40*time.Second)
	r2 := waitConnect(t, "node 2 (target)", c2, 40*time.Second)
	if r1.err != nil {
		t.Fatalf("node 1 Connect: %v (%v)", r1.err, r1.dec)
	}
	if r2.err != nil {
		t.Fatalf("node 2 Connect: %v (%v)", r2.err, r2.dec)
	}
	if r1.dec.Source != 1 || r2.dec.Source != 1 || r2.dec.Target != 2 {
		t.Fatalf("decisions: node 1 %v, node 2 %v; want node 1 the source on both", r1.dec, r2.dec)
	}
	if ok, why := p.n[2].m.MayGoLive(); ok || why == "" {
		t.Fatalf("node 2 mid-resync: MayGoLive = %v %q, want no (Inconsistent)", ok, why)
	}
	if err := p.n[1].m.FinishResync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.n[2].m.WaitResynced(ctx); err != nil {
		t.Fatal(err)
	}
	for id := uint8(1); id <= 2; id++ {
		if md := p.n[id].disk.Metadata(); md.State != vdisk.UpToDate {
			t.Fatalf("node %d after the initial sync: %v", id, md.State)
		}
	}
	if a, b := p.n[1].disk.Metadata().Gens.Current, p.n[2].disk.Metadata().Gens.Current; a != b {
		t.Fatalf("current generations differ after the initial sync: %#x vs %#x", a, b)
	}
	p.assertIdentical()
	got := make([]byte, len(want))
	if _, err := p.n[2].disk.ReadAt(got, 4<<20); err != nil || string(got) != string(want) {
		t.Fatalf("node 2 lacks node 1's write after the initial sync (err %v)", err)
	}
	// Met again, they are in sync.
	dec, err := p.reconnect(ctx)
	if err != nil || dec.Action != vdisk.InSync {
		t.Fatalf("second meeting: %v %v, want in-sync", dec, err)
	}
}

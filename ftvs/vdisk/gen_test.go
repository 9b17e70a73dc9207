package vdisk

import (
	"fmt"
	"testing"
)

var testUUID = [16]byte{0xf7, 0x5, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}

type g struct {
	state            State
	cur, bm, h0, h1  uint64
	crashed, discard bool
}

func (x g) md(node uint8) Metadata {
	m, err := Layout(64<<20, 512, 1<<20)
	if err != nil {
		panic(err)
	}
	m.UUID, m.Node, m.State = testUUID, node, x.state
	if m.State == 0 {
		m.State = UpToDate
	}
	m.Gens = Gens{Current: x.cur, Bitmap: x.bm, History: [2]uint64{x.h0, x.h1}}
	if x.crashed {
		m.Flags |= FlagCrashedPrimary
	}
	if x.discard {
		m.Flags |= FlagDiscardMyData
	}
	return m
}

const (
	X, Y, Z, P, Q = 0x1111, 0x2222, 0x3333, 0x4444, 0x5555
	JC            = JustCreated
)

func TestDecideTable(t *testing.T) {
	cases := []struct {
		name     string
		a, b     g // node 1, node 2
		act      Action
		src      uint8
		union    bool
		wantRule int
	}{
		{"both new", g{state: Inconsistent, cur: JC}, g{state: Inconsistent, cur: JC}, FullSync, 1, false, 10},
		{"node 1 new disk", g{state: Inconsistent, cur: JC}, g{cur: X}, FullSync, 2, false, 20},
		{"node 2 new disk", g{cur: X, bm: Y}, g{state: Inconsistent, cur: JC}, FullSync, 1, false, 30},
		{"lockstep clean", g{cur: X}, g{cur: X}, InSync, 0, false, 40},
		{"node 1 crashed while applying", g{cur: X, crashed: true}, g{cur: X}, BitmapResync, 1, true, 40},
		{"node 2 crashed while applying", g{cur: X}, g{cur: X, crashed: true}, BitmapResync, 2, true, 40},
		{"double crash in lockstep", g{cur: X, crashed: true}, g{cur: X, crashed: true}, BitmapResync, 1, true, 40},
		{"node 2 went on alone", g{cur: X}, g{cur: Y, bm: X}, BitmapResync, 2, true, 50},
		{"node 1 went on alone", g{cur: Y, bm: X}, g{cur: X}, BitmapResync, 1, true, 70},
		{"double crash, node 2 died first", g{cur: Y, bm: X, crashed: true}, g{cur: X, crashed: true}, BitmapResync, 1, true, 70},
		{"double crash, node 1 died first", g{cur: X, crashed: true}, g{cur: Y, bm: X, crashed: true}, BitmapResync, 2, true, 50},
		{"node 1 far behind (in peer history)", g{cur: X}, g{cur: Z, h0: Y, h1: X}, FullSync, 2, false, 60},
		{"node 2 far behind (in peer history)", g{cur: Z, h0: X}, g{cur: X}, FullSync, 1, false, 80},
		{"split brain from one generation", g{cur: Y, bm: X, crashed: true}, g{cur: Z, bm: X, crashed: true}, SplitBrain, 0, false, 90},
		{"split brain from a common ancestor", g{cur: Y, bm: P, h0: X}, g{cur: Z, bm: Q, h0: X}, SplitBrain, 0, false, 100},
		{"split brain, node 2 discards", g{cur: Y, bm: X}, g{cur: Z, bm: X, discard: true}, BitmapResync, 1, true, 90},
		{"split brain, node 1 discards", g{cur: Y, bm: X, discard: true}, g{cur: Z, bm: X}, BitmapResync, 2, true, 90},
		{"split brain via history, node 1 discards", g{cur: Y, bm: P, h0: X, discard: true}, g{cur: Z, bm: Q, h0: X}, FullSync, 2, false, 100},
		{"split brain, both discard", g{cur: Y, bm: X, discard: true}, g{cur: Z, bm: X, discard: true}, SplitBrain, 0, false, 90},
		{"unrelated generations", g{cur: X, h0: P}, g{cur: Y, h0: Q}, Unrelated, 0, false, 110},
		{"interrupted resync into node 2", g{cur: Y, bm: X}, g{state: Inconsistent, cur: X}, BitmapResync, 1, true, 70},
		{"interrupted resync into node 1", g{state: Inconsistent, cur: X}, g{cur: Y, bm: X}, BitmapResync, 2, true, 50},
		{"inconsistent node 2 with equal gens", g{cur: X}, g{state: Inconsistent, cur: X}, BitmapResync, 1, true, 40},
		{"inconsistent node 2, unrelated gens", g{cur: X}, g{state: Inconsistent, cur: Y}, FullSync, 1, false, 110},
		{"inconsistent node 2 in history", g{cur: Z, h0: X}, g{state: Inconsistent, cur: X}, FullSync, 1, false, 80},
		{"both inconsistent", g{state: Inconsistent, cur: X}, g{state: Inconsistent, cur: Y, bm: X}, Refuse, 0, false, 50},
		// The pair a target saw when it read a new source before, and
		// itself after, the source's BeginResync (mirror.Connect now reads
		// one moment of both): no good copy, still refused.
		{"new node 1, inconsistent node 2 holding a generation", g{state: Inconsistent, cur: JC}, g{state: Inconsistent, cur: X}, Refuse, 0, false, 20},
		// Both sides of the initial sync as mirror.Connect sees them.
		{"initial sync begun: node 2 still new", g{cur: Y, bm: X}, g{state: Inconsistent, cur: JC}, FullSync, 1, false, 30},
		{"initial sync begun on both", g{cur: Y, bm: X}, g{state: Inconsistent, cur: X}, BitmapResync, 1, true, 70},
		{"outdated node would be source", g{state: Outdated, cur: Y, bm: X}, g{cur: X}, Refuse, 0, false, 70},
		{"outdated node 1 is target", g{state: Outdated, cur: X}, g{cur: Y, bm: X}, BitmapResync, 2, true, 50},
		{"both outdated in sync", g{state: Outdated, cur: X}, g{state: Outdated, cur: X}, InSync, 0, false, 40},
		{"diskless node 2", g{cur: X}, g{state: Diskless, cur: X}, FullSync, 1, false, 40},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := c.a.md(1), c.b.md(2)
			for _, order := range []string{"a,b", "b,a"} {
				d := Decide(a, b)
				if order == "b,a" {
					d = Decide(b, a)
				}
				if d.Action != c.act || d.Rule != c.wantRule {
					t.Fatalf("Decide(%s) = %v (rule %d), want %v rule %d", order, d, d.Rule, c.act, c.wantRule)
				}
				if c.act == BitmapResync || c.act == FullSync {
					if d.Source != c.src || d.Target != 3-c.src {
						t.Fatalf("Decide(%s): source %d target %d, want source %d", order, d.Source, d.Target, c.src)
					}
					if c.act == BitmapResync && d.UnionBitmaps != c.union {
						t.Fatalf("Decide(%s): union %v, want %v", order, d.UnionBitmaps, c.union)
					}
				} else if d.Source != 0 || d.Target != 0 {
					t.Fatalf("Decide(%s) = %v names a source/target for %v", order, d, d.Action)
				}
				if d.Reason == "" {
					t.Fatalf("Decide(%s): empty reason", order)
				}
			}
		})
	}
}

func TestDecideIdentity(t *testing.T) {
	a, b := g{cur: X}.md(1), g{cur: X}.md(2)
	b2 := b
	b2.UUID[0] ^= 1
	if d := Decide(a, b2); d.Action != Unrelated {
		t.Errorf("different UUIDs: %v", d)
	}
	if d := Decide(a, a); d.Action != Refuse {
		t.Errorf("same node twice: %v", d)
	}
	b3, _ := Layout(128<<20, 512, 1<<20)
	b3.UUID, b3.Node, b3.State, b3.Gens = testUUID, 2, UpToDate, b.Gens
	if d := Decide(a, b3); d.Action != Refuse {
		t.Errorf("different sizes: %v", d)
	}
}

// TestLifecycle walks the generations through a sequence of failures using
// only the transition functions, checking Decide at every step.
func TestLifecycle(t *testing.T) {
	n1, n2 := g{state: Inconsistent, cur: JC}.md(1), g{state: Inconsistent, cur: JC}.md(2)
	gen := uint64(0x100)
	next := func() uint64 { gen += 0x100; return gen }
	expect := func(step string, act Action, src uint8) {
		t.Helper()
		d := Decide(n1, n2)
		if d.Action != act || (src != 0 && d.Source != src) {
			t.Fatalf("%s: %v, want %v from %d", step, d, act, src)
		}
	}
	sync := func(step string, full bool) {
		t.Helper()
		d := Decide(n1, n2)
		src, dst := &n1, &n2
		if d.Source == 2 {
			src, dst = &n2, &n1
		}
		*src, *dst = BeginResync(*src, *dst, full, next())
		if ok, _ := CanGoLiveAlone(*dst); ok {
			t.Fatalf("%s: resync target may go live alone", step)
		}
		// A restart in the middle continues as a bitmap resync.
		if r := Decide(n1, n2); r.Action != BitmapResync || r.Source != d.Source {
			t.Fatalf("%s: restart during resync decides %v", step, r)
		}
		*src, *dst = EndResync(*src, *dst)
		expect(step+" done", InSync, 0)
	}
	expect("new pair", FullSync, 1)
	sync("initial sync", true)
	n2 = GoSolo(n2, next())
	expect("node 1 lost", BitmapResync, 2)
	sync("node 1 back", false)
	n1 = GoSolo(n1, next())
	expect("node 2 lost", BitmapResync, 1)
	// Node 2 is lost again before the resync: node 1 keeps its marks.
	n1 = GoSolo(n1, next())
	expect("node 2 lost again", BitmapResync, 1)
	sync("node 2 back", false)
	// Partition: both go on alone.
	n1, n2 = GoSolo(n1, next()), GoSolo(n2, next())
	expect("partition", SplitBrain, 0)
	n2 = MarkDiscard(n2)
	if ok, _ := CanGoLiveAlone(n2); ok {
		t.Fatal("the split-brain victim may go live alone")
	}
	expect("resolved", BitmapResync, 1)
	sync("victim resynced", false)
	if n2.Discard() {
		t.Fatal("discard flag survives the resync")
	}
	n2 = Outdate(n2)
	if ok, _ := CanGoLiveAlone(n2); ok {
		t.Fatal("an Outdated copy may go live alone")
	}
	if ok, why := CanGoLiveAlone(n1); !ok {
		t.Fatalf("UpToDate copy may not go live: %s", why)
	}
}

func ExampleDecide() {
	a := g{cur: Y, bm: X}.md(1)
	b := g{cur: X}.md(2)
	fmt.Println(Decide(b, a))
	// Output: bitmap-resync from node 1 to node 2: this copy has marked every write since the peer's current generation
}

package state

import (
	"context"
	"testing"
	"time"
)

func pair() Snapshot {
	return Snapshot{
		LocalNode: 1,
		CoServers: []CoServer{{Node: 1, Role: "primary", Health: OK, InService: true}, {Node: 2, Role: "secondary", Health: OK, InService: true}},
		Links:     []Link{{Name: "link1", Up: true, Active: true, Health: OK}, {Name: "link2", Up: true, Health: OK}},
		Disks:     []DiskCopy{{Disk: "vd0", Node: 2, State: Inconsistent, Attached: true, Syncing: true, Progress: 0.5}},
		Witness:   Witness{Configured: true, Address: "10.9.0.1:7000", Checked: true, Reachable: true, Health: OK},
	}
}

type chanSource struct {
	snap chan Snapshot
	cur  Snapshot
	evs  chan Event
}

func (s *chanSource) Snapshot() Snapshot {
	select {
	case s.cur = <-s.snap:
	default:
	}
	return s.cur
}
func (s *chanSource) Events() <-chan Event { return s.evs }

func TestDiffDerivesEachKind(t *testing.T) {
	a, b := pair(), pair()
	b.CoServers[1].Health, b.CoServers[1].Role = Failed, "lost"
	b.Links[0].Up = false
	b.Disks[0].Syncing, b.Disks[0].State, b.Disks[0].ResyncsDone = false, UpToDate, 1
	b.Witness.Reachable = false
	got := map[string]bool{}
	for _, e := range Diff(&a, &b, time.Now()) {
		got[e.Kind] = true
	}
	for _, k := range []string{KindCoServerLost, KindLinkLost, KindResyncDone, KindWitnessUnreachable} {
		if !got[k] {
			t.Errorf("missing %s in %v", k, got)
		}
	}
	c := b
	c.Disks = []DiskCopy{{Disk: "vd0", Node: 2, State: UpToDate}}
	got = map[string]bool{}
	for _, e := range Diff(&a, &c, time.Now()) {
		got[e.Kind] = true
	}
	if !got[KindDiskDetached] {
		t.Errorf("detach not derived: %v", got)
	}
	back := map[string]bool{}
	for _, e := range Diff(&b, &a, time.Now()) {
		back[e.Kind] = true
	}
	for _, k := range []string{KindCoServerBack, KindLinkBack, KindWitnessBack} {
		if !back[k] {
			t.Errorf("missing %s in %v", k, back)
		}
	}
	if n := len(Diff(&a, &a, time.Now())); n != 0 {
		t.Errorf("no change derived %d events", n)
	}
}

func TestModelRunEventsRingAndSubscribers(t *testing.T) {
	src := &chanSource{snap: make(chan Snapshot, 1), cur: pair(), evs: make(chan Event, 4)}
	m := NewModel(3)
	var hooked []string
	hookCh := make(chan string, 16)
	m.OnEvent(func(e Event) { hookCh <- e.Kind })
	tick, cancel := m.Subscribe()
	defer cancel()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx, src, 10*time.Millisecond) }()
	<-tick
	lost := pair()
	lost.CoServers[1].Health = Failed
	src.snap <- lost
	for _, k := range []string{"divergence", "split-brain", "a", "b"} {
		src.evs <- Event{Kind: k}
	}
	deadline := time.After(10 * time.Second)
	for len(hooked) < 5 {
		select {
		case k := <-hookCh:
			hooked = append(hooked, k)
		case <-deadline:
			t.Fatalf("hooks saw %v", hooked)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cur := m.Current()
	if len(cur.Events) != 3 || cur.Events[2].Kind != hooked[4] || cur.Events[0].Kind != hooked[2] {
		t.Fatalf("ring kept %+v, want the last 3", cur.Events)
	}
	if cur.CoServer(2).Health != Failed || cur.Version < 2 {
		t.Fatalf("current %+v", cur)
	}
	seenLost := false
	for _, k := range hooked {
		seenLost = seenLost || k == KindCoServerLost
	}
	if !seenLost {
		t.Fatalf("hooks saw %v, no coserver-lost", hooked)
	}
}

// TestUpdateCopies: a Source that changes its slices in place must still
// produce a change (the Model keeps its own copy).
func TestUpdateCopies(t *testing.T) {
	m := NewModel(0)
	s := pair()
	m.Update(s)
	s.CoServers[1].Health = Failed
	m.Update(s)
	cur := m.Current()
	if len(cur.Events) != 1 || cur.Events[0].Kind != KindCoServerLost {
		t.Fatalf("events %+v", cur.Events)
	}
	cur.CoServers[0].Role = "scribbled"
	if m.Current().CoServers[0].Role != "primary" {
		t.Fatal("Current shares memory with the Model")
	}
}

// TestWitnessNeverAnsweredAndResyncCounter: a witness that has not answered
// since the manager started is reported by the first snapshot already (there
// is no earlier reachable one to compare with), and not again while it stays
// so; resync-done follows the source's counter and names the target copy.
func TestWitnessNeverAnsweredAndResyncCounter(t *testing.T) {
	m := NewModel(0)
	s := pair()
	s.Witness = Witness{Configured: true, Address: "w:1", Checked: true, LastError: "refused"}
	s.Disks = []DiskCopy{{Disk: "vd0", Node: 1, State: UpToDate, Attached: true, ResyncsDone: 1}}
	m.Update(s)
	m.Update(s)
	var kinds []string
	for _, e := range m.Current().Events {
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) != 1 || kinds[0] != KindWitnessUnreachable {
		t.Fatalf("events %v: want one witness-unreachable", kinds)
	}
	s.Disks[0].ResyncsDone = 2
	m.Update(s)
	evs := m.Current().Events
	if e := evs[len(evs)-1]; e.Kind != KindResyncDone || e.Node != 2 || e.Component != "disk vd0 on node 2" {
		t.Fatalf("last event %+v: want resync-done of node 2's copy", e)
	}
	// An unchecked witness (a secondary's view) says nothing.
	u := pair()
	u.Witness = Witness{Configured: true, Address: "w:1"}
	if evs := Diff(&Snapshot{}, &u, time.Now()); len(evs) != 0 {
		t.Fatalf("unchecked witness derived %v", evs)
	}
}

package feed_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
	"github.com/ftvs/ftvs/ftvs/manager/feed"
	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// daemon serves a coserver.Status the way the real daemon does.
type daemon struct {
	mu sync.Mutex
	st coserver.Status
}

func (d *daemon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = json.NewEncoder(w).Encode(d.st)
}

func TestPollerMapsTheDaemonsStatus(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	one := &daemon{st: coserver.Status{Node: 1, Role: "primary", Peer: "synced", PeerAlive: true, PeerRole: "secondary", Seq: 900, PeerApplied: 897, Lag: 3,
		Links:      []coserver.LinkStatus{{Name: "link1", Up: true, Active: true, RTTUS: 150}, {Name: "link2", Up: false}},
		Redirected: coserver.PortStatus{Interface: "eth1", Carrier: true, RxFrames: 10, TxFrames: 12},
		Events:     []coserver.Event{{Time: t0, Kind: "start"}, {Time: t0.Add(time.Second), Kind: "divergence", Seq: 42, Detail: "hash"}}}}
	two := &daemon{st: coserver.Status{Node: 2, Role: "secondary", PeerAlive: true, PeerRole: "primary", Seq: 897,
		Redirected: coserver.PortStatus{Interface: "eth1", Carrier: true}}}
	s1, s2 := httptest.NewServer(one), httptest.NewServer(two)
	defer s1.Close()
	p := feed.NewPoller(strings.TrimPrefix(s1.URL, "http://"), strings.TrimPrefix(s2.URL, "http://"))
	snap := p.Snapshot()
	if c := snap.CoServer(1); c.Role != "primary" || c.Health != state.OK {
		t.Fatalf("node 1 %+v", c)
	}
	if c := snap.CoServer(2); c.Role != "secondary" || c.Health != state.OK {
		t.Fatalf("node 2 %+v", c)
	}
	if len(snap.Links) != 2 || snap.Links[0].RTTUS != 150 || snap.Links[1].Health != state.Failed {
		t.Fatalf("links %+v", snap.Links)
	}
	if v := snap.VS; !v.Running || !v.Serving || v.PrimaryNode != 1 || v.LogPosition != 900 || v.Lag != 3 || v.PortNode != 1 {
		t.Fatalf("vs %+v", v)
	}
	if len(snap.NICs) != 2 || !snap.NICs[0].Active || snap.NICs[1].Active {
		t.Fatalf("nics %+v", snap.NICs)
	}
	var kinds []string
	for len(p.Events()) > 0 {
		kinds = append(kinds, (<-p.Events()).Kind)
	}
	if strings.Join(kinds, ",") != "start,divergence" {
		t.Fatalf("events %v", kinds)
	}
	p.Snapshot()
	if n := len(p.Events()); n != 0 {
		t.Fatalf("%d events forwarded twice", n)
	}

	// The secondary dies: its address is silent and the links hear nothing.
	s2.Close()
	one.mu.Lock()
	one.st.Peer, one.st.PeerAlive, one.st.Lag = "none", false, 0
	one.mu.Unlock()
	m := state.NewModel(0)
	m.Update(snap)
	m.Update(p.Snapshot())
	cur := m.Current()
	if c := cur.CoServer(2); c.Role != "lost" || c.Health != state.Failed {
		t.Fatalf("node 2 after its death %+v", c)
	}
	if c := cur.CoServer(1); c.Health != state.Degraded {
		t.Fatalf("solo primary %+v", c)
	}
	if len(cur.Events) != 1 || cur.Events[0].Kind != state.KindCoServerLost {
		t.Fatalf("events %+v", cur.Events)
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := json.Marshal(coserver.Status{Node: 2, Role: "secondary", Links: []coserver.LinkStatus{{Name: "l"}}})
	f.Add(b)
	f.Add([]byte(`{"node":1,"events":[{"time":"2026-01-01T00:00:00Z","kind":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := feed.Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		_ = feed.Snapshot(st, st) // the mapping must take whatever decodes
	})
}

// TestSnapshotMapsFigures: the daemon's disk copies, witness, output-hold
// histogram, requests and VS stop reach the model (the JSON names of
// coserver.Status and feed.Status agree).
func TestSnapshotMapsFigures(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	dec := func(st coserver.Status) *feed.Status {
		b, _ := json.Marshal(st)
		s, err := feed.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	one := dec(coserver.Status{Node: 1, Role: "primary", Peer: "synced", PeerAlive: true,
		Redirected:   coserver.PortStatus{Interface: "eth1", Carrier: true, RxBytes: 100, TxBytes: 200},
		Disks:        []coserver.DiskStatus{{Name: "data", State: "UpToDate", Attached: true, Syncing: true, Source: true, Progress: 0.25, RateBps: 1000, ResyncedBytes: 4096, ResyncsDone: 3}},
		Witness:      &coserver.WitnessStatus{Address: "w:1", Checked: true, Reachable: true, Holder: true, Last: at},
		OutputHold:   coserver.HoldHistogram{Bounds: []float64{0.001, 1}, Counts: []uint64{4, 5}, Count: 6, SumS: 2},
		Services:     map[string]uint64{"http": 7},
		Failovers:    2,
		ResyncBytes:  4096,
		LinkBytesOut: 9, LinkBytesIn: 8})
	two := dec(coserver.Status{Node: 2, Role: "secondary", PeerAlive: true,
		Disks:   []coserver.DiskStatus{{Name: "data", State: "Inconsistent", Attached: true, Syncing: true}},
		Witness: &coserver.WitnessStatus{Address: "w:1", Checked: true, Reachable: false, Last: at.Add(-time.Hour)}})
	s := feed.Snapshot(one, two)
	if len(s.Disks) != 2 || s.Disks[0].Health != state.Degraded || s.Disks[0].ResyncsDone != 3 || s.Disks[0].Progress != 0.25 ||
		s.Disks[1].Node != 2 || s.Disks[1].State != state.Inconsistent {
		t.Fatalf("disks %+v", s.Disks)
	}
	if w := s.Witness; !w.Configured || !w.Checked || !w.Reachable || w.LeaseHolder != 1 || w.Health != state.OK {
		t.Fatalf("witness %+v: want node 1's newer view", w)
	}
	k := s.Counters
	if k.OutputHold.Count != 6 || k.OutputHold.Sum != 2 || k.ServiceRequests["http"] != 7 || k.Failovers != 2 || k.BytesOut != 200 || k.ResyncBytes != 4096 || k.LinkBytesOut != 9 || k.LinkBytesIn != 8 {
		t.Fatalf("counters %+v", k)
	}
	stopped := dec(coserver.Status{Node: 1, Role: "vs-stopped", VSStopped: true, VSStoppedAt: at})
	if s := feed.Snapshot(stopped, nil); !s.VS.Stopped || s.VS.Running {
		t.Fatalf("vs %+v: want stopped", s.VS)
	}
}

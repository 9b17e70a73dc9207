package beacon

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/installer/host"
	"github.com/ftvs/ftvs/installer/internal/nstest"
)

// openIn opens a session on every NIC of namespace ns.
func openIn(t *testing.T, ns string) *Session {
	var s *Session
	var err error
	nstest.In(t, ns, func() {
		var nics []host.NIC
		if nics, err = host.Live().NICs(true); err != nil {
			return
		}
		s, err = Open(nics)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestClassifyInNamespaces(t *testing.T) {
	tp := nstest.Build(t, "fi6")
	key := make([]byte, 32)
	sa, sb := openIn(t, tp.NodeA), openIn(t, tp.NodeB)
	ids := []Identity{{NodeID: "node-a", Digest: sha256.Sum256([]byte("a"))}, {NodeID: "node-b", Digest: sha256.Sum256([]byte("b"))}}
	obs := make([]*Observation, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []*Session{sa, sb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obs[i], errs[i] = s.Exchange(context.Background(), ids[i], Options{Duration: 2 * time.Second, Key: key})
		}()
	}
	wg.Wait()
	for i := range obs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		want := map[string]Class{tp.CrossNIC[0]: Crossover, tp.CrossNIC[1]: Crossover, tp.ProdNIC: Switched, tp.MgmtNIC: Switched}
		if len(obs[i].NICs) != 4 {
			t.Fatalf("node %d: %d NICs", i, len(obs[i].NICs))
		}
		for _, h := range obs[i].NICs {
			t.Logf("node %s: %s", ids[i].NodeID, h.Summary())
			if got := h.Classify(); got != want[h.NIC.Name] {
				t.Errorf("node %s NIC %s: %s, want %s", ids[i].NodeID, h.NIC.Name, got, want[h.NIC.Name])
			}
			if h.BadBeacons != 0 {
				t.Errorf("bad beacons: %s", h.BadReason)
			}
			if got := h.Classify(); got == Crossover {
				p := h.Peer()
				if p.NodeID != ids[1-i].NodeID || p.Digest != ids[1-i].Digest || !p.Signed || p.Slot != "virtual:"+h.NIC.Name {
					t.Errorf("crossover %s heard %+v", h.NIC.Name, p)
				}
			}
			// The switched NICs hear the peer too, and the station's address.
			if h.NIC.Name == tp.ProdNIC && (len(h.Peers) != 1 || len(h.Addrs) != 1 || h.Addrs[0] != tp.ProdIP) {
				t.Errorf("production NIC heard %s", h.Summary())
			}
		}
	}
}

func TestWrongKeyIsNotAPeer(t *testing.T) {
	tp := nstest.Build(t, "fi6")
	sa, sb := openIn(t, tp.NodeA), openIn(t, tp.NodeB)
	var wg sync.WaitGroup
	var oa *Observation
	var err error
	wg.Add(2)
	go func() {
		defer wg.Done()
		oa, err = sa.Exchange(context.Background(), Identity{NodeID: "a"}, Options{Duration: time.Second, Key: make([]byte, 32)})
	}()
	go func() {
		defer wg.Done()
		sb.Exchange(context.Background(), Identity{NodeID: "b"}, Options{Duration: time.Second, Key: []byte("another key, thirty-two bytes!!!")})
	}()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range oa.NICs {
		if len(h.Peers) != 0 || h.BadBeacons == 0 {
			t.Errorf("%s: %s", h.NIC.Name, h.Summary())
		}
	}
}

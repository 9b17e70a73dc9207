package pairing

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/link/linktest"
	"github.com/ftvs/ftvs/hwcheck/inventory"
	"github.com/ftvs/ftvs/hwcheck/policy"
)

func load(t *testing.T, name string) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Load(context.Background(), "../../testdata/installer/"+name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func pair(t *testing.T, invA, invB *inventory.Inventory, keyB []byte, timeout time.Duration) ([2]*Result, [2]error) {
	p := linktest.NewPair(t, "fi6q", 1, 66)
	pol, err := policy.Load("../../testdata/installer/hwpolicy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	if keyB == nil {
		keyB = key
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var res [2]*Result
	var errs [2]error
	var wg sync.WaitGroup
	for i, side := range []struct {
		ns, ifc     string
		local, peer string
		inv         *inventory.Inventory
		key         []byte
	}{
		{p.A, p.IfA[0], p.LinksA[0].Local, p.LinksA[0].Peer, invA, key},
		{p.B, p.IfB[0], p.LinksB[0].Local, p.LinksB[0].Peer, invB, keyB},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := Link{Interface: side.ifc, Local: netip.MustParseAddr(side.local), Peer: netip.MustParseAddr(side.peer), Net: linktest.Net{NS: side.ns}}
			res[i], errs[i] = Pair(ctx, i+1, side.key, l, side.inv, pol, nil)
		}()
	}
	wg.Wait()
	return res, errs
}

func TestPairMatch(t *testing.T) {
	res, errs := pair(t, load(t, "inventory.json"), load(t, "inventory.json"), nil, 30*time.Second)
	for i := range res {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i+1, errs[i])
		}
		if !res[i].Match || !res[i].PeerAgrees {
			t.Fatalf("node %d: %+v\n%s", i+1, res[i], res[i].Text)
		}
	}
}

func TestPairMismatchBothSidesSameReport(t *testing.T) {
	res, errs := pair(t, load(t, "inventory.json"), load(t, "inventory-other-bios.json"), nil, 30*time.Second)
	for i := range res {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i+1, errs[i])
		}
		if res[i].Match || res[i].PeerSays != "mismatch" || !strings.Contains(res[i].Text, `bios.version: "3.0c" vs "3.0d"`) {
			t.Fatalf("node %d: match=%v peer=%s\n%s", i+1, res[i].Match, res[i].PeerSays, res[i].Text)
		}
	}
	if res[0].Text != res[1].Text {
		t.Fatalf("the two consoles show different reports:\n%s\n---\n%s", res[0].Text, res[1].Text)
	}
}

func TestPairWrongKeyFails(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the pairing timeout")
	}
	_, errs := pair(t, load(t, "inventory.json"), load(t, "inventory.json"), []byte("another key, thirty-two bytes!!!"), 3*time.Second)
	if errs[0] == nil || errs[1] == nil {
		t.Fatalf("paired with a wrong key: %v", errs)
	}
}

package roles

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/installer/beacon"
	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/host"
	"github.com/ftvs/ftvs/installer/internal/nstest"
)

const cfgYAML = `version: 1
nics:
  scan: all
  listen: 1500ms
addresses:
  management: [10.0.0.11/24, 10.0.0.12/24]
disk: {target: /dev/null}
virtual_disks: [{name: boot, size: 100MiB}]
vs: {mac: "02:00:00:00:00:01", ip: 192.168.50.10/24}
`

func mustCfg(t *testing.T, y string) *config.Config {
	t.Helper()
	c, err := config.Parse("t.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func nic(name, mac string) host.NIC {
	m, _ := net.ParseMAC(mac)
	return host.NIC{Name: name, MAC: m}
}

// obs builds what four NICs heard: two crossovers to node-b, one switch
// carrying the VS subnet, one carrying the management subnet.
func obs(nics []host.NIC, prodAddr string) *beacon.Observation {
	peer := &beacon.Beacon{NodeID: "node-b", NICMAC: net.HardwareAddr{2, 0, 0, 0, 0, 0xb}}
	other := &beacon.Beacon{NodeID: "node-c"}
	o := &beacon.Observation{}
	for _, n := range nics {
		h := &beacon.Heard{NIC: n, Peers: map[string]*beacon.Beacon{"node-b": peer}}
		switch n.Name {
		case "nic0":
			h.Stations = []string{"02:aa:00:00:00:09"}
			if prodAddr != "" {
				h.Addrs = append(h.Addrs, mustAddr(prodAddr))
			}
		case "nic2":
			h.Stations = []string{"02:bb:00:00:00:01"}
			h.Addrs = append(h.Addrs, mustAddr("10.0.0.1"))
		case "nic4":
			h.Peers["node-c"] = other // beacons of a third node: a switch
		}
		o.NICs = append(o.NICs, h)
	}
	return o
}

func TestProposeFromBeacons(t *testing.T) {
	c := mustCfg(t, cfgYAML)
	nics := []host.NIC{nic("nic0", "02:00:00:00:00:10"), nic("nic1", "02:00:00:00:00:11"), nic("nic2", "02:00:00:00:00:12"),
		nic("nic3", "02:00:00:00:00:13"), nic("nic4", "02:00:00:00:00:14")}
	p, err := Propose(c, &config.Resolved{NICs: nics}, obs(nics, "192.168.50.9"))
	if err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + p.Table())
	got := roleString(p)
	if want := "nic0=redirected nic1=coserver nic2=management nic3=coserver nic4=unused"; got != want {
		t.Fatalf("roles %s, want %s", got, want)
	}
	if p.Peer.NodeID != "node-b" {
		t.Fatalf("peer %v", p.Peer)
	}
	// Without subnet hints the switched NICs go by slot order: management first.
	p, err = Propose(c, &config.Resolved{NICs: nics[:4]}, obs(nics[:4], ""))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := roleString(p), "nic0=redirected nic1=coserver nic2=management nic3=coserver"; got != want {
		t.Fatalf("roles %s, want %s", got, want)
	}
}

func TestConfiguredRolesWin(t *testing.T) {
	c := mustCfg(t, strings.Replace(cfgYAML, "  listen: 1500ms\n", "  listen: 1500ms\n  coserver: nic3\n  management: nic0\n", 1))
	nics := []host.NIC{nic("nic0", "02:00:00:00:00:10"), nic("nic1", "02:00:00:00:00:11"), nic("nic2", "02:00:00:00:00:12"), nic("nic3", "02:00:00:00:00:13")}
	res := &config.Resolved{NICs: nics, CoServer: []host.NIC{nics[3]}, Management: &nics[0]}
	p, err := Propose(c, res, obs(nics, ""))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := roleString(p), "nic0=management nic1=unused nic2=redirected nic3=coserver"; got != want {
		t.Fatalf("roles %s, want %s", got, want)
	}
	// A configured CoServer link behind a switch is refused.
	res = &config.Resolved{NICs: nics, CoServer: []host.NIC{nics[2]}}
	c = mustCfg(t, strings.Replace(cfgYAML, "  listen: 1500ms\n", "  listen: 1500ms\n  coserver: nic2\n", 1))
	if _, err := Propose(c, res, obs(nics, "")); err == nil || !strings.Contains(err.Error(), "behind a switch") {
		t.Fatalf("switched CoServer link accepted: %v", err)
	}
}

func TestNoCrossoverNoTwoNICs(t *testing.T) {
	c := mustCfg(t, cfgYAML)
	nics := []host.NIC{nic("nic0", "02:00:00:00:00:10"), nic("nic2", "02:00:00:00:00:12"), nic("nic4", "02:00:00:00:00:14")}
	if _, err := Propose(c, &config.Resolved{NICs: nics}, obs(nics, "")); err == nil || !strings.Contains(err.Error(), "no crossover link") {
		t.Fatalf("got %v", err)
	}
	if _, err := Propose(c, &config.Resolved{NICs: nics[:2]}, obs(nics[:2], "")); err == nil || !strings.Contains(err.Error(), "at least 3") {
		t.Fatalf("got %v", err)
	}
}

func TestCompareAndNodeNumber(t *testing.T) {
	a := []beacon.RoleEntry{{Role: "coserver", Slot: "0000:03:00.0"}, {Role: "redirected", Slot: "0000:05:00.0"}, {Role: "management", Slot: "0000:06:00.0"}}
	b := []beacon.RoleEntry{{Role: "management", Slot: "0000:06:00.0"}, {Role: "coserver", Slot: "0000:03:00.0"}, {Role: "redirected", Slot: "0000:05:00.0"}}
	if err := Compare(a, b); err != nil {
		t.Fatal(err)
	}
	b[0].Slot = "0000:03:00.1"
	err := Compare(a, b)
	if err == nil || !strings.Contains(err.Error(), "slot 0000:03:00.1: here unused, peer management") ||
		!strings.Contains(err.Error(), "slot 0000:06:00.0: here management, peer unused") {
		t.Fatalf("got %v", err)
	}
	lo, hi := net.HardwareAddr{2, 0, 0, 0, 0, 1}, net.HardwareAddr{2, 0, 0, 0, 0, 2}
	if n, _ := NodeNumber(0, lo, &beacon.Beacon{NICMAC: hi}); n != 1 {
		t.Fatal("lower MAC is not node 1")
	}
	if n, _ := NodeNumber(0, hi, &beacon.Beacon{NICMAC: lo}); n != 2 {
		t.Fatal("higher MAC is not node 2")
	}
	if n, _ := NodeNumber(0, lo, &beacon.Beacon{NICMAC: hi, NodeNumber: 1}); n != 2 {
		t.Fatal("peer configured as 1 does not make us 2")
	}
	if _, err := NodeNumber(2, lo, &beacon.Beacon{NICMAC: hi, NodeNumber: 2}); err == nil {
		t.Fatal("two node 2s accepted")
	}
}

// TestDiscoverInNamespaces runs the NIC step on two nodes at once: nobody
// says which NIC is which, yet both reach the same roles, and the NICs on
// the switches are not CoServer links.
func TestDiscoverInNamespaces(t *testing.T) {
	tp := nstest.Build(t, "fi6")
	c := mustCfg(t, cfgYAML)
	var wg sync.WaitGroup
	disc := make([]*Discovery, 2)
	errs := make([]error, 2)
	for i, ns := range []string{tp.NodeA, tp.NodeB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := nstest.Run(ns, func() {
				nics, err := host.Live().NICs(true)
				if err != nil {
					errs[i] = err
					return
				}
				disc[i], errs[i] = Discover(context.Background(), c, &config.Resolved{NICs: nics}, [32]byte{byte(i)}, make([]byte, 32), nil)
			})
			if err != nil {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, d := range disc {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		t.Logf("node %s (number %d):\n%s", d.NodeID, d.NodeNumber, d.Proposal.Table())
		want := "nic0=redirected nic1=coserver nic2=management nic3=coserver"
		if got := roleString(d.Proposal); got != want {
			t.Errorf("node %d roles %s, want %s", i, got, want)
		}
	}
	if disc[0].NodeNumber+disc[1].NodeNumber != 3 {
		t.Fatalf("node numbers %d and %d", disc[0].NodeNumber, disc[1].NodeNumber)
	}
	if disc[0].Proposal.Peer.NodeID != disc[1].NodeID {
		t.Fatalf("node a heard %s, node b is %s", disc[0].Proposal.Peer.NodeID, disc[1].NodeID)
	}
}

func roleString(p *Proposal) string {
	var s []string
	for _, a := range p.NICs {
		r := string(a.Role)
		if r == "" {
			r = "unused"
		}
		s = append(s, a.NIC.Name+"="+r)
	}
	return strings.Join(s, " ")
}

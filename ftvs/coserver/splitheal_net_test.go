package coserver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
	"github.com/ftvs/ftvs/ftvs/internal/ackcheck"
	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// TestSplitBrainHealFences: a true split site (both CoServer links, the
// management network and the production LAN cut, no witness) lets both
// nodes go live; then only one path heals, and the two primaries must still
// find each other and leave one VS on the wire:
//   - lan: only the production LAN heals, and no client talks. The links
//     and management stay silent; each primary's ARP probe for the VS IP
//     draws an answer from the other VS; with nobody to ask, node 2 fences
//     (the tie rule) and node 1 serves on.
//   - management: only the management network heals; the management probe
//     finds the peer primary and the node that went live later (node 2)
//     fences. Then the LAN heals.
//
// Either way node 2 shows "fenced (split brain)" within a short bound and
// raises a split-brain event, tcpdump on the bridge sees frames from the VS
// MAC on node 1's port only, and clients on both former sides are served.
func TestSplitBrainHealFences(t *testing.T) {
	netnstest.Require(t, "tcpdump")
	for _, heal := range []string{"lan", "management"} {
		t.Run(heal, func(t *testing.T) {
			p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fsh"})
			p.startPair()
			cli2 := p.splitSite()
			get := func(ns *netnstest.NS, what string) {
				t.Helper()
				out, err := ns.Run("curl", "-sS", "--fail", "--max-time", "10", "http://"+vsIP+"/small.txt")
				if err != nil || out != "small\n" {
					t.Fatalf("%s: %q %v", what, out, err)
				}
			}
			get(p.cli, "node 1's side, partitioned")
			get(cli2, "node 2's side, partitioned")
			t.Log("partitioned: both nodes serve")

			t0 := time.Now()
			if heal == "lan" {
				// No client talks meanwhile: the primaries' own ARP probes
				// must find each other.
				p.healLAN()
			} else {
				p.healManagement()
			}
			var st2 *coserver.Status
			if !netnstest.WaitFor(10*time.Second, func() bool {
				var err error
				st2, err = p.status(2)
				return err == nil && st2.Role == "fenced (split brain)" && st2.Fenced
			}) {
				t.Fatalf("node 2 did not fence itself within 10 s of the %s healing: %+v", heal, st2)
			}
			took := time.Since(t0)
			if !hasEvent(st2, "split-brain") {
				t.Errorf("node 2 fenced without a split-brain event: %+v", st2.Events)
			}
			if st1, err := p.status(1); err != nil || st1.Role != "primary" || st1.Fenced {
				t.Fatalf("node 1 after node 2 fenced: %+v %v", st1, err)
			}
			stopDumps := p.dumpVSFrames()
			if heal != "lan" {
				p.healLAN()
			}
			for k := range 10 {
				get(p.cli, fmt.Sprintf("request %d from node 1's side, healed", k))
				get(cli2, fmt.Sprintf("request %d from node 2's former side, healed", k))
			}
			time.Sleep(300 * time.Millisecond)
			n := stopDumps()
			t.Logf("FIGURES split-brain heal (%s): node 2 fenced %s after the heal; then frames from the VS MAC: %d on node 1's port, %d on node 2's", heal, took.Round(time.Millisecond), n[1], n[2])
			if n[1] == 0 || n[2] != 0 {
				t.Fatalf("VS frames per bridge port: node1 %d, node2 %d: want node 1's only", n[1], n[2])
			}
			if st2, err := p.status(2); err != nil || st2.Role != "fenced (split brain)" {
				t.Fatalf("node 2 no longer fenced before the operator acted: %+v %v", st2, err)
			}
		})
	}
}

// TestSplitBrainKeepFencedNode: the operator may keep the fenced node's
// data. After a staged split brain with both sides written and the links
// healed (node 2 fenced), `ftvs ctl resolve-split-brain --keep 2` at node
// 1's API makes node 1 discard its VS and rejoin node 2; once node 1
// follows node 2's VS the fence lifts, node 2 serves again, and its side's
// writes are what clients read.
func TestSplitBrainKeepFencedNode(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fsk"})
	copies := p.withDisks(t, "16MiB")
	token := p.managed(t, ftvsBin)
	p.startPair()
	cli2 := p.splitSite()
	c1, c2 := p.nbd(t), p.nbdFrom(t, cli2)
	ch1, ch2 := startChecker(c1, 0, 1024), startChecker(c2, 1024, 1024)
	time.Sleep(2 * time.Second)
	if err := ch1.stop(); err != nil {
		t.Fatalf("node 1's side: %v", err)
	}
	if err := ch2.stop(); err != nil {
		t.Fatalf("node 2's side: %v", err)
	}
	p.healManagement()
	p.healLinks()
	p.waitRole(2, "fenced (split brain)", "", 10*time.Second)
	if !netnstest.WaitFor(30*time.Second, func() bool { return p.countEvents(2, "disk-split-brain") > 0 }) {
		t.Fatalf("node 2 never reported the split brain:\n%s", p.diskEvents(2))
	}
	p.healLAN()

	t0 := time.Now()
	if out, err := p.cs[1].Run(ftvsBin, "ctl", "--addr", "10.98.0.1:7444", "--ca", p.apiCA(1), "--token-file", token,
		"resolve-split-brain", "--keep", "2"); err != nil {
		t.Fatalf("ctl resolve-split-brain --keep 2: %v\n%s", err, out)
	}
	p.waitRole(2, "primary", "synced", 90*time.Second)
	p.waitRole(1, "secondary", "", 20*time.Second)
	st2, err := p.status(2)
	if err != nil || st2.Fenced || !hasEvent(st2, "split-brain-unfenced") {
		t.Fatalf("node 2 after node 1 rejoined it: %+v %v", st2, err)
	}
	t.Logf("FIGURES split-brain keep the fenced node: node 2 serving again, node 1 in lockstep behind it, %s after the resolve", time.Since(t0).Round(time.Millisecond))
	c := p.nbd(t)
	if err := ch2.k.Verify(c); err != nil {
		t.Fatalf("node 2's kept writes: %v", err)
	}
	if err := ackcheck.New(1024).Verify(c); err != nil {
		t.Fatalf("node 1's discarded split-brain writes are still served: %v", err)
	}
	p.kill(1)
	p.kill(2)
	verifyCopies(t, copies)
}

package coserver_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// TestJoinAfterOneWayLinkDropDuringResync: while the returning node's disk
// is resynchronised (rate-limited, so it takes seconds), node 1's traffic is
// dropped at node 2's side of both CoServer links for 600 ms (iptables in
// node 2's namespace; peer_dead 250 ms, link_dead 2 s). Node 2 sees the
// peer fall silent and come back; node 1 may or may not (here it mostly
// does too, so this does not reproduce the one-sided case reliably: the
// mirror package's OneSidedFlap tests do). Whatever each side saw, the
// Connect rounds must end, node 2 must join, and the copies be identical.
func TestJoinAfterOneWayLinkDropDuringResync(t *testing.T) {
	netnstest.Require(t, "fio", "iptables")
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fw7", timeouts: "{peer_dead: 250ms, link_dead: 2s}"})
	copies := p.withDisks(t, "128MiB")
	for i := 1; i <= 2; i++ {
		b, err := os.ReadFile(p.cfgPath(i))
		if err != nil {
			t.Fatal(err)
		}
		// 16 MiB/s: the 64 MiB written alone take about 4 s to copy.
		cfg := strings.Replace(string(b), "export: data}", "export: data, resync_rate: 16777216}", 1)
		if err := os.WriteFile(p.cfgPath(i), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.startPair()
	p.kill(2)
	p.waitRole(1, "primary", "", 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := p.cli.Cmd(ctx, "fio", "--name=fw7", "--ioengine=nbd", "--uri=nbd://"+vsIP+"/data",
		"--rw=write", "--bs=1M", "--size=64M", "--iodepth=4").CombinedOutput(); err != nil {
		t.Fatalf("fio alone: %v\n%s", err, out)
	}
	p.start(2)
	if !netnstest.WaitFor(30*time.Second, func() bool {
		st, err := p.status(1)
		return err == nil && hasEvent(st, "disk-resync-start")
	}) {
		t.Fatal("node 1 never started the resync")
	}
	time.Sleep(time.Second)
	dropFromPeer(t, p, 2, true)
	time.Sleep(600 * time.Millisecond)
	dropFromPeer(t, p, 2, false)
	p.waitRole(1, "primary", "synced", 90*time.Second)
	p.waitRole(2, "secondary", "", 10*time.Second)
	for i := 1; i <= 2; i++ {
		if st, err := p.status(i); err == nil {
			for _, e := range st.Events {
				if strings.HasPrefix(e.Kind, "disk-") || strings.HasPrefix(e.Kind, "peer-") {
					t.Logf("node %d event %s: %s", i, e.Kind, e.Detail)
				}
			}
		}
	}
	p.kill(1)
	p.kill(2)
	res, err := exec.Command(ftvsBin, "vdisk", "verify", copies[1], copies[2]).CombinedOutput()
	if err != nil {
		t.Fatalf("vdisk verify: %v\n%s", err, res)
	}
	t.Logf("vdisk verify: %s", res)
}

// dropFromPeer drops (or stops dropping) what node i receives on both
// CoServer links.
func dropFromPeer(t *testing.T, p *pair, i int, on bool) {
	t.Helper()
	op := "-D"
	if on {
		op = "-I"
	}
	for l := 1; l <= 2; l++ {
		if out, err := p.cs[i].Run("iptables", op, "INPUT", "-i", fmt.Sprintf("cs%d", l), "-j", "DROP"); err != nil {
			t.Fatalf("iptables %s on node %d cs%d: %v: %s", op, i, l, err, out)
		}
	}
}

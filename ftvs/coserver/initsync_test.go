package coserver_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// freshCopies removes the pair's disk copies, if any, and makes a new
// pair with `ftvs vdisk create` (never synced: no `ftvs vdisk resync`).
func (p *pair) freshCopies(t *testing.T, size string) [3]string {
	t.Helper()
	for i := 1; i <= 2; i++ {
		_ = os.Remove(fmt.Sprintf("%s/data%d.vdisk", p.dir, i))
	}
	return p.withDisks(t, size)
}

func eventCount(st *coserver.Status, kind, detail string) int {
	n := 0
	for _, e := range st.Events {
		if e.Kind == kind && strings.Contains(e.Detail, detail) {
			n += 1 + e.Repeat
		}
	}
	return n
}

func eventList(st *coserver.Status) string {
	if st == nil {
		return "(no status)"
	}
	var b strings.Builder
	for _, e := range st.Events {
		fmt.Fprintf(&b, "  %s %s x%d %s\n", e.Time.Format("15:04:05.000"), e.Kind, 1+e.Repeat, e.Detail)
	}
	return b.String()
}

// TestFreshPairStarts starts a pair on two new copies of a mirrored disk,
// both daemons at once, several times (FTVS_FRESH_STARTS, default 4): the
// initial sync from node 1 must run without operator action every time
// (node 1 primary, node 2 following, both copies UpToDate, identical). Two
// new copies racing at their first Connect used to leave the joiner
// waiting about once in thirty starts ("neither copy holds good data").
func TestFreshPairStarts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	starts := 4
	if v := os.Getenv("FTVS_FRESH_STARTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("FTVS_FRESH_STARTS=%q: want a count >= 1", v)
		}
		starts = n
	}
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fi6", timeouts: slowSilence})
	var took []time.Duration
	for round := 1; round <= starts; round++ {
		copies := p.freshCopies(t, "8MiB")
		t0 := time.Now()
		p.start(1)
		p.start(2)
		var st1, st2 *coserver.Status
		ok := netnstest.WaitFor(60*time.Second, func() bool {
			var err error
			if st1, err = p.status(1); err != nil {
				return false
			}
			if st2, err = p.status(2); err != nil {
				return false
			}
			return st1.Role == "primary" && st1.Peer == "synced" && st2.Role == "secondary"
		})
		if !ok {
			t.Fatalf("start %d: the fresh pair did not come up in 60 s\nnode 1 %+v events:\n%s\nnode 2 %+v events:\n%s",
				round, st1, eventList(st1), st2, eventList(st2))
		}
		took = append(took, time.Since(t0).Round(10*time.Millisecond))
		for i, st := range []*coserver.Status{st1, st2} {
			if len(st.Disks) != 1 || st.Disks[0].State != "UpToDate" {
				t.Fatalf("start %d: node %d's disks %+v, want UpToDate", round, i+1, st.Disks)
			}
			if n := eventCount(st, "disk-refused", ""); n != 0 {
				t.Fatalf("start %d: node %d refused a resync:\n%s", round, i+1, eventList(st))
			}
		}
		p.kill(1)
		p.kill(2)
		if res, err := exec.Command(ftvsBin, "vdisk", "verify", copies[1], copies[2]).CombinedOutput(); err != nil {
			t.Fatalf("start %d: vdisk verify: %v\n%s", round, err, res)
		}
	}
	t.Logf("%d fresh pair starts, none stuck; primary+synced after %v", starts, took)
}

// TestJoinRefusedWhenResyncCannotFinish: on a fresh pair node 1 is the
// initial sync source and node 2 joins. The first hand-over's FinishResync
// fails on node 1 (test hook FTVS_TEST_FAIL_FINISH_RESYNC=1: a link or
// target error at that point): the join must be refused, with no snapshot
// (node 2's copy is still Inconsistent, it must not enter lockstep); the
// disks then meet again and the held join is answered.
func TestJoinRefusedWhenResyncCannotFinish(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fj6", timeouts: slowSilence})
	copies := p.freshCopies(t, "8MiB")
	p.start(1, "FTVS_TEST_FAULTS=i-want-this-replica-to-diverge", "FTVS_TEST_FAIL_FINISH_RESYNC=1")
	p.start(2)
	st1 := p.waitRole(1, "primary", "synced", 90*time.Second)
	st2 := p.waitRole(2, "secondary", "", 10*time.Second)
	if eventCount(st1, "snapshot-refused", "test hook") != 1 {
		t.Fatalf("node 1: no refused snapshot; events:\n%s", eventList(st1))
	}
	// Exactly one snapshot, after the refusal; node 2 restored once.
	refusedAt, sentAt := time.Time{}, time.Time{}
	for _, e := range st1.Events {
		switch e.Kind {
		case "snapshot-refused":
			refusedAt = e.Time
		case "snapshot-sent":
			if !sentAt.IsZero() || e.Repeat != 0 {
				t.Fatalf("node 1 sent more than one snapshot:\n%s", eventList(st1))
			}
			sentAt = e.Time
		}
	}
	if sentAt.IsZero() || !sentAt.After(refusedAt) {
		t.Fatalf("node 1's snapshot (%v) not after the refusal (%v):\n%s", sentAt, refusedAt, eventList(st1))
	}
	if n := eventCount(st2, "restored", ""); n != 1 {
		t.Fatalf("node 2 restored %d snapshots, want 1:\n%s", n, eventList(st2))
	}
	for i, st := range []*coserver.Status{st1, st2} {
		if len(st.Disks) != 1 || st.Disks[0].State != "UpToDate" {
			t.Fatalf("node %d's disks %+v, want UpToDate", i+1, st.Disks)
		}
	}
	p.kill(1)
	p.kill(2)
	if res, err := exec.Command(ftvsBin, "vdisk", "verify", copies[1], copies[2]).CombinedOutput(); err != nil {
		t.Fatalf("vdisk verify: %v\n%s", err, res)
	}
}

package coserver

import "testing"

// Both nodes evaluate the rule on the same figures: exactly one loses, the
// one without the witness lease, else the one that went live later; equal
// or unknown times: node 2.
func TestSplitBrainLoser(t *testing.T) {
	for _, c := range []struct {
		lease1, lease2 bool
		live1, live2   int64
		want           int
	}{
		{false, false, 1000, 2000, 2}, {false, false, 2000, 1000, 1}, {false, false, 1000, 1000, 2},
		{false, false, 0, 1000, 2}, {false, false, 1000, 0, 2}, {false, false, 0, 0, 2},
		{false, true, 1000, 2000, 1}, {true, false, 2000, 1000, 2}, {true, true, 2000, 1000, 1},
	} {
		if got := splitBrainLoser(c.lease1, c.lease2, c.live1, c.live2); got != c.want {
			t.Errorf("splitBrainLoser(%v, %v, %d, %d) = %d, want %d", c.lease1, c.lease2, c.live1, c.live2, got, c.want)
		}
	}
}

// The role message's tail round-trips, and an older peer's shorter
// message reads as not fenced, live time unknown.
func TestRoleTail(t *testing.T) {
	d := &Daemon{}
	d.split.liveSince.Store(1764186000123)
	d.split.fenced.Store(true)
	d.split.leaseHeld.Store(true)
	msg := append([]byte{3, 2, 0, 1}, d.rolePayloadTail()...)
	if f, h, l := parseRoleTail(msg); !f || !h || l != 1764186000123 {
		t.Fatalf("parseRoleTail = %v %v %d", f, h, l)
	}
	if f, h, l := parseRoleTail([]byte{3, 2, 0, 1}); f || h || l != 0 {
		t.Fatalf("old peer: parseRoleTail = %v %v %d", f, h, l)
	}
	if f, h, l := parseRoleTail([]byte{3, 2}); f || h || l != 0 {
		t.Fatalf("short: parseRoleTail = %v %v %d", f, h, l)
	}
}

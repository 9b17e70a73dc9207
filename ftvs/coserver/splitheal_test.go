package coserver

import "testing"

// Both nodes evaluate the rule on the same two figures: exactly one loses,
// the one that went live later; equal or unknown times: node 2.
func TestSplitBrainLoser(t *testing.T) {
	for _, c := range []struct {
		live1, live2 int64
		want         int
	}{
		{1000, 2000, 2}, {2000, 1000, 1}, {1000, 1000, 2}, {0, 1000, 2}, {1000, 0, 2}, {0, 0, 2},
	} {
		if got := splitBrainLoser(c.live1, c.live2); got != c.want {
			t.Errorf("splitBrainLoser(%d, %d) = %d, want %d", c.live1, c.live2, got, c.want)
		}
	}
}

// The role message's tail round-trips, and an older peer's shorter
// message reads as not fenced, live time unknown.
func TestRoleTail(t *testing.T) {
	d := &Daemon{}
	d.split.liveSince.Store(1764186000123)
	d.split.fenced.Store(true)
	msg := append([]byte{3, 2, 0, 1}, d.rolePayloadTail()...)
	if f, l := parseRoleTail(msg); !f || l != 1764186000123 {
		t.Fatalf("parseRoleTail = %v %d", f, l)
	}
	if f, l := parseRoleTail([]byte{3, 2, 0, 1}); f || l != 0 {
		t.Fatalf("old peer: parseRoleTail = %v %d", f, l)
	}
	if f, l := parseRoleTail([]byte{3, 2}); f || l != 0 {
		t.Fatalf("short: parseRoleTail = %v %d", f, l)
	}
}

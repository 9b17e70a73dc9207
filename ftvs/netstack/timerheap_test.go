package netstack

import (
	"math/rand"
	"testing"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// The timer heap always yields the true minimum and pops due sockets in id order.
func TestTimerHeapAgainstScan(t *testing.T) {
	s := newA(t)
	rng := rand.New(rand.NewSource(3))
	var all []*tcb
	for i := 0; i < 500; i++ {
		all = append(all, &tcb{id: sockapi.SockID(i + 1), heapIdx: -1})
	}
	for step := 0; step < 20000; step++ {
		c := all[rng.Intn(len(all))]
		d := int64(0)
		if rng.Intn(4) != 0 {
			d = int64(1 + rng.Intn(1000))
		}
		s.setDeadline(c, d)
		if step%97 == 0 {
			now := int64(rng.Intn(1000))
			due := s.popDue(now)
			for i, x := range due {
				if x.deadline != 0 || x.heapIdx != -1 || i > 0 && due[i-1].id >= x.id {
					t.Fatal("popDue: not removed or not in id order")
				}
			}
			for _, x := range all {
				if x.deadline != 0 && x.deadline <= now {
					t.Fatalf("socket %d due at %d left in the heap at %d", x.id, x.deadline, now)
				}
			}
		}
		min := int64(0)
		for _, x := range all {
			if x.deadline != 0 && (min == 0 || x.deadline < min) {
				min = x.deadline
			}
			if (x.deadline != 0) != (x.heapIdx >= 0) || x.heapIdx >= 0 && s.dl[x.heapIdx] != x {
				t.Fatalf("socket %d: deadline %d heap index %d", x.id, x.deadline, x.heapIdx)
			}
		}
		if got := s.NextDeadline(); got != min {
			t.Fatalf("step %d: NextDeadline %d, scan says %d", step, got, min)
		}
	}
}

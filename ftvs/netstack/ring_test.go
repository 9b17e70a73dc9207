package netstack

import (
	"bytes"
	"testing"
)

// TestRingHalves: the two slices halves returns are the ring's first n
// bytes, whatever the head and wrap, as Peek copies them.
func TestRingHalves(t *testing.T) {
	r := &ring{max: 1 << 16}
	var model []byte
	x := byte(0)
	for step := range 2000 {
		if step%3 == 2 {
			k := min(len(model), step%977)
			r.Discard(k)
			model = model[k:]
		} else {
			p := make([]byte, step%1531)
			for i := range p {
				x++
				p[i] = x
			}
			k := r.Write(p)
			model = append(model, p[:k]...)
		}
		for _, n := range []int{0, r.Len() / 2, r.Len()} {
			a, b := r.halves(n)
			got := append(append([]byte(nil), a...), b...)
			if !bytes.Equal(got, model[:n]) {
				t.Fatalf("step %d: halves(%d) gives %d bytes, not the ring's first %d", step, n, len(got), n)
			}
		}
	}
}

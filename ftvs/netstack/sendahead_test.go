package netstack

import (
	"testing"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// TestSendAheadBoundsUnsentData: a writer with plenty to say gets no more
// unsent bytes buffered than max(SendAhead, cwnd); SendSpace agrees with
// what Write takes; EvWritable wakes it as the peer reads, and the whole
// stream arrives intact.
func TestSendAheadBoundsUnsentData(t *testing.T) {
	ca := cfgA()
	ca.SendAhead = 64 << 10
	p := newPair(t, ca, cfgB())
	writable := 0
	p.evA = func(ev sockapi.Event) {
		if ev.Kind == sockapi.EvWritable {
			writable++
		}
	}
	srv, cli := p.connect(80)
	data := pattern(8 << 20)
	c := p.a.socks[srv]
	space := p.a.SendSpace(srv)
	n, err := p.a.Write(srv, data)
	if err != nil {
		t.Fatal(err)
	}
	if n != space || n > max(ca.SendAhead, int(c.cwnd)) || n == 0 {
		t.Fatalf("first write took %d bytes, SendSpace said %d, SendAhead %d, cwnd %d", n, space, ca.SendAhead, c.cwnd)
	}
	if k, _ := p.a.Write(srv, data[n:]); k != 0 {
		t.Fatalf("a second write with nothing sent took %d bytes", k)
	}
	off := n
	var got []byte
	maxUnsent := 0
	for i := 0; len(got) < len(data) && i < 100000; i++ {
		if off < len(data) {
			k, _ := p.a.Write(srv, data[off:])
			off += k
		}
		unsent := c.snd.Len() - min(int(c.maxNxt-c.una), c.snd.Len())
		if limit := max(ca.SendAhead, int(c.cwnd)); unsent > limit {
			t.Fatalf("%d unsent bytes buffered, limit max(SendAhead, cwnd) = %d", unsent, limit)
		}
		maxUnsent = max(maxUnsent, unsent)
		p.a.Poll(p.now)
		b, _ := readAll(p.b, cli)
		got = append(got, b...)
		p.advance(p.now + 1e6)
	}
	mustEqual(t, "stream", got, data)
	if writable == 0 {
		t.Fatal("no EvWritable while the writer waited for room")
	}
	if maxUnsent == 0 {
		t.Fatal("the writer never got ahead of the sender")
	}
}

package netstack

import (
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
)

// winPeer drives the hand peer as a receiver whose window the test sets: it
// acknowledges everything the stack sent with the window given.
type winPeer struct {
	*hand
	got  uint32 // next byte expected from the stack
	sent int    // data bytes the stack sent
}

func (w *winPeer) ackWith(win uint16) []parsed {
	w.t.Helper()
	w.s.Input(craft(seg{sport: 40000, dport: 80, seq: w.seq, ack: w.got, flags: wire.FlagACK, win: win}), w.now)
	return w.take(w.poll())
}

// take records the data segments in o (in order, nothing lost here).
func (w *winPeer) take(o []parsed) []parsed {
	for _, p := range o {
		if n := len(p.payload); n > 0 && p.tcp.Seq == w.got {
			w.got += uint32(n)
			w.sent += n
		}
	}
	return o
}

func dataLen(o []parsed) int {
	n := 0
	for _, p := range o {
		n += len(p.payload)
	}
	return n
}

// newWinPeer opens a connection (peer MSS 1460, no window scaling), queues
// 256 KiB and lets the peer's window close: the stack is persisting.
func newWinPeer(t *testing.T) *winPeer {
	w := &winPeer{hand: newHand(t, wire.TCPOptions{MSS: 1460, WScale: -1})}
	w.got = w.ack
	if n, err := w.s.Write(w.id, pattern(256<<10)); err != nil || n == 0 {
		t.Fatalf("write: %d, %v", n, err)
	}
	w.take(w.poll())
	if w.sent == 0 {
		t.Fatal("nothing sent into the open window")
	}
	w.ackWith(0)
	if c := w.s.socks[w.id]; c.sndWnd != 0 || c.persistAt == 0 {
		t.Fatalf("after a zero window: sndWnd %d, persistAt %d", c.sndWnd, c.persistAt)
	}
	return w
}

// RFC 9293 3.8.6.1: the probe timer backs off, but a window update (a pure
// ACK, same SEG.SEQ and SEG.ACK, only the window changed) must restart the
// transfer at once, not at the next, backed-off probe.
func TestWindowUpdateRestartsAtOnce(t *testing.T) {
	w := newWinPeer(t)
	// Let five probes go unanswered-but-for-zero: the interval grows.
	for i := 0; i < 5; i++ {
		w.now = w.s.NextDeadline()
		o := w.poll()
		if len(o) != 1 || len(o[0].payload) != 0 || o[0].tcp.Seq != w.got-1 {
			t.Fatalf("probe %d: want one zero-window probe, got %+v", i, o)
		}
		w.ackWith(0)
	}
	c := w.s.socks[w.id]
	if c.persistAt-w.now < 2*w.s.cfg.MinRTO<<3 {
		t.Fatalf("persist timer did not back off: next probe in %d ns", c.persistAt-w.now)
	}
	// The reader drains 16 KiB: the window update is answered in the same
	// Poll with every full segment that fits (the 324-byte runt waits: SWS).
	w.now += 1e6
	if n := dataLen(w.ackWith(16 << 10)); n != 11*1460 {
		t.Fatalf("window update to 16 KiB: %d bytes sent at once, want 11 full segments (16060)", n)
	}
	if c.persistAt != 0 || c.persistShift != 0 {
		t.Fatalf("persist timer not reset by the open window: at %d, shift %d", c.persistAt, c.persistShift)
	}
	// Closed again and reopened after another probe: again at once.
	w.ackWith(0)
	w.now = w.s.NextDeadline()
	w.poll()
	w.now += 1e6
	if n := dataLen(w.ackWith(8 << 10)); n != 5*1460 {
		t.Fatalf("second reopening: %d bytes sent at once, want 5 full segments (7300)", n)
	}
}

// A window that opens in small steps (below an MSS, as a receiver without
// receiver-side SWS avoidance does): the sender holds the runt (RFC 9293
// 3.8.6.2.1) but the override fires one RTO later, not after the backed-off
// probe interval; a step reaching a full segment goes at once.
func TestWindowOpensInSmallSteps(t *testing.T) {
	w := newWinPeer(t)
	for i := 0; i < 4; i++ { // back the probe timer off first
		w.now = w.s.NextDeadline()
		w.poll()
		w.ackWith(0)
	}
	w.now += 1e6
	if n := dataLen(w.ackWith(500)); n != 0 {
		t.Fatalf("500-byte window: %d bytes sent at once, want the runt held", n)
	}
	c := w.s.socks[w.id]
	if d := c.persistAt - w.now; d <= 0 || d > c.rto {
		t.Fatalf("SWS override due in %d ns, want within one RTO (%d)", d, c.rto)
	}
	w.now = w.s.NextDeadline()
	o := w.take(w.poll())
	if n := dataLen(o); n != 500 {
		t.Fatalf("SWS override: %d bytes, want the 500 the window allows", n)
	}
	// The peer acks the runt and opens 1000, then 3000 bytes.
	w.now += 1e6
	if n := dataLen(w.ackWith(1000)); n != 0 {
		t.Fatalf("1000-byte window: %d bytes sent at once", n)
	}
	w.now += 1e6
	if n := dataLen(w.ackWith(3000)); n != 2920 {
		t.Fatalf("3000-byte window: %d bytes sent at once, want two full segments (2920)", n)
	}
}

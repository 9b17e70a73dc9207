package netstack

import (
	"errors"
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// hand is a connection between stack A (server, port 80) and a hand-driven peer.
type hand struct {
	t      *testing.T
	s      *Stack
	now    int64
	id     sockapi.SockID // accepted socket
	seq    uint32         // peer's next sequence number
	ack    uint32         // what the peer acknowledges (A's next)
	events []sockapi.Event
	ts     bool
}

func newHand(t *testing.T, opts wire.TCPOptions) *hand {
	t.Helper()
	h := &hand{t: t, s: newA(t), now: 1e9, ts: opts.HasTS}
	iss, _ := handshake(t, h.s, h.now, opts, 1000)
	h.seq, h.ack = 1001, iss+1
	h.send(wire.FlagACK, nil)
	h.drainEvents()
	l := h.s.listeners[80]
	id, ok := h.s.Accept(l.id)
	if !ok {
		t.Fatalf("nothing to accept; state %v", h.s.order)
	}
	h.id = id
	return h
}

func (h *hand) send(flags uint8, payload []byte) []parsed {
	h.t.Helper()
	return h.sendSeq(h.seq, flags, payload)
}

func (h *hand) sendSeq(seq uint32, flags uint8, payload []byte) []parsed {
	h.t.Helper()
	g := seg{sport: 40000, dport: 80, seq: seq, ack: h.ack, flags: flags, win: 65535, payload: payload}
	if h.ts {
		g.opts = wire.TCPOptions{WScale: -1, HasTS: true, TSVal: uint32(h.now / 1e6), TSEcr: 1}
	}
	h.s.Input(craft(g), h.now)
	if seq == h.seq {
		h.seq += uint32(len(payload))
		if flags&(wire.FlagSYN|wire.FlagFIN) != 0 {
			h.seq++
		}
	}
	h.s.Poll(h.now)
	h.drainEvents()
	h.s.Poll(h.now)
	return out(h.t, h.s)
}

func (h *hand) drainEvents() {
	h.s.DrainEvents(func(ev sockapi.Event) { h.events = append(h.events, ev) })
}

func (h *hand) state() tcpState { return h.s.stateOf(h.id) }

func (h *hand) poll() []parsed {
	h.s.Poll(h.now)
	h.drainEvents()
	h.s.Poll(h.now)
	return out(h.t, h.s)
}

func (h *hand) sawEvent(k sockapi.EventKind) bool {
	for _, e := range h.events {
		if e.Kind == k && e.Sock == h.id {
			return true
		}
	}
	return false
}

// RFC 9293 3.10.7.4 + RFC 5961 3.2: RST in every synchronized state, exact
// sequence resets, in-window inexact sequence draws a challenge ACK.
func TestRSTInEveryState(t *testing.T) {
	type setup func(h *hand)
	cases := map[string]struct {
		prep  setup
		state tcpState
		event bool // the service hears EvClosed
	}{
		"ESTABLISHED": {func(h *hand) {}, stEstablished, true},
		"CLOSE-WAIT":  {func(h *hand) { h.send(wire.FlagACK|wire.FlagFIN, nil) }, stCloseWait, true},
		"FIN-WAIT-1":  {func(h *hand) { h.s.Close(h.id); h.poll() }, stFinWait1, false},
		"FIN-WAIT-2": {func(h *hand) {
			h.s.Close(h.id)
			h.poll()
			h.ack++
			h.send(wire.FlagACK, nil)
		}, stFinWait2, false},
		"CLOSING": {func(h *hand) {
			h.s.Close(h.id)
			h.poll()
			h.send(wire.FlagACK|wire.FlagFIN, nil) // does not ack our FIN
		}, stClosing, false},
		"LAST-ACK": {func(h *hand) {
			h.send(wire.FlagACK|wire.FlagFIN, nil)
			h.s.Close(h.id)
			h.poll()
		}, stLastAck, false},
		"TIME-WAIT": {func(h *hand) {
			h.s.Close(h.id)
			h.poll()
			h.ack++
			h.send(wire.FlagACK|wire.FlagFIN, nil)
		}, stTimeWait, false},
	}
	for _, name := range []string{"ESTABLISHED", "CLOSE-WAIT", "FIN-WAIT-1", "FIN-WAIT-2", "CLOSING", "LAST-ACK", "TIME-WAIT"} {
		tc := cases[name]
		t.Run(name, func(t *testing.T) {
			h := newHand(t, wire.TCPOptions{WScale: -1})
			tc.prep(h)
			if h.state() != tc.state {
				t.Fatalf("setup reached %v", h.state())
			}
			// In window but not exact: challenge ACK, connection stays.
			o := h.sendSeq(h.seq+10, wire.FlagRST, nil)
			if h.state() != tc.state {
				t.Fatalf("inexact RST changed state to %v", h.state())
			}
			if tc.state != stTimeWait && (len(o) != 1 || o[0].tcp.Flags != wire.FlagACK || o[0].tcp.Ack != h.seq) {
				t.Fatalf("want challenge ACK, got %+v", o)
			}
			if h.s.Counters().TCPChallengeACKs != 1 {
				t.Fatal("challenge ACK not counted")
			}
			if !tc.event {
				h.send(wire.FlagRST, nil)
				if _, ok := h.s.socks[h.id]; ok {
					t.Fatalf("socket survives RST in %s", name)
				}
				return
			}
			// The service may still see ErrReset before it drains EvClosed.
			h.s.Input(craft(seg{sport: 40000, dport: 80, seq: h.seq, flags: wire.FlagRST}), h.now)
			if _, err := h.s.Read(h.id, make([]byte, 10)); !errors.Is(err, sockapi.ErrReset) {
				t.Fatalf("read after RST: %v", err)
			}
			h.drainEvents()
			if !h.sawEvent(sockapi.EvClosed) {
				t.Fatal("no EvClosed")
			}
			if _, err := h.s.Read(h.id, make([]byte, 10)); !errors.Is(err, sockapi.ErrNoSocket) {
				t.Fatalf("socket still valid after EvClosed: %v", err)
			}
		})
	}
	t.Run("SYN-RECEIVED", func(t *testing.T) {
		s := newA(t)
		handshake(t, s, 1e9, wire.TCPOptions{WScale: -1}, 7000)
		l := s.listeners[80]
		if l.synRcvd != 1 {
			t.Fatalf("syn queue %d", l.synRcvd)
		}
		s.Input(craft(seg{sport: 40000, dport: 80, seq: 7001, flags: wire.FlagRST}), 1e9)
		if l.synRcvd != 0 || len(s.order) != 1 {
			t.Fatalf("embryonic connection survives RST: syn queue %d, sockets %d", l.synRcvd, len(s.order))
		}
	})
}

// RFC 5961 4: a SYN on an established connection gets a challenge ACK.
func TestSYNOnEstablishedChallenge(t *testing.T) {
	h := newHand(t, wire.TCPOptions{WScale: -1})
	o := h.sendSeq(h.seq+100, wire.FlagSYN, nil)
	if len(o) != 1 || o[0].tcp.Flags != wire.FlagACK || h.state() != stEstablished {
		t.Fatalf("want challenge ACK and ESTABLISHED, got %+v, %v", o, h.state())
	}
}

// RFC 9293 3.6: both ends close at once: FIN-WAIT-1 -> CLOSING -> TIME-WAIT.
func TestSimultaneousClose(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	srv, cli := p.connect(80)
	p.a.Close(srv)
	p.b.Close(cli)
	p.a.Poll(p.now)
	p.b.Poll(p.now)
	if p.a.stateOf(srv) != stFinWait1 || p.b.stateOf(cli) != stFinWait1 {
		t.Fatal("not both in FIN-WAIT-1")
	}
	// Swap the FINs on the wire at the same instant.
	var fa, fb [][]byte
	p.a.DrainFrames(func(f []byte, _ uint16) { fa = append(fa, f) })
	p.b.DrainFrames(func(f []byte, _ uint16) { fb = append(fb, f) })
	for _, f := range fa {
		p.b.Input(f, p.now)
	}
	for _, f := range fb {
		p.a.Input(f, p.now)
	}
	if p.a.stateOf(srv) != stClosing || p.b.stateOf(cli) != stClosing {
		t.Fatalf("states %v/%v, want CLOSING", p.a.stateOf(srv), p.b.stateOf(cli))
	}
	p.advance(p.now + 1e6)
	if p.a.stateOf(srv) != stTimeWait || p.b.stateOf(cli) != stTimeWait {
		t.Fatalf("states %v/%v, want TIME-WAIT", p.a.stateOf(srv), p.b.stateOf(cli))
	}
}

// RFC 9293 3.10.7.4 TIME-WAIT: lasts 2 MSL, re-acknowledges a retransmitted
// FIN and restarts, then the socket is gone.
func TestTimeWait(t *testing.T) {
	h := newHand(t, wire.TCPOptions{WScale: -1})
	h.s.Close(h.id)
	h.poll()
	h.ack++
	h.send(wire.FlagACK|wire.FlagFIN, nil)
	if h.state() != stTimeWait {
		t.Fatalf("state %v", h.state())
	}
	start := h.now
	h.now += 30e9
	o := h.sendSeq(h.seq-1, wire.FlagACK|wire.FlagFIN, nil) // retransmitted FIN
	if len(o) != 1 || o[0].tcp.Flags != wire.FlagACK || o[0].tcp.Ack != h.seq {
		t.Fatalf("retransmitted FIN not re-acknowledged: %+v", o)
	}
	if d := h.s.NextDeadline(); d != h.now+h.s.cfg.TimeWait {
		t.Fatalf("TIME-WAIT not restarted: deadline %d, want %d", d, h.now+h.s.cfg.TimeWait)
	}
	h.now = start + 30e9 + h.s.cfg.TimeWait - 1
	h.poll()
	if h.state() != stTimeWait {
		t.Fatal("TIME-WAIT ended early")
	}
	h.now++
	h.poll()
	if _, ok := h.s.socks[h.id]; ok {
		t.Fatal("TIME-WAIT socket not freed")
	}
}

// RFC 1122 4.2.3.2 / RFC 5681 4.2: delayed ACK within 40 ms (virtual), at
// once for every second full segment.
func TestDelayedACKTiming(t *testing.T) {
	h := newHand(t, wire.TCPOptions{WScale: -1, MSS: 1460})
	t0 := h.now
	if o := h.send(wire.FlagACK|wire.FlagPSH, []byte("hello")); len(o) != 0 {
		t.Fatalf("small segment acknowledged at once: %+v", o)
	}
	if d := h.s.NextDeadline(); d != t0+40e6 {
		t.Fatalf("delayed ACK deadline %d, want %d", d-t0, int64(40e6))
	}
	h.now = t0 + 40e6 - 1
	if o := h.poll(); len(o) != 0 {
		t.Fatal("ACK before the delay")
	}
	h.now = t0 + 40e6
	o := h.poll()
	if len(o) != 1 || o[0].tcp.Ack != h.seq {
		t.Fatalf("no delayed ACK at 40 ms: %+v", o)
	}
	full := make([]byte, 1460)
	if o := h.send(wire.FlagACK, full); len(o) != 0 {
		t.Fatal("first full segment acknowledged at once")
	}
	o = h.send(wire.FlagACK, full)
	if len(o) != 1 || o[0].tcp.Ack != h.seq {
		t.Fatalf("second full segment not acknowledged at once: %+v", o)
	}
	// Out-of-order data is acknowledged at once (duplicate ACK).
	o = h.sendSeq(h.seq+100, wire.FlagACK, []byte("later"))
	if len(o) != 1 || o[0].tcp.Ack != h.seq {
		t.Fatalf("out-of-order segment: %+v", o)
	}
}

// RFC 9293 3.8.6.1: zero window, probes with backoff, resume when opened.
func TestZeroWindowProbes(t *testing.T) {
	cb := cfgB()
	cb.RecvBuf = 64 << 10
	p := newPair(t, cfgA(), cb)
	srv, cli := p.connect(80)
	data := pattern(1 << 20)
	n, _ := p.a.Write(srv, data)
	var probes []int64
	p.filter = func(from byte, f []byte) []byte {
		if from == 'a' {
			d := decode(t, f, 0)
			if d.ip.Proto == wire.ProtoTCP && len(d.payload) == 0 && d.tcp.Seq == p.a.socks[srv].una-1 {
				probes = append(probes, p.now)
			}
		}
		return f
	}
	p.advance(p.now + 10e9)
	if p.b.socks[cli].rcv.Len() < 60<<10 {
		t.Fatalf("receiver buffer not full: %d", p.b.socks[cli].rcv.Len())
	}
	if p.a.socks[srv].sndWnd != 0 {
		t.Fatalf("sender sees window %d", p.a.socks[srv].sndWnd)
	}
	if len(probes) < 3 {
		t.Fatalf("only %d probes in 10 s", len(probes))
	}
	for i := 2; i < len(probes); i++ {
		if probes[i]-probes[i-1] <= probes[i-1]-probes[i-2] {
			t.Fatalf("probe intervals do not back off: %v", probes)
		}
	}
	// Everything arrives once the reader drains.
	var got []byte
	off := n
	for i := 0; i < 100000 && len(got) < len(data); i++ {
		if off < len(data) {
			k, _ := p.a.Write(srv, data[off:])
			off += k
		}
		b, _ := readAll(p.b, cli)
		got = append(got, b...)
		p.advance(p.now + 1e6)
	}
	mustEqual(t, "after zero window", got, data)
}

// A retransmitted SYN in SYN-RECEIVED means our SYN-ACK was lost: resend it.
func TestRetransmittedSYNGetsSYNACK(t *testing.T) {
	s := newA(t)
	iss, _ := handshake(t, s, 1e9, wire.TCPOptions{WScale: -1}, 300)
	s.Input(craft(seg{sport: 40000, dport: 80, seq: 300, flags: wire.FlagSYN, win: 1000}), 1.1e9)
	s.Poll(1.1e9)
	o := out(t, s)
	if len(o) != 1 || o[0].tcp.Flags != wire.FlagSYN|wire.FlagACK || o[0].tcp.Seq != iss || o[0].tcp.Ack != 301 {
		t.Fatalf("want the same SYN-ACK again, got %+v", o)
	}
}

// An orphaned FIN-WAIT-2 (the service closed, the peer never sends its FIN)
// ends after FinWait2; data arriving after Close is acknowledged and dropped.
func TestFinWait2OrphanAndDataAfterClose(t *testing.T) {
	h := newHand(t, wire.TCPOptions{WScale: -1})
	h.send(wire.FlagACK, []byte("unread"))
	h.s.Close(h.id)
	o := h.poll()
	if len(o) != 1 || o[0].tcp.Flags&wire.FlagFIN == 0 {
		t.Fatalf("want FIN, got %+v", o)
	}
	h.ack++
	o = h.send(wire.FlagACK, []byte("more data nobody reads"))
	h.now += 50e6
	o = append(o, h.poll()...)
	if h.state() != stFinWait2 || len(o) == 0 || o[len(o)-1].tcp.Ack != h.seq {
		t.Fatalf("state %v, frames %+v", h.state(), o)
	}
	h.now += h.s.cfg.FinWait2
	h.poll()
	if _, ok := h.s.socks[h.id]; ok {
		t.Fatal("orphaned FIN-WAIT-2 not freed")
	}
}

package netstack

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Sequence numbers wrap past 2^32 in both directions (RFC 9293 3.4 modular arithmetic).
func TestWrappedSequenceNumbers(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	p.a.testISNOn, p.a.testISN = true, 0xffffffff-3000
	p.b.testISNOn, p.b.testISN = true, 0xffffffff-700
	srv, cli := p.connect(80)
	up := pattern(200 << 10)
	mustEqual(t, "upload across wrap", p.transfer(p.b, cli, p.a, srv, up, 30e9), up)
	down := pattern(2 << 20)
	mustEqual(t, "download across wrap", p.transfer(p.a, srv, p.b, cli, down, 30e9), down)
	if c := p.a.socks[srv]; !seqGT(c.una, c.iss) || c.una > c.iss {
		t.Fatalf("sender did not wrap: iss %#x una %#x", c.iss, c.una)
	}
}

// Duplicated and reordered segments (RFC 9293 3.10.7.4, 3.4): data arrives once, in order.
func TestDuplicateAndReorderedSegments(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	srv, cli := p.connect(80)
	n := 0
	p.filter = func(from byte, f []byte) []byte {
		if from != 'a' {
			return f
		}
		n++
		switch {
		case n%5 == 0: // duplicate
			p.deliver('b', append([]byte{}, f...))
		case n%7 == 0: // hold back: arrives after later segments
			p.held = append(p.held, heldFrame{to: 'b', f: f, at: p.now + 1e6})
			return nil
		}
		return f
	}
	data := pattern(4 << 20)
	mustEqual(t, "reordered download", p.transfer(p.a, srv, p.b, cli, data, 60e9), data)
	c := p.b.Counters()
	if c.TCPDupData == 0 || c.TCPOOOSegs == 0 {
		t.Fatalf("filter had no effect: dup %d, ooo %d", c.TCPDupData, c.TCPOOOSegs)
	}
}

// RFC 6298 5.5: the RTO doubles on every expiry; after MaxRetries the
// connection is given up and the service hears EvClosed.
func TestRetransmissionBackoff(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	srv, _ := p.connect(80)
	var sends []int64
	p.filter = func(from byte, f []byte) []byte {
		if from == 'a' {
			d := decode(t, f, 0)
			if d.arp != nil {
				return f // neighbour discovery still works
			}
			if len(d.payload) > 0 {
				sends = append(sends, p.now)
			}
			return nil // the TCP path is dead
		}
		return f
	}
	closed := false
	p.evA = func(ev sockapi.Event) {
		if ev.Kind == sockapi.EvClosed && ev.Sock == srv {
			closed = true
			if _, err := p.a.Read(srv, make([]byte, 1)); !errors.Is(err, sockapi.ErrReset) {
				t.Errorf("read on timed-out socket: %v", err)
			}
		}
	}
	p.a.Write(srv, []byte("lost in transit"))
	p.advance(p.now + 3600e9)
	// The original, one tail loss probe (RFC 8985) well before the RTO,
	// then MaxRetries retransmissions at doubling intervals.
	if len(sends) != 2+p.a.cfg.MaxRetries {
		t.Fatalf("%d transmissions, want %d", len(sends), 2+p.a.cfg.MaxRetries)
	}
	if pto := sends[1] - sends[0]; pto >= p.a.cfg.MinRTO || p.a.Counters().TCPTailLossProbes != 1 {
		t.Fatalf("tail loss probe after %d ns", pto)
	}
	sends = append(sends[:1], sends[2:]...)
	rto := p.a.cfg.MinRTO
	for i := 1; i < len(sends); i++ {
		if got := sends[i] - sends[i-1]; got != rto {
			t.Fatalf("interval %d: %d ns, want %d", i, got, rto)
		}
		rto = min(2*rto, p.a.cfg.MaxRTO)
	}
	if !closed || p.a.Counters().TCPTimeouts != 1 {
		t.Fatal("connection not given up")
	}
}

// RFC 1122 4.2.3.6: keep-alive probes an idle peer and gives up on a dead one.
func TestKeepAlive(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	srv, cli := p.connect(80)
	p.advance(p.now + p.a.cfg.KeepAliveIdle + 1e9)
	if p.a.Counters().TCPKeepAliveProbes != 1 || p.a.stateOf(srv) != stEstablished {
		t.Fatalf("live peer: probes %d, state %v", p.a.Counters().TCPKeepAliveProbes, p.a.stateOf(srv))
	}
	_ = cli
	dead := true
	p.filter = func(from byte, f []byte) []byte {
		if from == 'b' && dead {
			return nil
		}
		return f
	}
	closed := false
	p.evA = func(ev sockapi.Event) { closed = closed || ev.Kind == sockapi.EvClosed && ev.Sock == srv }
	start := p.now
	p.advance(start + p.a.cfg.KeepAliveIdle + 8*p.a.cfg.KeepAliveIntvl + 1e9)
	if closed {
		t.Fatal("gave up too early")
	}
	p.advance(start + p.a.cfg.KeepAliveIdle + 9*p.a.cfg.KeepAliveIntvl + 1e9)
	if !closed || p.a.Counters().TCPKeepAliveTimeouts != 1 {
		t.Fatalf("dead peer not detected: probes %d", p.a.Counters().TCPKeepAliveProbes)
	}
}

// The SYN queue plus accept queue are bounded by the backlog; excess SYNs
// are dropped (counted) and succeed on retry once there is room.
func TestBacklogOverflow(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	l, _ := p.a.Listen(80, 2)
	var ids []sockapi.SockID
	for i := 0; i < 4; i++ {
		id, err := p.b.Dial(sockapi.Addr{IP: ipA, Port: 80})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	p.advance(p.now + 100e6)
	if got := len(p.a.socks[l].acceptQ); got != 2 {
		t.Fatalf("accept queue %d, want 2", got)
	}
	if p.a.Counters().TCPListenOverflows != 2 {
		t.Fatalf("overflows %d", p.a.Counters().TCPListenOverflows)
	}
	for i := 0; i < 2; i++ {
		if _, ok := p.a.Accept(l); !ok {
			t.Fatal("accept failed")
		}
	}
	p.advance(p.now + 5e9) // SYN retransmissions
	if got := len(p.a.socks[l].acceptQ); got != 2 {
		t.Fatalf("retried connections queued: %d", got)
	}
	for _, id := range ids {
		if p.b.stateOf(id) != stEstablished {
			t.Fatalf("client %d: %v", id, p.b.stateOf(id))
		}
	}
}

// RFC 7323 / RFC 9293 3.7.1 / RFC 2018: options are used only when offered.
func TestOptionNegotiation(t *testing.T) {
	s := newA(t)
	_, sa := handshake(t, s, 1e9, wire.TCPOptions{MSS: 1000, WScale: 7, SACKPerm: true, HasTS: true, TSVal: 5555}, 100)
	if !sa.tcp.HasMSS || sa.tcp.MSS != 1460 || !sa.tcp.HasWScale || !sa.tcp.SACKPerm || !sa.tcp.HasTS || sa.tcp.TSEcr != 5555 {
		t.Fatalf("SYN-ACK options %+v", sa.tcp)
	}
	c := s.conns[tuple{peerIP, 40000, 80}]
	if c.mss != 1000-12 || c.sndScale != 7 || !c.tsOK || !c.sackOK {
		t.Fatalf("negotiated mss %d scale %d ts %v sack %v", c.mss, c.sndScale, c.tsOK, c.sackOK)
	}
	s2 := newA(t)
	_, sa = handshake(t, s2, 1e9, wire.TCPOptions{WScale: -1}, 100)
	if sa.tcp.HasWScale || sa.tcp.SACKPerm || sa.tcp.HasTS {
		t.Fatalf("options sent unasked: %+v", sa.tcp)
	}
	c = s2.conns[tuple{peerIP, 40000, 80}]
	if c.mss != 536 || c.rcvScale != 0 || c.tsOK || c.sackOK {
		t.Fatalf("defaults: mss %d rcvScale %d", c.mss, c.rcvScale)
	}
	// Without window scaling the advertised window never exceeds 65535.
	h := newHand(t, wire.TCPOptions{WScale: -1})
	o := h.send(wire.FlagACK, make([]byte, 536))
	o = append(o, h.send(wire.FlagACK, make([]byte, 536))...)
	if len(o) == 0 || o[0].tcp.Window != 65535 || h.s.socks[h.id].rcvScale != 0 {
		t.Fatalf("window %+v", o)
	}
}

// RFC 7323 5: PAWS drops a segment whose timestamp is older than TS.Recent.
func TestPAWS(t *testing.T) {
	h := newHand(t, wire.TCPOptions{WScale: -1, HasTS: true, TSVal: 1000})
	h.send(wire.FlagACK, []byte("new"))
	g := seg{sport: 40000, dport: 80, seq: h.seq, ack: h.ack, flags: wire.FlagACK, win: 65535,
		opts: wire.TCPOptions{WScale: -1, HasTS: true, TSVal: 1, TSEcr: 1}, payload: []byte("old")}
	h.s.Input(craft(g), h.now)
	o := out(t, h.s)
	if h.s.Counters().TCPPAWSDrops != 1 || len(o) != 1 || o[0].tcp.Ack != h.seq {
		t.Fatalf("PAWS: drops %d, frames %+v", h.s.Counters().TCPPAWSDrops, o)
	}
	b := make([]byte, 10)
	n, _ := h.s.Read(h.id, b)
	if string(b[:n]) != "new" {
		t.Fatalf("read %q", b[:n])
	}
}

// RFC 2018 + 6675: the receiver reports holes, the sender repairs exactly them.
func TestSACKRecovery(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	srv, cli := p.connect(80)
	n := 0
	sawSACK := false
	p.filter = func(from byte, f []byte) []byte {
		d := decode(t, f, 0)
		if from == 'b' && d.tcp.NSACK > 0 {
			sawSACK = true
		}
		if from == 'a' && len(d.payload) > 0 {
			n++
			if n == 30 || n == 33 || n == 36 {
				return nil
			}
		}
		return f
	}
	data := pattern(2 << 20)
	mustEqual(t, "download with losses", p.transfer(p.a, srv, p.b, cli, data, 60e9), data)
	c := p.a.Counters()
	if !sawSACK || c.TCPRetransSegs != 3 || c.TCPRTOs != 0 || c.TCPFastRecoveries != 1 {
		t.Fatalf("sack seen %v, retransmissions %d, RTOs %d, recoveries %d", sawSACK, c.TCPRetransSegs, c.TCPRTOs, c.TCPFastRecoveries)
	}
}

// RFC 6582 NewReno without SACK: partial ACKs repair one hole each.
func TestNewRenoRecovery(t *testing.T) {
	cb := cfgB()
	cb.NoSACK = true
	p := newPair(t, cfgA(), cb)
	srv, cli := p.connect(80)
	n := 0
	p.filter = func(from byte, f []byte) []byte {
		if from == 'a' {
			if d := decode(t, f, 0); len(d.payload) > 0 {
				n++
				if n == 30 || n == 33 || n == 36 {
					return nil
				}
			}
		}
		return f
	}
	data := pattern(2 << 20)
	mustEqual(t, "download with losses", p.transfer(p.a, srv, p.b, cli, data, 60e9), data)
	c := p.a.Counters()
	if p.a.socks[srv].sackOK || c.TCPRetransSegs != 3 || c.TCPRTOs != 0 || c.TCPFastRecoveries != 1 {
		t.Fatalf("retransmissions %d, RTOs %d, recoveries %d", c.TCPRetransSegs, c.TCPRTOs, c.TCPFastRecoveries)
	}
}

// Random loss both ways with TSO: everything arrives.
func TestRandomLossTSO(t *testing.T) {
	ca := cfgA()
	ca.TSOMax = 60000
	p := newPair(t, ca, cfgB())
	srv, cli := p.connect(80)
	x := uint32(99)
	p.filter = func(from byte, f []byte) []byte {
		x = x*1103515245 + 12345
		if (x>>16)%100 < 2 {
			return nil
		}
		return f
	}
	data := pattern(8 << 20)
	mustEqual(t, "lossy download", p.transfer(p.a, srv, p.b, cli, data, 600e9), data)
	up := pattern(1 << 20)
	mustEqual(t, "lossy upload", p.transfer(p.b, cli, p.a, srv, up, 600e9), up)
	if p.a.Counters().TCPRetransSegs == 0 {
		t.Fatal("no loss happened")
	}
}

// Snapshot mid-transfer, restore into fresh stacks, continue: the restored
// pair behaves byte for byte like the original.
func TestSnapshotMidTransfer(t *testing.T) {
	ca := cfgA()
	ca.TSOMax = 30000
	run := func(restoreAt int) ([]byte, [][]byte, []byte) {
		p := newPair(t, ca, cfgB())
		srv, cli := p.connect(80)
		var wire [][]byte
		x := uint32(5)
		p.filter = func(from byte, f []byte) []byte {
			x = x*1103515245 + 12345
			if (x>>16)%100 < 1 {
				return nil
			}
			wire = append(wire, append([]byte{from}, f...))
			return f
		}
		data := pattern(3 << 20)
		var got []byte
		off := 0
		for i := 0; len(got) < len(data) && i < 200000; i++ {
			if i == restoreAt {
				sa, sb := snapshotBytes(p.a), snapshotBytes(p.b)
				na, _ := New(ca)
				nb, _ := New(cfgB())
				if err := na.Restore(snapReader(sa)); err != nil {
					t.Fatal(err)
				}
				if err := nb.Restore(snapReader(sb)); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(snapshotBytes(na), sa) || !bytes.Equal(snapshotBytes(nb), sb) {
					t.Fatal("restored snapshot differs")
				}
				p.a, p.b = na, nb
			}
			if off < len(data) {
				k, _ := p.a.Write(srv, data[off:])
				off += k
				p.a.Poll(p.now)
			}
			b, _ := readAll(p.b, cli)
			got = append(got, b...)
			p.advance(p.now + 1e6)
		}
		return got, wire, append(snapshotBytes(p.a), snapshotBytes(p.b)...)
	}
	want, wireA, endA := run(-1)
	got, wireB, endB := run(40)
	mustEqual(t, "restored transfer", got, want)
	mustEqual(t, "data", got, pattern(3<<20))
	if len(wireA) != len(wireB) {
		t.Fatalf("frames on the wire: %d vs %d", len(wireA), len(wireB))
	}
	for i := range wireA {
		if !bytes.Equal(wireA[i], wireB[i]) {
			t.Fatalf("frame %d differs after restore", i)
		}
	}
	mustEqual(t, "final state", endB, endA)
}

// Listener close resets connections waiting in its queue; Abort sends RST.
func TestAbortAndListenerClose(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	srv, cli := p.connect(80)
	p.a.Abort(srv)
	p.advance(p.now + 1e6)
	if _, err := p.b.Read(cli, make([]byte, 1)); !errors.Is(err, sockapi.ErrReset) && !errors.Is(err, sockapi.ErrNoSocket) {
		t.Fatalf("client after abort: %v", err)
	}
	l := p.a.listeners[80].id
	id, _ := p.b.Dial(sockapi.Addr{IP: ipA, Port: 80})
	p.advance(p.now + 1e6)
	if len(p.a.socks[l].acceptQ) != 1 {
		t.Fatal("not queued")
	}
	p.a.Close(l)
	p.advance(p.now + 1e6)
	if p.b.stateOf(id) != stClosed {
		t.Fatalf("queued connection not reset: %v", p.b.stateOf(id))
	}
	if _, err := p.a.Listen(80, 1); err != nil {
		t.Fatalf("port not free after close: %v", err)
	}
}

// RFC 6675 2: ACKs that SACK new data are duplicates even when the window
// moves (Linux opens it as its reader drains); three of them start recovery.
func TestSACKDupAcksWithMovingWindow(t *testing.T) {
	h := newHand(t, wire.TCPOptions{MSS: 1000, WScale: 0, SACKPerm: true})
	h.s.Write(h.id, make([]byte, 10*988))
	o := h.poll()
	if len(o) < 5 {
		t.Fatalf("sent %d segments", len(o))
	}
	una := h.ack
	mss := uint32(988)
	for i := 1; i <= 3; i++ {
		g := seg{sport: 40000, dport: 80, seq: h.seq, ack: una, flags: wire.FlagACK, win: uint16(30000 + 1000*i),
			opts: wire.TCPOptions{WScale: -1, SACK: []wire.SACKBlock{{Left: una + mss, Right: una + mss*uint32(1+i)}}}}
		h.s.Input(craft(g), h.now)
	}
	o = h.poll()
	c := h.s.socks[h.id]
	if !c.inRecovery || len(o) == 0 || o[0].tcp.Seq != una || len(o[0].payload) != int(mss) {
		t.Fatalf("no fast retransmit of the first segment: recovery %v, frames %+v", c.inRecovery, o)
	}
}

// RFC 8985 7: a lost tail is repaired by the probe, long before the RTO.
func TestTailLossProbe(t *testing.T) {
	for _, drop := range []int{1, 3} {
		p := newPair(t, cfgA(), cfgB())
		srv, cli := p.connect(80)
		// Warm up the RTT estimate.
		mustEqual(t, "warm-up", p.transfer(p.a, srv, p.b, cli, pattern(100000), 10e9), pattern(100000))
		data := pattern(20 * 1448)
		var sent [][]byte
		p.filter = func(from byte, f []byte) []byte {
			if from == 'a' {
				if d := decode(t, f, 0); len(d.payload) > 0 && len(sent) < 20 {
					sent = append(sent, f)
					if len(sent) > 20-drop {
						return nil // the tail of the response is lost
					}
				}
			}
			return f
		}
		start := p.now
		got := p.transfer(p.a, srv, p.b, cli, data, 10e9)
		mustEqual(t, "response", got, data)
		c := p.a.Counters()
		if c.TCPRTOs != 0 || c.TCPTailLossProbes == 0 || p.now-start >= p.a.cfg.MinRTO {
			t.Fatalf("drop %d: RTOs %d, probes %d, took %d ms", drop, c.TCPRTOs, c.TCPTailLossProbes, (p.now-start)/1e6)
		}
	}
}

// With ChecksumOffload every TCP frame (data, ACK, RST) carries the folded
// pseudo-header sum, which a NIC completes over bytes 34.. into offset 16.
func TestChecksumOffloadFrames(t *testing.T) {
	c := cfgA()
	c.ChecksumOffload = true
	s, _ := New(c)
	peerARP(s, 1)
	s.Input(craft(seg{sport: 1, dport: 9, seq: 5, flags: wire.FlagSYN}), 2) // RST from sendCtl
	s.Listen(80, 4)
	s.Input(craft(seg{sport: 2, dport: 80, seq: 5, flags: wire.FlagSYN, win: 1000}), 3)
	s.Poll(3)
	n := 0
	s.DrainFrames(func(f []byte, _ uint16) {
		n++
		sum := ^wire.Fold(wire.Sum(f[34:], 0)) // what the NIC does
		f[34+16], f[34+17] = byte(sum>>8), byte(sum)
		decode(t, f, 0) // fails on a bad checksum
	})
	if n != 2 {
		t.Fatalf("%d frames", n)
	}
}

// An orphaned connection (closed by the service) whose peer keeps a zero
// window forever is given up after MaxRetries probes.
func TestOrphanZeroWindowGivesUp(t *testing.T) {
	h := newHand(t, wire.TCPOptions{WScale: -1})
	h.s.Write(h.id, make([]byte, 100))
	h.poll()
	h.ack += 100
	// Acknowledge the data with a zero window, then the service closes.
	h.s.Input(craft(seg{sport: 40000, dport: 80, seq: h.seq, ack: h.ack, flags: wire.FlagACK, win: 0}), h.now)
	h.s.Write(h.id, make([]byte, 100))
	h.s.Close(h.id)
	h.poll()
	for i := 0; i < 200 && h.s.socks[h.id] != nil; i++ {
		h.now = h.s.NextDeadline()
		h.poll()
	}
	if h.s.socks[h.id] != nil || h.s.Counters().TCPWindowProbes < uint64(h.s.cfg.MaxRetries) {
		t.Fatalf("orphan kept: probes %d", h.s.Counters().TCPWindowProbes)
	}
}

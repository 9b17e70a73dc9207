package netstack

import (
	"bytes"
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0xa}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0xb}
	ipA  = [4]byte{10, 9, 0, 1}
	ipB  = [4]byte{10, 9, 0, 2}
)

func cfgA() Config {
	return Config{MAC: macA, IP: ipA, PrefixLen: 24, ISNKey: [16]byte{1, 2, 3}}
}
func cfgB() Config {
	return Config{MAC: macB, IP: ipB, PrefixLen: 24, ISNKey: [16]byte{9, 8, 7}}
}

// pair is two stacks on one virtual wire: a is the server, b the client.
type pair struct {
	t    *testing.T
	a, b *Stack
	now  int64
	// filter may drop or alter a frame in flight; from is 'a' or 'b'.
	filter func(from byte, f []byte) []byte
	// delay holds frames back to reorder them.
	held     []heldFrame
	evA, evB func(sockapi.Event)
	framesAB int
}

type heldFrame struct {
	to byte
	f  []byte
	at int64
}

func newPair(t *testing.T, ca, cb Config) *pair {
	t.Helper()
	a, err := New(ca)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cb)
	if err != nil {
		t.Fatal(err)
	}
	return &pair{t: t, a: a, b: b, now: 1e9}
}

func (p *pair) stack(which byte) *Stack {
	if which == 'a' {
		return p.a
	}
	return p.b
}

// cutGSO splits a super-segment the way a NIC would, for the test wire.
func cutGSO(f []byte, gso uint16) [][]byte {
	if gso == 0 {
		return [][]byte{f}
	}
	ipb := f[wire.EthLen:]
	ih, err := wire.ParseIPv4(ipb)
	if err != nil {
		panic(err)
	}
	tcp := ipb[ih.IHL:ih.TotalLen]
	th, err := wire.ParseTCP(tcp)
	if err != nil {
		panic(err)
	}
	payload := tcp[th.DataOff:]
	var out [][]byte
	for off := 0; off < len(payload); off += int(gso) {
		n := min(int(gso), len(payload)-off)
		seg := make([]byte, wire.EthLen+ih.IHL+th.DataOff+n)
		copy(seg, f[:wire.EthLen+ih.IHL+th.DataOff])
		copy(seg[wire.EthLen+ih.IHL+th.DataOff:], payload[off:off+n])
		t := seg[wire.EthLen+ih.IHL:]
		seqv := th.Seq + uint32(off)
		t[4], t[5], t[6], t[7] = byte(seqv>>24), byte(seqv>>16), byte(seqv>>8), byte(seqv)
		if off+n < len(payload) {
			t[13] &^= wire.FlagFIN | wire.FlagPSH
		}
		t[16], t[17] = 0, 0
		cs := ^wire.Fold(wire.Sum(t, wire.PseudoSum(ih.Src, ih.Dst, wire.ProtoTCP, len(t))))
		t[16], t[17] = byte(cs>>8), byte(cs)
		ip := seg[wire.EthLen:]
		tl := len(seg) - wire.EthLen
		ip[2], ip[3] = byte(tl>>8), byte(tl)
		ip[10], ip[11] = 0, 0
		c := wire.Checksum(ip[:ih.IHL])
		ip[10], ip[11] = byte(c>>8), byte(c)
		out = append(out, seg)
	}
	return out
}

// settle moves frames until both stacks are quiet at the current time.
func (p *pair) settle() {
	for round := 0; round < 100000; round++ {
		moved := false
		for _, from := range []byte{'a', 'b'} {
			src := p.stack(from)
			to := byte('b')
			if from == 'b' {
				to = 'a'
			}
			var out [][]byte
			src.DrainFrames(func(f []byte, gso uint16) { out = append(out, cutGSO(f, gso)...) })
			for _, f := range out {
				moved = true
				if p.filter != nil {
					f = p.filter(from, f)
					if f == nil {
						continue
					}
				}
				p.deliver(to, f)
			}
		}
		for _, which := range []byte{'a', 'b'} {
			st := p.stack(which)
			h := p.evA
			if which == 'b' {
				h = p.evB
			}
			st.DrainEvents(func(ev sockapi.Event) {
				moved = true
				if h != nil {
					h(ev)
				}
			})
			st.Poll(p.now)
		}
		if !moved && p.a.txLen() == 0 && p.b.txLen() == 0 {
			return
		}
	}
	p.t.Fatal("settle: no quiescence")
}

func (s *Stack) txLen() int { return len(s.tx) }

func (p *pair) deliver(to byte, f []byte) {
	if to == 'b' {
		p.framesAB++
	}
	st := p.stack(to)
	st.Input(f, p.now)
	st.Poll(p.now)
}

// advance runs virtual time forward to until, firing timers on the way.
func (p *pair) advance(until int64) {
	p.settle()
	for {
		next := int64(0)
		for _, st := range []*Stack{p.a, p.b} {
			if d := st.NextDeadline(); d != 0 && (next == 0 || d < next) {
				next = d
			}
		}
		for _, h := range p.held {
			if next == 0 || h.at < next {
				next = h.at
			}
		}
		if next == 0 || next > until {
			p.now = until
			p.a.Poll(p.now)
			p.b.Poll(p.now)
			p.settle()
			return
		}
		if next > p.now {
			p.now = next
		}
		var keep []heldFrame
		for _, h := range p.held {
			if h.at <= p.now {
				p.deliver(h.to, h.f)
			} else {
				keep = append(keep, h)
			}
		}
		p.held = keep
		p.a.Poll(p.now)
		p.b.Poll(p.now)
		p.settle()
	}
}

// connect opens a connection from b to a's listener on port and returns
// (server socket, client socket).
func (p *pair) connect(port uint16) (sockapi.SockID, sockapi.SockID) {
	p.t.Helper()
	l, err := p.a.Listen(port, 16)
	if err != nil {
		p.t.Fatal(err)
	}
	var srv sockapi.SockID
	oldA := p.evA
	p.evA = func(ev sockapi.Event) {
		if ev.Kind == sockapi.EvAccept && ev.Sock == l {
			if id, ok := p.a.Accept(l); ok {
				srv = id
			}
			return
		}
		if oldA != nil {
			oldA(ev)
		}
	}
	cli, err := p.b.Dial(sockapi.Addr{IP: ipA, Port: port})
	if err != nil {
		p.t.Fatal(err)
	}
	p.advance(p.now + 10e6)
	p.evA = oldA
	if srv == 0 {
		p.t.Fatalf("no connection accepted; a counters %+v", p.a.Counters())
	}
	if got := p.b.stateOf(cli); got != stEstablished {
		p.t.Fatalf("client state %v", got)
	}
	return srv, cli
}

func (s *Stack) stateOf(id sockapi.SockID) tcpState {
	if c := s.socks[id]; c != nil {
		return c.state
	}
	return stClosed
}

// readAll drains what is readable from sock.
func readAll(st *Stack, id sockapi.SockID) ([]byte, error) {
	var out []byte
	buf := make([]byte, 65536)
	for {
		n, err := st.Read(id, buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, nil
		}
	}
}

// transfer writes data from (src, sid) and reads it at (dst, did) until all
// arrived or the virtual deadline passes; returns what arrived.
func (p *pair) transfer(src *Stack, sid sockapi.SockID, dst *Stack, did sockapi.SockID, data []byte, limit int64) []byte {
	var got []byte
	off := 0
	end := p.now + limit
	for p.now < end {
		if off < len(data) {
			n, err := src.Write(sid, data[off:])
			if err != nil {
				p.t.Fatalf("write: %v", err)
			}
			off += n
			src.Poll(p.now)
		}
		b, _ := readAll(dst, did)
		got = append(got, b...)
		if len(got) >= len(data) {
			break
		}
		p.settle()
		b, _ = readAll(dst, did)
		got = append(got, b...)
		if len(got) >= len(data) {
			break
		}
		p.advance(p.now + 1e6)
	}
	p.settle()
	return got
}

func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(12345)
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

func snapshotBytes(s *Stack) []byte {
	w := snap.NewWriter(1 << 16)
	s.Snapshot(w)
	return w.Bytes()
}

func mustEqual(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		n := 0
		for n < len(got) && n < len(want) && got[n] == want[n] {
			n++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at %d", what, len(got), len(want), n)
	}
}

func snapReader(b []byte) *snap.Reader { return snap.NewReader(b) }

package netstack

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// fuzzDriver plays a byte program against a stack with a small echo
// service: ops are crafted segments, raw frames, time steps and service calls.
type fuzzDriver struct {
	s     *Stack
	now   int64
	conns []sockapi.SockID
	buf   []byte
}

func newFuzzDriver() *fuzzDriver {
	c := cfgA()
	c.MaxSockets = 16
	c.SendBuf = 8192
	c.RecvBuf = 8192
	c.TXQueue = 256
	c.OOORanges = 4
	c.SACKRanges = 4
	c.ARPCacheSize = 4
	c.ARPPending = 4
	c.TSOMax = 6000
	s, err := New(c)
	if err != nil {
		panic(err)
	}
	s.Listen(80, 4)
	return &fuzzDriver{s: s, now: 1e9, buf: make([]byte, 4096)}
}

func (d *fuzzDriver) events() {
	d.s.DrainEvents(func(ev sockapi.Event) {
		switch ev.Kind {
		case sockapi.EvAccept:
			for {
				id, ok := d.s.Accept(ev.Sock)
				if !ok {
					break
				}
				d.conns = append(d.conns, id)
			}
		case sockapi.EvReadable:
			n, _ := d.s.Read(ev.Sock, d.buf)
			d.s.Write(ev.Sock, d.buf[:n])
		case sockapi.EvClosed:
			for i, id := range d.conns {
				if id == ev.Sock {
					d.conns = append(d.conns[:i], d.conns[i+1:]...)
					break
				}
			}
		}
	})
}

func (d *fuzzDriver) step(op []byte, sink func([]byte)) {
	if len(op) == 0 {
		return
	}
	s := d.s
	switch op[0] % 6 {
	case 0: // raw frame
		s.Input(op[1:], d.now)
	case 1, 2: // crafted segment
		if len(op) < 12 {
			return
		}
		sport := 40000 + uint16(op[1]%4)
		var c *tcb
		if x := s.conns[tuple{peerIP, sport, 80}]; x != nil {
			c = x
		}
		seq := binary.BigEndian.Uint32(op[2:])
		ack := binary.BigEndian.Uint32(op[6:])
		if c != nil && op[0]&0x80 != 0 {
			seq = c.rcvNxt + uint32(int8(op[2]))*100
			ack = c.nxt - uint32(op[3]%8)*100
		}
		g := seg{sport: sport, dport: 80, seq: seq, ack: ack, flags: op[10], win: uint16(op[11]) << 6}
		if op[0]&0x40 != 0 {
			g.opts = wire.TCPOptions{MSS: 1000, WScale: int(op[1] % 16), SACKPerm: true, HasTS: true, TSVal: uint32(d.now / 1e6)}
		}
		if op[0]&0x20 != 0 && c != nil {
			g.opts.WScale = -1
			g.opts.SACK = []wire.SACKBlock{{Left: c.una + uint32(op[1])*100, Right: c.una + uint32(op[1])*100 + 500}}
		}
		g.payload = op[12:]
		s.Input(craft(g), d.now)
	case 3: // time passes
		d.now += int64(op[1%len(op)]) * 7e6 * int64(1+len(op))
	case 4: // service writes or reads
		for _, id := range d.conns {
			if len(op) > 1 && op[1]&1 == 1 {
				s.Write(id, bytes.Repeat(op, 50))
			} else {
				s.Read(id, d.buf)
			}
		}
	case 5: // service closes or aborts one
		if len(d.conns) > 0 {
			i := int(op[1%len(op)]) % len(d.conns)
			if op[0]&0x80 != 0 {
				s.Abort(d.conns[i])
			} else {
				s.Close(d.conns[i])
			}
			d.conns = append(d.conns[:i], d.conns[i+1:]...)
		}
	}
	s.Poll(d.now)
	d.events()
	s.Poll(d.now)
	if dl := s.NextDeadline(); dl != 0 && dl <= d.now+int64(op[0])*1e6 {
		s.Poll(dl)
		if dl > d.now {
			d.now = dl
		}
		d.events()
	}
	s.DrainFrames(func(f []byte, gso uint16) {
		if sink != nil {
			sink(f)
		}
	})
}

// splitOps cuts a fuzz input into length-prefixed ops.
func splitOps(b []byte) [][]byte {
	var ops [][]byte
	for len(b) > 0 {
		n := int(b[0])
		b = b[1:]
		if n > len(b) {
			n = len(b)
		}
		ops = append(ops, b[:n])
		b = b[n:]
	}
	return ops
}

func opsSeed(ops ...[]byte) []byte {
	var b []byte
	for _, o := range ops {
		b = append(b, byte(len(o)))
		b = append(b, o...)
	}
	return b
}

// FuzzStackFrames: arbitrary frame/segment/time/service sequences must not
// panic, must stay within bounds, and two replicas (one restored from a
// snapshot half-way) must end in identical states with identical output.
func FuzzStackFrames(f *testing.F) {
	syn := append([]byte{0x41, 0, 0, 0, 0, 100, 0, 0, 0, 0, wire.FlagSYN, 255}, nil...)
	ack := []byte{0x82, 0, 0, 0, 0, 0, 0, 0, 0, 0, wire.FlagACK, 255, 'h', 'i'}
	fin := []byte{0x82, 0, 0, 0, 0, 0, 0, 0, 0, 0, wire.FlagACK | wire.FlagFIN, 255}
	rst := []byte{0x81, 0, 0, 0, 0, 0, 0, 0, 0, 0, wire.FlagRST, 255}
	arp := make([]byte, wire.EthLen+wire.ARPLen)
	wire.PutEthernet(arp, broadcastMAC, peerMAC, wire.EtherTypeARP)
	wire.PutARP(arp[wire.EthLen:], wire.ARP{Op: 1, SenderHW: peerMAC, SenderIP: peerIP, TargetIP: ipA})
	arpOp := append([]byte{0}, arp...)
	f.Add(opsSeed(arpOp, syn, []byte{3, 1}, ack, []byte{4, 1}, []byte{3, 50}, ack, fin, []byte{5, 0}, []byte{3, 200}))
	f.Add(opsSeed(arpOp, syn, ack, []byte{4, 1}, rst, []byte{3, 255}))
	f.Add(opsSeed(syn, []byte{3, 255}, []byte{3, 255}, []byte{3, 255}))
	f.Fuzz(fuzzStackBody)
}

func fuzzStackBody(t *testing.T, b []byte) {
	{
		ops := splitOps(b)
		if len(ops) > 300 {
			ops = ops[:300]
		}
		a, r := newFuzzDriver(), newFuzzDriver()
		var outA, outR bytes.Buffer
		for i, op := range ops {
			a.step(op, func(f []byte) { outA.Write(f) })
			if i == len(ops)/2 {
				snapR := snapshotBytes(r.s)
				fresh := newFuzzDriver()
				if err := fresh.s.Restore(snapReader(snapR)); err != nil {
					t.Fatalf("restore: %v", err)
				}
				fresh.now, fresh.conns = r.now, r.conns
				r = fresh
			}
			r.step(op, func(f []byte) { outR.Write(f) })
			s := a.s
			if len(s.order) > s.cfg.MaxSockets || len(s.tx) > s.cfg.TXQueue || s.arp.held > s.cfg.ARPPending ||
				len(s.arp.entries) > s.cfg.ARPCacheSize {
				t.Fatalf("bounds exceeded: sockets %d tx %d held %d arp %d", len(s.order), len(s.tx), s.arp.held, len(s.arp.entries))
			}
			for _, c := range s.order {
				if c.snd.Len() > c.snd.max || c.rcv.Len() > c.rcv.max || len(c.ooo) > s.cfg.OOORanges || len(c.sacked) > s.cfg.SACKRanges {
					t.Fatalf("socket %d exceeds its bounds", c.id)
				}
			}
		}
		if !bytes.Equal(outA.Bytes(), outR.Bytes()) {
			t.Fatal("replicas sent different frames")
		}
		if !bytes.Equal(snapshotBytes(a.s), snapshotBytes(r.s)) {
			t.Fatal("replicas ended in different states")
		}
	}
}

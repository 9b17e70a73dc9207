package netstack

import (
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// benchSender measures the sender path: the service writes, the stack emits
// (super-)segments, a hand-driven peer acknowledges each frame at once.
func benchSender(b *testing.B, tso int, offload bool) {
	c := cfgA()
	c.TSOMax = tso
	c.ChecksumOffload = offload
	s, _ := New(c)
	s.Listen(80, 8)
	peerARP(s, 1)
	now := int64(1e9)
	opts := wire.TCPOptions{MSS: 1460, WScale: 7, SACKPerm: true, HasTS: true, TSVal: 1}
	s.Input(craft(seg{sport: 40000, dport: 80, seq: 1000, flags: wire.FlagSYN, win: 65535, opts: opts}), now)
	s.Poll(now)
	var iss uint32
	s.DrainFrames(func(f []byte, _ uint16) { iss = decodeSeq(f) })
	ack := iss + 1
	ackOpts := wire.TCPOptions{WScale: -1, HasTS: true, TSVal: 2}
	s.Input(craft(seg{sport: 40000, dport: 80, seq: 1001, ack: ack, flags: wire.FlagACK, win: 65535, opts: ackOpts}), now)
	l := s.listeners[80]
	id, _ := s.Accept(l.id)
	s.DrainEvents(func(ev sockapi.Event) {})
	chunk := make([]byte, 256<<10)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	var last uint32
	drain := func() {
		s.DrainFrames(func(f []byte, _ uint16) {
			if e := decodeEnd(f); last == 0 || seqGT(e, last) {
				last = e
			}
			s.Recycle(f)
		})
	}
	for i := 0; i < b.N; i++ {
		for off := 0; off < len(chunk); {
			n, _ := s.Write(id, chunk[off:])
			off += n

			now += 1000
			s.Poll(now)
			drain()
			if last != 0 {
				ackOpts.TSVal++
				s.Input(craft(seg{sport: 40000, dport: 80, seq: 1001, ack: last, flags: wire.FlagACK, win: 65535, opts: ackOpts}), now)
				s.Poll(now)
				drain()
			}
			s.DrainEvents(func(ev sockapi.Event) {})
		}
	}
}

func decodeSeq(f []byte) uint32 {
	t := f[wire.EthLen+wire.IPv4Len:]
	return uint32(t[4])<<24 | uint32(t[5])<<16 | uint32(t[6])<<8 | uint32(t[7])
}

// decodeEnd is the sequence number after a data frame.
func decodeEnd(f []byte) uint32 {
	ip, _ := wire.ParseIPv4(f[wire.EthLen:])
	t := f[wire.EthLen+ip.IHL : wire.EthLen+ip.TotalLen]
	th, _ := wire.ParseTCP(t)
	return th.Seq + uint32(len(t)-th.DataOff)
}

func BenchmarkSenderMTU(b *testing.B)                { benchSender(b, 0, false) }
func BenchmarkSenderTSO(b *testing.B)                { benchSender(b, 64000, false) }
func BenchmarkSenderTSOChecksumOffload(b *testing.B) { benchSender(b, 64000, true) }

// BenchmarkReceiver measures in-order data arrival and ACK generation.
func BenchmarkReceiver(b *testing.B) {
	h := newHand(&testing.T{}, wire.TCPOptions{MSS: 1460, WScale: 7, SACKPerm: true, HasTS: true, TSVal: 1})
	payload := make([]byte, 1448)
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g := seg{sport: 40000, dport: 80, seq: h.seq, ack: h.ack, flags: wire.FlagACK, win: 65535,
			opts: wire.TCPOptions{WScale: -1, HasTS: true, TSVal: uint32(i), TSEcr: 1}, payload: payload}
		h.seq += uint32(len(payload))
		h.s.Input(craft(g), h.now)
		h.s.Poll(h.now)
		if i%16 == 0 {
			h.s.Read(h.id, buf)
			h.s.DrainEvents(func(sockapi.Event) {})
		}
		h.s.DrainFrames(func([]byte, uint16) {})
	}
}

func BenchmarkChecksum64K(b *testing.B) {
	buf := make([]byte, 65536)
	b.SetBytes(int64(len(buf)))
	for i := 0; i < b.N; i++ {
		wire.Checksum(buf)
	}
}

// BenchmarkSnapshot: the stack with 8 connections whose peers acknowledge
// nothing, each holding 4 MiB in its send buffer (SendAhead raised to the
// whole buffer): MB/s is the encoding speed of Snapshot, which the
// lockstep primary pays as its reintegration pause.
func BenchmarkSnapshot(b *testing.B) {
	c := cfgA()
	c.SendAhead = c.SendBuf
	if c.SendAhead == 0 {
		c.SendAhead = 4 << 20
	}
	s, _ := New(c)
	s.Listen(80, 64)
	peerARP(s, 1)
	now := int64(1e9)
	opts := wire.TCPOptions{MSS: 1460, WScale: 7, SACKPerm: true, HasTS: true, TSVal: 1}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	for k := range 8 {
		sport := uint16(40000 + k)
		s.Input(craft(seg{sport: sport, dport: 80, seq: 1000, flags: wire.FlagSYN, win: 65535, opts: opts}), now)
		s.Poll(now)
		var iss uint32
		s.DrainFrames(func(f []byte, _ uint16) { iss = decodeSeq(f) })
		ackOpts := wire.TCPOptions{WScale: -1, HasTS: true, TSVal: 2}
		s.Input(craft(seg{sport: sport, dport: 80, seq: 1001, ack: iss + 1, flags: wire.FlagACK, win: 65535, opts: ackOpts}), now)
		id, ok := s.Accept(s.listeners[80].id)
		if !ok {
			b.Fatalf("connection %d not accepted", k)
		}
		for {
			n, _ := s.Write(id, chunk)
			if n == 0 {
				break
			}
		}
		s.Poll(now)
		s.DrainFrames(func(f []byte, _ uint16) {})
		s.DrainEvents(func(ev sockapi.Event) {})
	}
	size := len(snapshotBytes(s))
	if size < 8*4<<20 {
		b.Fatalf("snapshot of %d bytes: the send buffers did not fill", size)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := snap.NewWriter(4096)
		s.Snapshot(w)
	}
}

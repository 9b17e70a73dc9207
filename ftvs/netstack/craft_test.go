package netstack

import (
	"encoding/binary"
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
)

// peerIP/peerMAC is a hand-driven peer talking to stack A.
var (
	peerIP  = [4]byte{10, 9, 0, 77}
	peerMAC = [6]byte{0x02, 0, 0, 0, 0, 0x77}
)

type seg struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
	win          uint16
	opts         wire.TCPOptions
	payload      []byte
}

// craft builds a frame from the peer to stack A.
func craft(g seg) []byte {
	if g.opts.WScale == 0 && g.opts.MSS == 0 && !g.opts.HasTS && !g.opts.SACKPerm && len(g.opts.SACK) == 0 {
		g.opts.WScale = -1
	}
	ol := g.opts.Len()
	hdr := wire.TCPLen + ol
	f := make([]byte, wire.EthLen+wire.IPv4Len+hdr+len(g.payload))
	wire.PutEthernet(f, macA, peerMAC, wire.EtherTypeIPv4)
	wire.PutIPv4(f[wire.EthLen:], len(f)-wire.EthLen, 1, true, 64, wire.ProtoTCP, peerIP, ipA)
	t := f[wire.EthLen+wire.IPv4Len:]
	wire.PutTCP(t, g.sport, g.dport, g.seq, g.ack, hdr, g.flags, g.win)
	wire.PutTCPOptions(t[wire.TCPLen:], &g.opts)
	copy(t[hdr:], g.payload)
	binary.BigEndian.PutUint16(t[16:18], ^wire.Fold(wire.Sum(t, wire.PseudoSum(peerIP, ipA, wire.ProtoTCP, len(t)))))
	return f
}

// parsed is a frame the stack sent, decoded.
type parsed struct {
	eth     wire.Ethernet
	ip      wire.IPv4
	tcp     wire.TCP
	payload []byte
	arp     *wire.ARP
	raw     []byte
	gso     uint16
}

func decode(t *testing.T, f []byte, gso uint16) parsed {
	t.Helper()
	var p parsed
	p.raw, p.gso = f, gso
	var err error
	p.eth, err = wire.ParseEthernet(f)
	if err != nil {
		t.Fatal(err)
	}
	if p.eth.EtherType == wire.EtherTypeARP {
		a, err := wire.ParseARP(f[wire.EthLen:])
		if err != nil {
			t.Fatal(err)
		}
		p.arp = &a
		return p
	}
	p.ip, err = wire.ParseIPv4(f[wire.EthLen:])
	if err != nil {
		t.Fatal(err)
	}
	b := f[wire.EthLen+p.ip.IHL : wire.EthLen+p.ip.TotalLen]
	if p.ip.Proto == wire.ProtoTCP {
		if !wire.VerifyTCP(p.ip.Src, p.ip.Dst, b) {
			t.Fatal("stack sent a TCP segment with a bad checksum")
		}
		p.tcp, err = wire.ParseTCP(b)
		if err != nil {
			t.Fatal(err)
		}
		p.payload = b[p.tcp.DataOff:]
	} else {
		p.payload = b
	}
	return p
}

// out drains and decodes everything stack s sent.
func out(t *testing.T, s *Stack) []parsed {
	t.Helper()
	var r []parsed
	s.DrainFrames(func(f []byte, gso uint16) { r = append(r, decode(t, f, gso)) })
	return r
}

// peerARP teaches stack A the peer's MAC with an ARP request.
func peerARP(s *Stack, now int64) {
	f := make([]byte, wire.EthLen+wire.ARPLen)
	wire.PutEthernet(f, broadcastMAC, peerMAC, wire.EtherTypeARP)
	wire.PutARP(f[wire.EthLen:], wire.ARP{Op: 1, SenderHW: peerMAC, SenderIP: peerIP, TargetIP: ipA})
	s.Input(f, now)
	s.Poll(now)
	s.DrainFrames(func([]byte, uint16) {})
}

// handshake opens a connection from the hand-driven peer (port 40000) to
// A's port 80; it returns the accepted socket, the server ISN and the SYN-ACK.
func handshake(t *testing.T, s *Stack, now int64, opts wire.TCPOptions, peerISN uint32) (uint32, parsed) {
	t.Helper()
	if s.listeners[80] == nil {
		if _, err := s.Listen(80, 8); err != nil {
			t.Fatal(err)
		}
	}
	peerARP(s, now)
	s.Input(craft(seg{sport: 40000, dport: 80, seq: peerISN, flags: wire.FlagSYN, win: 65535, opts: opts}), now)
	s.Poll(now)
	o := out(t, s)
	if len(o) != 1 || o[0].tcp.Flags != wire.FlagSYN|wire.FlagACK || o[0].tcp.Ack != peerISN+1 {
		t.Fatalf("want one SYN-ACK, got %+v", o)
	}
	return o[0].tcp.Seq, o[0]
}

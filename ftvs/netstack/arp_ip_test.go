package netstack

import (
	"encoding/binary"
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

func newA(t *testing.T) *Stack {
	t.Helper()
	s, err := New(cfgA())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// RFC 826: answer requests for our address and learn the asker.
func TestARPAnswersAndLearns(t *testing.T) {
	s := newA(t)
	f := make([]byte, wire.EthLen+wire.ARPLen)
	wire.PutEthernet(f, broadcastMAC, peerMAC, wire.EtherTypeARP)
	wire.PutARP(f[wire.EthLen:], wire.ARP{Op: 1, SenderHW: peerMAC, SenderIP: peerIP, TargetIP: ipA})
	s.Input(f, 1)
	o := out(t, s)
	if len(o) != 1 || o[0].arp == nil || o[0].arp.Op != 2 || o[0].eth.Dst != peerMAC ||
		o[0].arp.SenderHW != macA || o[0].arp.SenderIP != ipA || o[0].arp.TargetIP != peerIP {
		t.Fatalf("bad ARP reply %+v", o)
	}
	if mac, ok := s.arp.lookup(s, peerIP); !ok || mac != peerMAC {
		t.Fatal("asker not learned")
	}
	// A request for someone else is neither answered nor learned.
	other := [4]byte{10, 9, 0, 99}
	wire.PutARP(f[wire.EthLen:], wire.ARP{Op: 1, SenderHW: macB, SenderIP: other, TargetIP: [4]byte{10, 9, 0, 100}})
	s.Input(f, 2)
	if len(out(t, s)) != 0 {
		t.Fatal("answered a request for another host")
	}
	if _, ok := s.arp.entries[other]; ok || s.Counters().ARPNotForUs != 1 {
		t.Fatal("learned from (or did not count) a request not for us")
	}
}

// Resolution: frames wait in a bounded queue, requests are retried, then dropped.
func TestARPResolveQueueRetryExpire(t *testing.T) {
	s := newA(t)
	if _, err := s.Listen(80, 4); err != nil {
		t.Fatal(err)
	}
	// A SYN from an unknown on-link host that we can't learn from (broadcast
	// source MAC is refused), so the SYN-ACK must wait for ARP.
	syn := craft(seg{sport: 1000, dport: 80, seq: 5, flags: wire.FlagSYN, win: 1000})
	copy(syn[6:12], broadcastMAC[:])
	s.Input(syn, 1e9)
	s.Poll(1e9)
	o := out(t, s)
	if len(o) != 1 || o[0].arp == nil || o[0].arp.Op != 1 || o[0].arp.TargetIP != peerIP {
		t.Fatalf("want one ARP request, got %+v", o)
	}
	if s.NextDeadline() != 2e9 {
		t.Fatalf("retry deadline %d", s.NextDeadline())
	}
	s.Poll(2e9)
	if o := out(t, s); len(o) != 1 || o[0].arp == nil {
		t.Fatalf("want a retried request, got %d frames", len(o))
	}
	// The reply releases the held SYN-ACK.
	f := make([]byte, wire.EthLen+wire.ARPLen)
	wire.PutEthernet(f, macA, peerMAC, wire.EtherTypeARP)
	wire.PutARP(f[wire.EthLen:], wire.ARP{Op: 2, SenderHW: peerMAC, SenderIP: peerIP, TargetHW: macA, TargetIP: ipA})
	s.Input(f, 2.5e9)
	o = out(t, s)
	// Two: the SYN-ACK and its retransmission at the 1 s RTO both waited.
	if len(o) != 2 || o[0].tcp.Flags != wire.FlagSYN|wire.FlagACK || o[0].eth.Dst != peerMAC || o[1].tcp.Seq != o[0].tcp.Seq {
		t.Fatalf("held SYN-ACKs not released: %+v", o)
	}
	// Entries age: after the lifetime a refresh request goes out, after the
	// grace period the entry is gone.
	life := s.cfg.ARPLifetime
	if _, ok := s.arp.lookup(s, peerIP); !ok {
		t.Fatal("entry missing")
	}
	s.now = 2.5e9 + life + 1
	if _, ok := s.arp.lookup(s, peerIP); !ok {
		t.Fatal("aged entry should still be used while refreshing")
	}
	if o := out(t, s); len(o) != 1 || o[0].arp == nil || o[0].eth.Dst != peerMAC {
		t.Fatalf("want unicast refresh request, got %+v", o)
	}
	s.now += arpGrace
	if _, ok := s.arp.lookup(s, peerIP); ok {
		t.Fatal("expired entry still used")
	}
	// Unanswered resolution gives up after three tries and counts the drops.
	s2 := newA(t)
	for i := 0; i < 20; i++ {
		s2.arp.hold(s2, [4]byte{10, 9, 0, 50}, txFrame{b: make([]byte, 60)})
	}
	if s2.ctr.ARPHoldDrops != 4 {
		t.Fatalf("per-neighbour bound: %d drops, want 4", s2.ctr.ARPHoldDrops)
	}
	for now := int64(1e9); now <= 4e9; now += 1e9 {
		s2.Poll(now)
	}
	if s2.ctr.ARPResolveFailed != 1 || s2.ctr.ARPHoldDrops != 20 || len(s2.arp.waits) != 0 {
		t.Fatalf("resolve failed %d, drops %d, waits %d", s2.ctr.ARPResolveFailed, s2.ctr.ARPHoldDrops, len(s2.arp.waits))
	}
}

func TestGratuitousARP(t *testing.T) {
	s := newA(t)
	s.GratuitousARP()
	o := out(t, s)
	if len(o) != 1 || o[0].arp == nil || o[0].eth.Dst != broadcastMAC || o[0].arp.SenderIP != ipA ||
		o[0].arp.TargetIP != ipA || o[0].arp.SenderHW != macA {
		t.Fatalf("bad gratuitous ARP %+v", o)
	}
}

// RFC 792 echo; RFC 791 header checks, fragments, TTL/DF of what we send.
func TestICMPEchoAndIPv4Checks(t *testing.T) {
	s := newA(t)
	peerARP(s, 1)
	mk := func(mod func(ip, icmp []byte)) []byte {
		f := make([]byte, wire.EthLen+wire.IPv4Len+8+5)
		wire.PutEthernet(f, macA, peerMAC, wire.EtherTypeIPv4)
		icmp := f[wire.EthLen+wire.IPv4Len:]
		icmp[0] = 8
		binary.BigEndian.PutUint16(icmp[4:], 0x1234)
		binary.BigEndian.PutUint16(icmp[6:], 7)
		copy(icmp[8:], "hello")
		binary.BigEndian.PutUint16(icmp[2:], wire.Checksum(icmp))
		wire.PutIPv4(f[wire.EthLen:], len(f)-wire.EthLen, 9, false, 3, wire.ProtoICMP, peerIP, ipA)
		if mod != nil {
			mod(f[wire.EthLen:], icmp)
		}
		return f
	}
	s.Input(mk(nil), 2)
	o := out(t, s)
	if len(o) != 1 || o[0].ip.Proto != wire.ProtoICMP {
		t.Fatalf("no echo reply: %+v", o)
	}
	r := o[0]
	if r.payload[0] != 0 || string(r.payload[8:]) != "hello" || wire.Checksum(r.payload) != 0 ||
		r.ip.Dst != peerIP || r.ip.TTL != 64 || r.eth.Dst != peerMAC {
		t.Fatalf("bad echo reply %+v", r)
	}
	// Bad IP checksum, a fragment, a bad ICMP checksum, someone else's address.
	s.Input(mk(func(ip, _ []byte) { ip[10] ^= 0xff }), 3)
	s.Input(mk(func(ip, _ []byte) {
		ip[6] = 0x20 // MF
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip[:20]))
	}), 4)
	s.Input(mk(func(_, icmp []byte) { icmp[9] ^= 1 }), 5)
	s.Input(mk(func(ip, _ []byte) {
		ip[19] = 200
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], wire.Checksum(ip[:20]))
	}), 6)
	if o := out(t, s); len(o) != 0 {
		t.Fatalf("answered bad packets: %d", len(o))
	}
	c := s.Counters()
	if c.IPBadHeader != 1 || c.IPFragmentsDropped != 1 || c.ICMPBad != 1 || c.IPNotForUs != 1 || c.ICMPEchoReplies != 1 {
		t.Fatalf("counters %+v", c)
	}
}

// TCP segments leave with DF, TTL 64 and a valid checksum; a SYN to a closed
// port is answered with RST (RFC 9293 3.10.7.1).
func TestClosedPortRST(t *testing.T) {
	s := newA(t)
	peerARP(s, 1)
	s.Input(craft(seg{sport: 999, dport: 81, seq: 100, flags: wire.FlagSYN, win: 100}), 2)
	o := out(t, s)
	if len(o) != 1 || o[0].tcp.Flags != wire.FlagRST|wire.FlagACK || o[0].tcp.Ack != 101 || o[0].tcp.Seq != 0 {
		t.Fatalf("want RST/ACK, got %+v", o)
	}
	if o[0].ip.Flags&wire.IPFlagDF == 0 || o[0].ip.TTL != 64 {
		t.Fatal("DF/TTL not set")
	}
	s.Input(craft(seg{sport: 999, dport: 81, seq: 100, ack: 555, flags: wire.FlagACK, win: 100}), 3)
	o = out(t, s)
	if len(o) != 1 || o[0].tcp.Flags != wire.FlagRST || o[0].tcp.Seq != 555 {
		t.Fatalf("want RST seq=555, got %+v", o)
	}
	s.Input(craft(seg{sport: 999, dport: 81, seq: 100, flags: wire.FlagRST}), 4)
	if len(out(t, s)) != 0 {
		t.Fatal("answered a RST")
	}
	// Corrupted checksum is dropped and counted.
	f := craft(seg{sport: 999, dport: 81, seq: 100, flags: wire.FlagSYN})
	f[len(f)-1] ^= 0x55
	s.Input(f, 5)
	if len(out(t, s)) != 0 || s.Counters().TCPBadChecksum != 1 {
		t.Fatal("bad checksum not dropped/counted")
	}
	_ = sockapi.ErrEOF
}

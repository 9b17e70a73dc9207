package wire

import (
	"encoding/binary"
	"testing"
)

// RFC 1071: checksum of the example words, and odd lengths.
func TestChecksum(t *testing.T) {
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Sum(b, 0)); got != 0xddf2 {
		t.Fatalf("sum %#x, want 0xddf2", got)
	}
	// Against a byte-at-a-time reference on many lengths.
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte(i*7 + 3)
	}
	for n := 0; n <= len(data); n++ {
		var ref uint32
		for i := 0; i+1 < n; i += 2 {
			ref += uint32(binary.BigEndian.Uint16(data[i:]))
		}
		if n%2 == 1 {
			ref += uint32(data[n-1]) << 8
		}
		for ref>>16 != 0 {
			ref = ref&0xffff + ref>>16
		}
		if got := Fold(Sum(data[:n], 0)); got != uint16(ref) {
			t.Fatalf("len %d: %#x want %#x", n, got, ref)
		}
	}
}

func TestIPv4RoundTripAndErrors(t *testing.T) {
	b := make([]byte, 40)
	PutIPv4(b, 40, 7, true, 64, ProtoTCP, [4]byte{1, 2, 3, 4}, [4]byte{5, 6, 7, 8})
	h, err := ParseIPv4(b)
	if err != nil || h.TotalLen != 40 || h.Flags != IPFlagDF || h.TTL != 64 || h.Src != [4]byte{1, 2, 3, 4} {
		t.Fatalf("%+v %v", h, err)
	}
	b[10] ^= 1
	if _, err := ParseIPv4(b); err == nil {
		t.Fatal("bad checksum accepted")
	}
	if _, err := ParseIPv4(b[:10]); err == nil {
		t.Fatal("short header accepted")
	}
}

func TestTCPOptionsRoundTrip(t *testing.T) {
	for _, o := range []TCPOptions{
		{MSS: 1460, WScale: 7, SACKPerm: true, HasTS: true, TSVal: 1, TSEcr: 2},
		{MSS: 536, WScale: -1, SACKPerm: true},
		{WScale: -1, HasTS: true, TSVal: 9, SACK: []SACKBlock{{1, 2}, {3, 4}, {5, 6}}},
		{WScale: -1, SACK: []SACKBlock{{1, 2}, {3, 4}, {5, 6}, {7, 8}}},
	} {
		n := o.Len()
		if n%4 != 0 || n > 40 {
			t.Fatalf("options length %d", n)
		}
		b := make([]byte, TCPLen+n)
		PutTCP(b, 1, 2, 3, 4, TCPLen+n, FlagACK, 100)
		if w := PutTCPOptions(b[TCPLen:], &o); w != n {
			t.Fatalf("wrote %d of %d", w, n)
		}
		h, err := ParseTCP(b)
		if err != nil {
			t.Fatal(err)
		}
		if (o.MSS != 0) != h.HasMSS || h.MSS != o.MSS || (o.WScale >= 0) != h.HasWScale || h.SACKPerm != o.SACKPerm ||
			h.HasTS != o.HasTS || h.TSVal != o.TSVal || h.TSEcr != o.TSEcr || h.NSACK != len(o.SACK) {
			t.Fatalf("round trip %+v -> %+v", o, h)
		}
		for i, s := range o.SACK {
			if h.SACK[i] != s {
				t.Fatalf("sack %d", i)
			}
		}
	}
	bad := [][]byte{{OptMSS, 3, 0}, {OptWScale, 9, 0}, {OptTimestamp, 10, 0}, {OptSACK, 7, 0, 0, 0, 0, 0}, {77}}
	for _, o := range bad {
		b := make([]byte, TCPLen+(len(o)+3)/4*4)
		PutTCP(b, 1, 2, 3, 4, len(b), 0, 0)
		copy(b[TCPLen:], o)
		if _, err := ParseTCP(b); err == nil {
			t.Fatalf("options %v accepted", o)
		}
	}
}

// FuzzParse feeds arbitrary bytes to every parser: no panics, and what
// parses re-encodes consistently.
func FuzzParse(f *testing.F) {
	seed := make([]byte, EthLen+IPv4Len+TCPLen+20)
	PutEthernet(seed, [6]byte{1}, [6]byte{2}, EtherTypeIPv4)
	PutIPv4(seed[EthLen:], IPv4Len+TCPLen+20, 1, true, 64, ProtoTCP, [4]byte{1}, [4]byte{2})
	PutTCP(seed[EthLen+IPv4Len:], 1, 2, 3, 4, TCPLen+20, FlagSYN, 1000)
	o := TCPOptions{MSS: 1460, WScale: 7, SACKPerm: true, HasTS: true}
	PutTCPOptions(seed[EthLen+IPv4Len+TCPLen:], &o)
	f.Add(seed)
	arp := make([]byte, EthLen+ARPLen)
	PutEthernet(arp, [6]byte{1}, [6]byte{2}, EtherTypeARP)
	PutARP(arp[EthLen:], ARP{Op: 1})
	f.Add(arp)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEthernet(b)
		if err != nil {
			return
		}
		p := b[EthLen:]
		switch e.EtherType {
		case EtherTypeARP:
			if a, err := ParseARP(p); err == nil {
				out := make([]byte, ARPLen)
				PutARP(out, a)
				if a2, err := ParseARP(out); err != nil || a2 != a {
					t.Fatal("ARP re-encode differs")
				}
			}
		default:
			h, err := ParseIPv4(p)
			if err != nil {
				p = p[min(len(p), IPv4Len):]
			} else {
				if h.IHL > h.TotalLen || h.TotalLen > len(p) {
					t.Fatal("lengths not validated")
				}
				p = p[h.IHL:h.TotalLen]
			}
			th, err := ParseTCP(p)
			if err != nil {
				return
			}
			if th.DataOff > len(p) || th.NSACK > MaxSACKBlocks {
				t.Fatal("tcp bounds")
			}
			_ = VerifyTCP(h.Src, h.Dst, p)
		}
	})
}

package port

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// refChecksum is RFC 1071 word by word, to check the fast version against.
func refChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func TestChecksumMatchesRFC1071(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 300; n++ {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		if got, want := Checksum(b), refChecksum(b); got != want {
			t.Fatalf("len %d: Checksum %#04x, RFC 1071 %#04x", n, got, want)
		}
		for i := range b {
			b[i] = 0xff
		}
		if got, want := Checksum(b), refChecksum(b); got != want {
			t.Fatalf("len %d all ones: Checksum %#04x, RFC 1071 %#04x", n, got, want)
		}
	}
}

// tcpFrame builds an Ethernet/IPv4/TCP frame with valid checksums.
func tcpFrame(src, dst [4]byte, sport, dport uint16, seq, ack uint32, flags uint8, opts, payload []byte) []byte {
	thl := 20 + len(opts)
	f := make([]byte, 14+20+thl+len(payload))
	copy(f[0:6], []byte{2, 0, 0, 0, 0, 2})
	copy(f[6:12], []byte{2, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(f[12:], etherTypeIPv4)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+thl+len(payload)))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	ip[6] = 0x40
	ip[8] = 64
	ip[9] = protoTCP
	copy(ip[12:], src[:])
	copy(ip[16:], dst[:])
	binary.BigEndian.PutUint16(ip[10:], Checksum(ip[:20]))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], sport)
	binary.BigEndian.PutUint16(tcp[2:], dport)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = byte(thl/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], opts)
	copy(tcp[thl:], payload)
	c := ^csumFold(csumAdd(pseudoSum(src[:], dst[:], protoTCP, thl+len(payload)), tcp))
	binary.BigEndian.PutUint16(tcp[16:], c)
	return f
}

// validTCP reports whether an IPv4/TCP frame's two checksums verify.
func validTCP(t *testing.T, f []byte) bool {
	t.Helper()
	p, err := parseIPv4(f)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if Checksum(p.ipHdr) != 0 {
		return false
	}
	return ^csumFold(csumAdd(pseudoSum(p.src, p.dst, protoTCP, p.l4len), p.l4full)) == 0
}

func TestSegmentTCPv4(t *testing.T) {
	payload := make([]byte, 10000)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	f := tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 80, 5555, 0xfffff000, 1, 0x18|0x01|0x80, nil, payload)
	segs, err := SegmentTCPv4(f, 1448)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 7 {
		t.Fatalf("%d segments, want 7", len(segs))
	}
	var got []byte
	for i, s := range segs {
		if !validTCP(t, s) {
			t.Fatalf("segment %d: bad checksum", i)
		}
		p, _ := parseIPv4(s)
		seq := binary.BigEndian.Uint32(p.l4full[4:])
		if want := uint32(0xfffff000) + uint32(i*1448); seq != want {
			t.Fatalf("segment %d: seq %#x, want %#x (wraps)", i, seq, want)
		}
		flags := p.l4full[13]
		last := i == len(segs)-1
		if (flags&0x01 != 0) != last || (flags&0x08 != 0) != last || (flags&0x80 != 0) != (i == 0) {
			t.Fatalf("segment %d: flags %#x", i, flags)
		}
		got = append(got, p.l4full[p.thl:]...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatal("reassembled payload differs")
	}
	if _, err := SegmentTCPv4(f[:40], 1448); err == nil {
		t.Fatal("truncated frame accepted")
	}
}

func TestNormaliseCompletesPartialChecksum(t *testing.T) {
	payload := bytes.Repeat([]byte("abc"), 700)
	f := tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 80, 5555, 1, 1, 0x10, nil, payload)
	want := append([]byte(nil), f...)
	// Make it look like the kernel's CHECKSUM_PARTIAL: the field holds the
	// folded pseudo-header sum.
	p, _ := parseIPv4(f)
	binary.BigEndian.PutUint16(p.l4full[16:], csumFold(pseudoSum(p.src, p.dst, protoTCP, p.l4len)))
	raw := make([]byte, VnetHdrLen+len(f))
	vnetHdr{flags: vnetNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: 1448, hdrLen: 54, csumStart: 34, csumOffset: 16}.encode(raw)
	copy(raw[VnetHdrLen:], f)
	got, gso, err := Normalise(raw)
	if err != nil {
		t.Fatal(err)
	}
	if gso != 1448 {
		t.Fatalf("gso %d, want 1448", gso)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("completed frame differs from one checksummed in full")
	}
	// DATA_VALID with a stale checksum: recomputed.
	binary.BigEndian.PutUint16(raw[VnetHdrLen+14+20+16:], 0xdead)
	vnetHdr{flags: vnetDataValid}.encode(raw)
	got, _, err = Normalise(raw)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("DATA_VALID frame not repaired (err %v)", err)
	}
	// Out-of-range checksum position is refused with a reason.
	vnetHdr{flags: vnetNeedsCsum, csumStart: 9000, csumOffset: 16}.encode(raw)
	if _, _, err := Normalise(raw); err == nil {
		t.Fatal("checksum offset outside the frame accepted")
	}
}

func TestTxHeaderLeavesFrameAlone(t *testing.T) {
	f := tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 80, 5555, 1, 1, 0x10, nil, make([]byte, 5000))
	orig := append([]byte(nil), f...)
	var vh [VnetHdrLen]byte
	var scratch [256]byte
	hdrs, err := txHeader(vh[:], scratch[:], Frame{Data: f, GSO: 1448})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(f, orig) {
		t.Fatal("txHeader modified the machine's frame")
	}
	h := decodeVnetHdr(vh[:])
	if h.gsoType != vnetGSOTCPv4 || h.gsoSize != 1448 || h.csumStart != 34 || h.csumOffset != 16 || h.hdrLen != 54 || len(hdrs) != 54 {
		t.Fatalf("header %+v, %d header bytes", h, len(hdrs))
	}
	// The kernel finishes the checksum by summing from csum_start: doing that
	// here must give the full checksum.
	full := append(append([]byte(nil), hdrs...), f[54:]...)
	c := ^csumFold(csumAdd(0, full[34:]))
	binary.BigEndian.PutUint16(full[34+16:], c)
	if !validTCP(t, full) {
		t.Fatal("pseudo-header seed does not complete to a valid checksum")
	}
}

func FuzzNormalise(f *testing.F) {
	seed := tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 80, 5555, 1, 1, 0x10, nil, []byte("hello"))
	raw := make([]byte, VnetHdrLen+len(seed))
	copy(raw[VnetHdrLen:], seed)
	f.Add(raw)
	raw2 := append([]byte(nil), raw...)
	vnetHdr{flags: vnetNeedsCsum, gsoType: vnetGSOTCPv4, gsoSize: 3, csumStart: 34, csumOffset: 16}.encode(raw2)
	f.Add(raw2)
	raw3 := append([]byte(nil), raw...)
	vnetHdr{flags: vnetDataValid}.encode(raw3)
	f.Add(raw3)
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, raw []byte) {
		frame, gso, err := Normalise(raw)
		if err != nil {
			return
		}
		if len(frame) != len(raw)-VnetHdrLen {
			t.Fatalf("frame of %d bytes from %d", len(frame), len(raw))
		}
		if gso != 0 {
			if segs, err := SegmentTCPv4(frame, int(gso)); err == nil {
				for _, s := range segs {
					if !validTCP(t, s) {
						t.Fatal("segment with a bad checksum")
					}
				}
			}
		}
	})
}

func FuzzSegmentTCPv4(f *testing.F) {
	f.Add(tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 80, 5555, 1, 1, 0x19, nil, make([]byte, 3000)), uint16(1000))
	f.Add(tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 80, 5555, 1, 1, 0x02, []byte{2, 4, 5, 180}, nil), uint16(1))
	f.Fuzz(func(t *testing.T, frame []byte, mss uint16) {
		segs, err := SegmentTCPv4(frame, int(mss))
		if err != nil {
			return
		}
		p, _ := parseIPv4(frame)
		total := 0
		for _, s := range segs {
			if !validTCP(t, s) {
				t.Fatal("segment with a bad checksum")
			}
			q, _ := parseIPv4(s)
			if n := q.l4len - q.thl; n > int(mss) {
				t.Fatalf("segment carries %d > mss %d", n, mss)
			}
			total += q.l4len - q.thl
		}
		if total != p.l4len-p.thl {
			t.Fatalf("segments carry %d of %d bytes", total, p.l4len-p.thl)
		}
	})
}

func TestTxHeaderPartialChecksum(t *testing.T) {
	f := tcpFrame([4]byte{10, 0, 0, 1}, [4]byte{10, 0, 0, 2}, 80, 5555, 1, 1, 0x10, nil, []byte("xyz"))
	var vh [VnetHdrLen]byte
	var scratch [256]byte
	hdrs, err := txHeader(vh[:], scratch[:], Frame{Data: f, PartialCsum: true})
	if err != nil || hdrs != nil {
		t.Fatalf("hdrs %v err %v", hdrs, err)
	}
	if h := decodeVnetHdr(vh[:]); h.flags != vnetNeedsCsum || h.csumStart != 34 || h.csumOffset != 16 || h.gsoType != 0 {
		t.Fatalf("header %+v", h)
	}
	// A non-TCP frame marked partial goes out untouched, without a flag.
	arp := make([]byte, 42)
	arp[12], arp[13] = 0x08, 0x06
	if _, err := txHeader(vh[:], scratch[:], Frame{Data: arp, PartialCsum: true}); err != nil {
		t.Fatal(err)
	}
	if vh != [VnetHdrLen]byte{} {
		t.Fatalf("ARP frame got header %x", vh)
	}
}

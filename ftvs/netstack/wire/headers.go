package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// EtherTypes and protocol numbers the stack knows.
const (
	EtherTypeIPv4 = 0x0800
	EtherTypeARP  = 0x0806

	ProtoICMP = 1
	ProtoTCP  = 6
	ProtoUDP  = 17

	EthLen  = 14
	ARPLen  = 28
	IPv4Len = 20
	TCPLen  = 20
)

// TCP flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagURG = 0x20
	FlagECE = 0x40
	FlagCWR = 0x80
)

// ErrShort is wrapped by every parse error caused by a truncated header.
var ErrShort = errors.New("truncated")

// Ethernet is a parsed Ethernet II header.
type Ethernet struct {
	Dst, Src  [6]byte
	EtherType uint16
}

// ParseEthernet reads the Ethernet II header; the payload starts at EthLen.
func ParseEthernet(b []byte) (Ethernet, error) {
	var e Ethernet
	if len(b) < EthLen {
		return e, fmt.Errorf("ethernet header: %d bytes: %w", len(b), ErrShort)
	}
	copy(e.Dst[:], b[0:6])
	copy(e.Src[:], b[6:12])
	e.EtherType = binary.BigEndian.Uint16(b[12:14])
	return e, nil
}

// PutEthernet writes an Ethernet II header into b[:EthLen].
func PutEthernet(b []byte, dst, src [6]byte, etherType uint16) {
	copy(b[0:6], dst[:])
	copy(b[6:12], src[:])
	binary.BigEndian.PutUint16(b[12:14], etherType)
}

// ARP is a parsed Ethernet/IPv4 ARP packet.
type ARP struct {
	Op       uint16 // 1 request, 2 reply
	SenderHW [6]byte
	SenderIP [4]byte
	TargetHW [6]byte
	TargetIP [4]byte
}

// ParseARP reads an Ethernet/IPv4 ARP packet (RFC 826).
func ParseARP(b []byte) (ARP, error) {
	var a ARP
	if len(b) < ARPLen {
		return a, fmt.Errorf("arp: %d bytes: %w", len(b), ErrShort)
	}
	if binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != EtherTypeIPv4 || b[4] != 6 || b[5] != 4 {
		return a, fmt.Errorf("arp: hardware/protocol type %x/%x len %d/%d is not Ethernet/IPv4",
			binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4]), b[4], b[5])
	}
	a.Op = binary.BigEndian.Uint16(b[6:8])
	copy(a.SenderHW[:], b[8:14])
	copy(a.SenderIP[:], b[14:18])
	copy(a.TargetHW[:], b[18:24])
	copy(a.TargetIP[:], b[24:28])
	return a, nil
}

// PutARP writes an ARP packet into b[:ARPLen].
func PutARP(b []byte, a ARP) {
	binary.BigEndian.PutUint16(b[0:2], 1)
	binary.BigEndian.PutUint16(b[2:4], EtherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:8], a.Op)
	copy(b[8:14], a.SenderHW[:])
	copy(b[14:18], a.SenderIP[:])
	copy(b[18:24], a.TargetHW[:])
	copy(b[24:28], a.TargetIP[:])
}

// IPv4 is a parsed IPv4 header.
type IPv4 struct {
	IHL      int // header length in bytes
	TOS      uint8
	TotalLen int
	ID       uint16
	Flags    uint8  // top 3 bits of the fragment word: 0x2 DF, 0x1 MF
	FragOff  uint16 // in 8-byte units
	TTL      uint8
	Proto    uint8
	Src, Dst [4]byte
}

// DF and MF flag bits of IPv4.Flags.
const (
	IPFlagDF = 0x2
	IPFlagMF = 0x1
)

// IsFragment reports whether the datagram is a piece of a larger one.
func (h IPv4) IsFragment() bool { return h.Flags&IPFlagMF != 0 || h.FragOff != 0 }

// ParseIPv4 reads and validates an IPv4 header: version, lengths and the
// header checksum. The payload is b[IHL:TotalLen].
func ParseIPv4(b []byte) (IPv4, error) {
	var h IPv4
	if len(b) < IPv4Len {
		return h, fmt.Errorf("ipv4 header: %d bytes: %w", len(b), ErrShort)
	}
	if v := b[0] >> 4; v != 4 {
		return h, fmt.Errorf("ipv4 header: version %d", v)
	}
	h.IHL = int(b[0]&0xf) * 4
	if h.IHL < IPv4Len || h.IHL > len(b) {
		return h, fmt.Errorf("ipv4 header: IHL %d bytes with %d available", h.IHL, len(b))
	}
	h.TOS = b[1]
	h.TotalLen = int(binary.BigEndian.Uint16(b[2:4]))
	if h.TotalLen < h.IHL || h.TotalLen > len(b) {
		return h, fmt.Errorf("ipv4 header: total length %d with header %d and %d bytes available", h.TotalLen, h.IHL, len(b))
	}
	if Checksum(b[:h.IHL]) != 0 {
		return h, fmt.Errorf("ipv4 header: bad checksum %#04x", binary.BigEndian.Uint16(b[10:12]))
	}
	h.ID = binary.BigEndian.Uint16(b[4:6])
	fw := binary.BigEndian.Uint16(b[6:8])
	h.Flags = uint8(fw >> 13)
	h.FragOff = fw & 0x1fff
	h.TTL = b[8]
	h.Proto = b[9]
	copy(h.Src[:], b[12:16])
	copy(h.Dst[:], b[16:20])
	return h, nil
}

// PutIPv4 writes a 20-byte IPv4 header (no options) with its checksum.
func PutIPv4(b []byte, totalLen int, id uint16, df bool, ttl, proto uint8, src, dst [4]byte) {
	b[0] = 0x45
	b[1] = 0
	binary.BigEndian.PutUint16(b[2:4], uint16(totalLen))
	binary.BigEndian.PutUint16(b[4:6], id)
	var fw uint16
	if df {
		fw = IPFlagDF << 13
	}
	binary.BigEndian.PutUint16(b[6:8], fw)
	b[8] = ttl
	b[9] = proto
	b[10], b[11] = 0, 0
	copy(b[12:16], src[:])
	copy(b[16:20], dst[:])
	binary.BigEndian.PutUint16(b[10:12], Checksum(b[:IPv4Len]))
}

// TCP option kinds.
const (
	OptEnd       = 0
	OptNOP       = 1
	OptMSS       = 2
	OptWScale    = 3
	OptSACKPerm  = 4
	OptSACK      = 5
	OptTimestamp = 8
)

// MaxSACKBlocks is the most SACK blocks an option can carry.
const MaxSACKBlocks = 4

// SACKBlock is one [Left, Right) range of received sequence space.
type SACKBlock struct{ Left, Right uint32 }

// TCP is a parsed TCP header with its options.
type TCP struct {
	SrcPort, DstPort uint16
	Seq, Ack         uint32
	DataOff          int // header length in bytes
	Flags            uint8
	Window           uint16
	Urgent           uint16

	HasMSS    bool
	MSS       uint16
	HasWScale bool
	WScale    uint8
	SACKPerm  bool
	HasTS     bool
	TSVal     uint32
	TSEcr     uint32
	NSACK     int
	SACK      [MaxSACKBlocks]SACKBlock
}

// ParseTCP reads a TCP header and options from a segment (header+payload).
// It does not check the checksum (see VerifyTCP).
func ParseTCP(b []byte) (TCP, error) {
	var t TCP
	if len(b) < TCPLen {
		return t, fmt.Errorf("tcp header: %d bytes: %w", len(b), ErrShort)
	}
	t.SrcPort = binary.BigEndian.Uint16(b[0:2])
	t.DstPort = binary.BigEndian.Uint16(b[2:4])
	t.Seq = binary.BigEndian.Uint32(b[4:8])
	t.Ack = binary.BigEndian.Uint32(b[8:12])
	t.DataOff = int(b[12]>>4) * 4
	if t.DataOff < TCPLen || t.DataOff > len(b) {
		return t, fmt.Errorf("tcp header: data offset %d with %d bytes available", t.DataOff, len(b))
	}
	t.Flags = b[13]
	t.Window = binary.BigEndian.Uint16(b[14:16])
	t.Urgent = binary.BigEndian.Uint16(b[18:20])
	if err := parseOptions(&t, b[TCPLen:t.DataOff]); err != nil {
		return t, err
	}
	return t, nil
}

func parseOptions(t *TCP, o []byte) error {
	for i := 0; i < len(o); {
		kind := o[i]
		if kind == OptEnd {
			return nil
		}
		if kind == OptNOP {
			i++
			continue
		}
		if i+1 >= len(o) {
			return fmt.Errorf("tcp option %d at %d: missing length", kind, i)
		}
		l := int(o[i+1])
		if l < 2 || i+l > len(o) {
			return fmt.Errorf("tcp option %d at %d: length %d does not fit %d bytes", kind, i, l, len(o)-i)
		}
		body := o[i+2 : i+l]
		switch kind {
		case OptMSS:
			if l != 4 {
				return fmt.Errorf("tcp option MSS: length %d, want 4", l)
			}
			t.HasMSS, t.MSS = true, binary.BigEndian.Uint16(body)
		case OptWScale:
			if l != 3 {
				return fmt.Errorf("tcp option window scale: length %d, want 3", l)
			}
			t.HasWScale, t.WScale = true, body[0]
		case OptSACKPerm:
			if l != 2 {
				return fmt.Errorf("tcp option SACK-permitted: length %d, want 2", l)
			}
			t.SACKPerm = true
		case OptTimestamp:
			if l != 10 {
				return fmt.Errorf("tcp option timestamps: length %d, want 10", l)
			}
			t.HasTS = true
			t.TSVal = binary.BigEndian.Uint32(body)
			t.TSEcr = binary.BigEndian.Uint32(body[4:])
		case OptSACK:
			if (l-2)%8 != 0 || l == 2 {
				return fmt.Errorf("tcp option SACK: length %d is not 2+8n", l)
			}
			for j := 0; j+8 <= len(body) && t.NSACK < MaxSACKBlocks; j += 8 {
				t.SACK[t.NSACK] = SACKBlock{binary.BigEndian.Uint32(body[j:]), binary.BigEndian.Uint32(body[j+4:])}
				t.NSACK++
			}
		}
		i += l
	}
	return nil
}

// VerifyTCP checks the TCP checksum of segment (header+payload) against the pseudo-header.
func VerifyTCP(src, dst [4]byte, segment []byte) bool {
	return Fold(Sum(segment, PseudoSum(src, dst, ProtoTCP, len(segment)))) == 0xffff
}

// TCPOptions describes the options to write into an outgoing segment.
type TCPOptions struct {
	MSS      uint16 // 0: none
	WScale   int    // <0: none
	SACKPerm bool
	HasTS    bool
	TSVal    uint32
	TSEcr    uint32
	SACK     []SACKBlock
}

// Len is the encoded length of the options, padded to 4 bytes.
func (o *TCPOptions) Len() int {
	n := 0
	if o.MSS != 0 {
		n += 4
	}
	if o.WScale >= 0 {
		n += 4 // NOP + 3
	}
	if o.HasTS {
		n += 12 // NOP NOP + 10 (or SACKPerm + 10 in SYNs)
	} else if o.SACKPerm {
		n += 4
	}
	if len(o.SACK) > 0 {
		n += 4 + 8*len(o.SACK)
	}
	return n
}

// PutTCPOptions writes the options into b (len(b) >= o.Len()) in the layout
// Linux uses, so segments look familiar in captures.
func PutTCPOptions(b []byte, o *TCPOptions) int {
	i := 0
	if o.MSS != 0 {
		b[0], b[1] = OptMSS, 4
		binary.BigEndian.PutUint16(b[2:4], o.MSS)
		i = 4
	}
	if o.HasTS {
		if o.SACKPerm {
			b[i], b[i+1] = OptSACKPerm, 2
		} else {
			b[i], b[i+1] = OptNOP, OptNOP
		}
		b[i+2], b[i+3] = OptTimestamp, 10
		binary.BigEndian.PutUint32(b[i+4:], o.TSVal)
		binary.BigEndian.PutUint32(b[i+8:], o.TSEcr)
		i += 12
	} else if o.SACKPerm {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptNOP, OptSACKPerm, 2
		i += 4
	}
	if o.WScale >= 0 {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptWScale, 3, uint8(o.WScale)
		i += 4
	}
	if len(o.SACK) > 0 {
		b[i], b[i+1], b[i+2], b[i+3] = OptNOP, OptNOP, OptSACK, uint8(2+8*len(o.SACK))
		i += 4
		for _, s := range o.SACK {
			binary.BigEndian.PutUint32(b[i:], s.Left)
			binary.BigEndian.PutUint32(b[i+4:], s.Right)
			i += 8
		}
	}
	return i
}

// PutTCP writes a TCP header (without options; hdrLen includes them) and
// leaves the checksum field zero.
func PutTCP(b []byte, srcPort, dstPort uint16, seq, ack uint32, hdrLen int, flags uint8, window uint16) {
	binary.BigEndian.PutUint16(b[0:2], srcPort)
	binary.BigEndian.PutUint16(b[2:4], dstPort)
	binary.BigEndian.PutUint32(b[4:8], seq)
	binary.BigEndian.PutUint32(b[8:12], ack)
	b[12] = uint8(hdrLen/4) << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:16], window)
	b[16], b[17], b[18], b[19] = 0, 0, 0, 0
}

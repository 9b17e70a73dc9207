package port

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	ethHdrLen     = 14
	etherTypeIPv4 = 0x0800
	protoTCP      = 6
	protoUDP      = 17
)

// ipv4 locates the IPv4 header and transport payload of an Ethernet frame.
type ipv4 struct {
	ihl    int // IP header length in bytes
	total  int // IP total length (header + transport)
	proto  uint8
	l4     int // offset of the transport header in the frame
	l4len  int
	src    []byte
	dst    []byte
	ipHdr  []byte
	frame  []byte
	thl    int // TCP header length, when proto is TCP
	l4full []byte
}

var errNotIPv4 = errors.New("not an IPv4 frame")

// parseIPv4 parses the Ethernet and IPv4 headers of frame (and the TCP data
// offset when the protocol is TCP). Frames of other types give errNotIPv4.
func parseIPv4(frame []byte) (ipv4, error) {
	var p ipv4
	if len(frame) < ethHdrLen {
		return p, fmt.Errorf("frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	if binary.BigEndian.Uint16(frame[12:]) != etherTypeIPv4 {
		return p, errNotIPv4
	}
	ip := frame[ethHdrLen:]
	if len(ip) < 20 {
		return p, fmt.Errorf("IPv4 header: %d bytes, want at least 20", len(ip))
	}
	if ip[0]>>4 != 4 {
		return p, fmt.Errorf("IPv4 header: version %d", ip[0]>>4)
	}
	p.ihl = int(ip[0]&0x0f) * 4
	p.total = int(binary.BigEndian.Uint16(ip[2:]))
	if p.ihl < 20 || p.total < p.ihl || p.total > len(ip) {
		return p, fmt.Errorf("IPv4 header: ihl %d, total length %d, %d bytes present", p.ihl, p.total, len(ip))
	}
	p.proto = ip[9]
	p.src, p.dst = ip[12:16], ip[16:20]
	p.ipHdr = ip[:p.ihl]
	p.l4 = ethHdrLen + p.ihl
	p.l4len = p.total - p.ihl
	p.frame = frame[:ethHdrLen+p.total]
	p.l4full = frame[p.l4 : ethHdrLen+p.total]
	if p.proto == protoTCP {
		if p.l4len < 20 {
			return p, fmt.Errorf("TCP header: %d bytes", p.l4len)
		}
		p.thl = int(p.l4full[12]>>4) * 4
		if p.thl < 20 || p.thl > p.l4len {
			return p, fmt.Errorf("TCP header: data offset %d of %d bytes", p.thl, p.l4len)
		}
	}
	return p, nil
}

// fixL4Checksum recomputes the TCP or UDP checksum of an IPv4 frame in place.
// Other frames are left alone.
func fixL4Checksum(frame []byte) error {
	p, err := parseIPv4(frame)
	if err == errNotIPv4 {
		return nil
	}
	if err != nil {
		return err
	}
	var off int
	switch p.proto {
	case protoTCP:
		off = 16
	case protoUDP:
		if p.l4len < 8 {
			return fmt.Errorf("UDP header: %d bytes", p.l4len)
		}
		off = 6
	default:
		return nil
	}
	l4 := p.l4full
	l4[off], l4[off+1] = 0, 0
	c := ^csumFold(csumAdd(pseudoSum(p.src, p.dst, p.proto, p.l4len), l4))
	if c == 0 && p.proto == protoUDP {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(l4[off:], c)
	return nil
}

// fixIPChecksum recomputes the IPv4 header checksum in place.
func fixIPChecksum(p ipv4) {
	p.ipHdr[10], p.ipHdr[11] = 0, 0
	binary.BigEndian.PutUint16(p.ipHdr[10:], Checksum(p.ipHdr))
}

// SegmentTCPv4 cuts a TCP/IPv4 super-segment into frames carrying at most mss
// payload bytes each, as a NIC doing TSO would: IP IDs count up, sequence
// numbers advance, FIN and PSH stay on the last segment only, CWR on the
// first, and both checksums are computed. A frame that needs no cutting is
// returned alone (with its checksums recomputed).
func SegmentTCPv4(frame []byte, mss int) ([][]byte, error) {
	p, err := parseIPv4(frame)
	if err != nil {
		return nil, fmt.Errorf("segment: %w", err)
	}
	if p.proto != protoTCP {
		return nil, fmt.Errorf("segment: IPv4 protocol %d is not TCP", p.proto)
	}
	if mss <= 0 {
		return nil, fmt.Errorf("segment: mss %d", mss)
	}
	hdrLen := p.l4 + p.thl
	payload := p.frame[hdrLen:]
	n := (len(payload) + mss - 1) / mss
	if n <= 1 {
		out := append([]byte(nil), p.frame...)
		q, _ := parseIPv4(out)
		fixIPChecksum(q)
		if err := fixL4Checksum(out); err != nil {
			return nil, fmt.Errorf("segment: %w", err)
		}
		return [][]byte{out}, nil
	}
	id := binary.BigEndian.Uint16(p.ipHdr[4:])
	seq := binary.BigEndian.Uint32(p.l4full[4:])
	flags := p.l4full[13]
	segs := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		chunk := payload[i*mss : min((i+1)*mss, len(payload))]
		seg := make([]byte, hdrLen+len(chunk))
		copy(seg, p.frame[:hdrLen])
		copy(seg[hdrLen:], chunk)
		ip := seg[ethHdrLen:]
		binary.BigEndian.PutUint16(ip[2:], uint16(p.ihl+p.thl+len(chunk)))
		binary.BigEndian.PutUint16(ip[4:], id+uint16(i))
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], Checksum(ip[:p.ihl]))
		tcp := seg[p.l4:]
		binary.BigEndian.PutUint32(tcp[4:], seq+uint32(i*mss))
		f := flags
		if i != n-1 {
			f &^= 0x01 | 0x08 // FIN, PSH
		}
		if i != 0 {
			f &^= 0x80 // CWR
		}
		tcp[13] = f
		tcp[16], tcp[17] = 0, 0
		l4len := p.thl + len(chunk)
		c := ^csumFold(csumAdd(pseudoSum(ip[12:16], ip[16:20], protoTCP, l4len), tcp[:l4len]))
		binary.BigEndian.PutUint16(tcp[16:], c)
		segs = append(segs, seg)
	}
	return segs, nil
}

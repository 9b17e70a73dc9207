package port

import (
	"encoding/binary"
	"fmt"
)

// VnetHdrLen is the size of struct virtio_net_hdr (without num_buffers), the
// header both PACKET_VNET_HDR and IFF_VNET_HDR put before each frame.
const VnetHdrLen = 10

// virtio_net_hdr flags and GSO types (linux/virtio_net.h).
const (
	vnetNeedsCsum = 1
	vnetDataValid = 2

	vnetGSONone  = 0
	vnetGSOTCPv4 = 1
	vnetGSOUDP   = 3
	vnetGSOTCPv6 = 4
	vnetGSOECN   = 0x80
)

// vnetHdr is struct virtio_net_hdr; its fields are in host (little-endian)
// byte order on the legacy interfaces used here.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func decodeVnetHdr(b []byte) vnetHdr {
	return vnetHdr{
		flags:      b[0],
		gsoType:    b[1],
		hdrLen:     binary.LittleEndian.Uint16(b[2:]),
		gsoSize:    binary.LittleEndian.Uint16(b[4:]),
		csumStart:  binary.LittleEndian.Uint16(b[6:]),
		csumOffset: binary.LittleEndian.Uint16(b[8:]),
	}
}

func (h vnetHdr) encode(b []byte) {
	b[0] = h.flags
	b[1] = h.gsoType
	binary.LittleEndian.PutUint16(b[2:], h.hdrLen)
	binary.LittleEndian.PutUint16(b[4:], h.gsoSize)
	binary.LittleEndian.PutUint16(b[6:], h.csumStart)
	binary.LittleEndian.PutUint16(b[8:], h.csumOffset)
}

// Normalise turns a frame read with a virtio-net header in front (raw[:10])
// into a frame with valid checksums, in place, and returns it and, for a GSO
// super-segment, its segment size (0 otherwise). A partial checksum (NEEDS_CSUM) is completed; a
// super-segment or a frame the kernel marked DATA_VALID (its checksum field
// may be stale after GRO) gets its TCP/UDP checksum recomputed.
func Normalise(raw []byte) (frame []byte, gsoSize uint16, err error) {
	if len(raw) < VnetHdrLen {
		return nil, 0, fmt.Errorf("read of %d bytes is shorter than the virtio-net header", len(raw))
	}
	h := decodeVnetHdr(raw)
	frame = raw[VnetHdrLen:]
	if len(frame) < ethHdrLen {
		return nil, 0, fmt.Errorf("frame of %d bytes is shorter than an Ethernet header", len(frame))
	}
	gso := h.gsoType&^vnetGSOECN != vnetGSONone
	switch {
	case h.flags&vnetNeedsCsum != 0:
		start, off := int(h.csumStart), int(h.csumOffset)
		if start > len(frame) || off+2 > len(frame)-start {
			return nil, 0, fmt.Errorf("virtio-net header: checksum at %d+%d outside a %d-byte frame", start, off, len(frame))
		}
		// The field holds the pseudo-header sum; summing over it completes it.
		c := ^csumFold(csumAdd(0, frame[start:]))
		if c == 0 && off == 6 { // UDP sends zero as all ones
			c = 0xffff
		}
		binary.BigEndian.PutUint16(frame[start+off:], c)
	case gso || h.flags&vnetDataValid != 0:
		if err := fixL4Checksum(frame); err != nil {
			return nil, 0, fmt.Errorf("virtio-net frame: %w", err)
		}
	}
	if gso {
		// A super-segment must be an IPv4 datagram whose length says so
		// (BIG TCP's zero length is refused: the machine speaks 64 KiB).
		if _, err := parseIPv4(frame); err != nil {
			return nil, 0, fmt.Errorf("GSO frame: %w", err)
		}
	}
	if gso {
		gsoSize = max(h.gsoSize, 1)
	}
	return frame, gsoSize, nil
}

// txHeader builds the virtio-net header and a private copy of the headers of
// an outgoing frame. For a GSO frame the TCP checksum field of the copy holds
// the pseudo-header sum and NEEDS_CSUM asks the kernel to finish it per
// segment, as a virtio guest does; the caller writes hdrs then
// f.Data[len(hdrs):]. hdrs is nil for an ordinary frame.
func txHeader(vh []byte, scratch []byte, f Frame) (hdrs []byte, err error) {
	clear(vh[:VnetHdrLen])
	if f.GSO == 0 && !f.PartialCsum {
		return nil, nil
	}
	p, err := parseIPv4(f.Data)
	if f.GSO == 0 {
		if err == nil && p.proto == protoTCP {
			// The field already holds the pseudo-header sum.
			vnetHdr{flags: vnetNeedsCsum, csumStart: uint16(p.l4), csumOffset: 16}.encode(vh)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("GSO output frame: %w", err)
	}
	if p.proto != protoTCP {
		return nil, fmt.Errorf("GSO output frame: IPv4 protocol %d is not TCP", p.proto)
	}
	hl := p.l4 + p.thl
	if len(scratch) < hl {
		return nil, fmt.Errorf("GSO output frame: %d header bytes", hl)
	}
	hdrs = scratch[:hl]
	copy(hdrs, f.Data[:hl])
	ps := csumFold(pseudoSum(p.src, p.dst, protoTCP, p.l4len))
	binary.BigEndian.PutUint16(hdrs[p.l4+16:], ps)
	vnetHdr{
		flags:      vnetNeedsCsum,
		gsoType:    vnetGSOTCPv4,
		hdrLen:     uint16(hl),
		gsoSize:    f.GSO,
		csumStart:  uint16(p.l4),
		csumOffset: 16,
	}.encode(vh)
	return hdrs, nil
}

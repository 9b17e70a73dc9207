// Package port moves Ethernet frames between a Linux network interface and the
// solo or lockstep shell: AF_PACKET on an existing interface, or a TAP device.
// Both use the virtio-net header so one read can bring a 64 KiB TCP
// super-segment (GSO) and one write can hand the kernel a 64 KiB TSO frame
// that the kernel (or the NIC) cuts into wire segments.
//
// Frames handed to the caller are normalised: the virtio header is gone and
// every partial checksum is completed, so the deterministic machine only ever
// sees frames whose checksums are valid.
package port

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
)

// Kind names a frame I/O method.
type Kind string

const (
	// AFPacket reads and writes on an existing interface through a
	// promiscuous AF_PACKET socket with PACKET_VNET_HDR.
	AFPacket Kind = "afpacket"
	// TAP attaches to (or creates) a TAP device with IFF_VNET_HDR and
	// TSO/checksum offloads enabled.
	TAP Kind = "tap"
)

// Default is the kind `ftvs vs run` uses when --port is not given; see
// README.md for the measurement behind the choice.
const Default = AFPacket

// MaxFrame is the largest frame a read can return: a 64 KiB IPv4 datagram
// plus its Ethernet header, and some room for VLAN tags.
const MaxFrame = 65535 + 14 + 8

// Config says which interface to open and which frames to accept.
type Config struct {
	Kind  Kind
	Iface string
	// MAC is the virtual server's MAC: only frames to it, to broadcast or to
	// multicast addresses are delivered.
	MAC net.HardwareAddr
}

// Frame is one outgoing frame. GSO != 0 marks a TCP/IPv4 super-segment to be
// cut into GSO-byte payload segments. PartialCsum says that a TCP/IPv4
// frame's checksum field holds only the pseudo-header sum (the machine's
// checksum offload): the kernel, or the NIC, or the receiving host completes
// it. A frame's Data is never modified.
type Frame struct {
	Data        []byte
	GSO         uint16
	PartialCsum bool
}

// Stats counts what a port did; every dropped frame is counted once.
type Stats struct {
	RxFrames, RxBytes, RxGSO uint64
	TxFrames, TxBytes, TxGSO uint64
	// RxDropFilter: frames for another MAC (TAP only; AF_PACKET filters in BPF).
	RxDropFilter uint64
	// RxDropBad: frames whose virtio header or checksum fields did not parse.
	RxDropBad uint64
	// TxErrors: writes the kernel refused (e.g. while the link is down).
	TxErrors uint64
	// LinkDown: times the interface was reported down.
	LinkDown uint64
}

// Port is an open frame I/O endpoint. One goroutine may Read while another
// Writes (the lockstep runtime reads inputs and commits outputs apart);
// Stats and Close may be called from any goroutine.
type Port interface {
	// FD is the descriptor to poll for readability.
	FD() int
	// Read fills bufs[i] (each MaxFrame+VnetHdrLen bytes or more; a frame that
	// fills its buffer counts as cut short and is dropped) with frames
	// without blocking and returns the frames read, as sub-slices of bufs. It
	// returns (0, nil) when nothing is pending.
	Read(bufs [][]byte, out [][]byte) (int, error)
	// Write sends frames in order; a frame the kernel refuses is counted in
	// Stats.TxErrors and skipped. Write blocks only while the kernel's queue
	// is full.
	Write(frames []Frame) error
	Stats() Stats
	Close() error
}

// ErrClosed is returned by a port used after Close.
var ErrClosed = errors.New("port closed")

// Open opens a port of cfg.Kind.
func Open(cfg Config) (Port, error) {
	if len(cfg.MAC) != 6 {
		return nil, fmt.Errorf("port: MAC %q: want 6 bytes", cfg.MAC)
	}
	if cfg.Iface == "" {
		return nil, errors.New("port: no interface named")
	}
	switch cfg.Kind {
	case AFPacket, "":
		return openAFPacket(cfg)
	case TAP:
		return openTAP(cfg)
	default:
		return nil, fmt.Errorf("port: unknown kind %q (want %q or %q)", cfg.Kind, AFPacket, TAP)
	}
}

// wanted reports whether a frame's destination is the VS MAC, broadcast or
// multicast.
func wanted(frame []byte, mac net.HardwareAddr) bool {
	if len(frame) < 14 {
		return false
	}
	if frame[0]&1 != 0 {
		return true
	}
	return string(frame[:6]) == string(mac)
}

// counters are a port's Stats, updated atomically so that Stats may be read
// from any goroutine while one goroutine reads and another writes.
type counters struct {
	RxFrames     atomic.Uint64
	RxBytes      atomic.Uint64
	RxGSO        atomic.Uint64
	TxFrames     atomic.Uint64
	TxBytes      atomic.Uint64
	TxGSO        atomic.Uint64
	RxDropFilter atomic.Uint64
	RxDropBad    atomic.Uint64
	TxErrors     atomic.Uint64
	LinkDown     atomic.Uint64
}

func (c *counters) snapshot() Stats {
	return Stats{
		RxFrames:     c.RxFrames.Load(),
		RxBytes:      c.RxBytes.Load(),
		RxGSO:        c.RxGSO.Load(),
		TxFrames:     c.TxFrames.Load(),
		TxBytes:      c.TxBytes.Load(),
		TxGSO:        c.TxGSO.Load(),
		RxDropFilter: c.RxDropFilter.Load(),
		RxDropBad:    c.RxDropBad.Load(),
		TxErrors:     c.TxErrors.Load(),
		LinkDown:     c.LinkDown.Load(),
	}
}

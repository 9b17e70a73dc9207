package vsrun

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"

	"github.com/ftvs/ftvs/ftvs/dirstore"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
	httpsvc "github.com/ftvs/ftvs/ftvs/services/http"
)

// SoloConfig is everything `ftvs vs run` needs.
type SoloConfig struct {
	Iface     string
	PortKind  port.Kind
	MAC       [6]byte
	IP        [4]byte
	PrefixLen int
	Gateway   [4]byte
	Root      string // directory the HTTP service serves
	HTTPPort  uint16 // 0: 80
	MTU       int    // 0: the interface's MTU
	// ISNKey keys the RFC 6528 ISN hash; all zero: a random key is drawn.
	ISNKey [16]byte
	Batch  int
	// SoftChecksum makes the machine compute every TCP checksum itself
	// instead of leaving it to the kernel (checksum offload, the default).
	SoftChecksum bool
	Record       func(machine.Input) error
	Event        func(seq uint64, text string)
}

// TSOMax is the most TCP payload one super-segment may carry: with
// Ethernet, IPv4 and TCP headers at their largest (14+60+60) the frame stays
// under the kernel's default GSO limit of 64 KiB (veth, TAP, most NICs) and
// the datagram under IPv4's 16-bit length.
const TSOMax = 65535 - 100

// Solo is an opened solo virtual server: its port, store, machine and driver.
type Solo struct {
	Port    port.Port
	Store   *dirstore.Store
	Machine *machine.Machine
	Driver  *Driver
	Config  machine.Config
}

// Open opens the port (in the calling thread's network namespace), the file
// store and a fresh machine.
func Open(c SoloConfig) (*Solo, error) {
	if c.Root == "" {
		return nil, errors.New("no content directory (--root) given")
	}
	store, err := dirstore.New(c.Root, 0)
	if err != nil {
		return nil, err
	}
	mtu := c.MTU
	if mtu == 0 {
		ifi, err := net.InterfaceByName(c.Iface)
		if err != nil && c.PortKind != port.TAP {
			store.Close()
			return nil, fmt.Errorf("interface %q: %w", c.Iface, err)
		}
		mtu = 1500
		if err == nil && ifi.MTU > 0 {
			mtu = ifi.MTU
		}
	}
	key := c.ISNKey
	if key == [16]byte{} {
		// The shell may draw randomness; the machine keeps the key in its
		// state so replicas built from a snapshot agree.
		if _, err := rand.Read(key[:]); err != nil {
			store.Close()
			return nil, fmt.Errorf("draw ISN key: %w", err)
		}
	}
	mcfg := machine.Config{
		MAC: c.MAC, IP: c.IP, PrefixLen: c.PrefixLen, Gateway: c.Gateway,
		MTU: mtu, TSOMax: TSOMax, ISNKey: key, ChecksumOffload: !c.SoftChecksum,
		HTTP: machine.HTTPConfig{Enabled: true, Config: httpsvc.Config{Port: c.HTTPPort}},
	}
	m, err := machine.New(mcfg, store)
	if err != nil {
		store.Close()
		return nil, err
	}
	p, err := port.Open(port.Config{Kind: c.PortKind, Iface: c.Iface, MAC: net.HardwareAddr(c.MAC[:])})
	if err != nil {
		store.Close()
		return nil, err
	}
	d, err := New(Config{Port: p, Machine: m, Batch: c.Batch, Record: c.Record, Event: c.Event, PartialCsum: mcfg.ChecksumOffload})
	if err != nil {
		p.Close()
		store.Close()
		return nil, err
	}
	return &Solo{Port: p, Store: store, Machine: m, Driver: d, Config: mcfg}, nil
}

// Run drives the VS until ctx is done. It first announces the VS with a
// gratuitous ARP so neighbours learn where it is.
func (s *Solo) Run(ctx context.Context) error {
	return s.Driver.RunWith(ctx, machine.GratuitousARPCommand())
}

// Close releases the port and the store.
func (s *Solo) Close() error {
	return errors.Join(s.Port.Close(), s.Store.Close())
}

package beacon

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ftvs/ftvs/installer/host"
)

// Identity is what this node says about itself in every beacon.
type Identity struct {
	NodeID     string
	NodeNumber int // 0 = auto
	Digest     [32]byte
}

// Session holds one raw socket per NIC, each bound to its interface, all
// created in the network namespace of the thread that called Open.
type Session struct {
	ports []*port
}

type port struct {
	nic host.NIC
	fd  int
}

const ethPAll = 0x0003

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Open brings every NIC up (netlink) and opens an AF_PACKET socket on each
// that sees all its traffic. The caller must Close the session.
func Open(nics []host.NIC) (*Session, error) {
	s := &Session{}
	for _, n := range nics {
		l, err := netlink.LinkByIndex(n.Index)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("NIC %s: %w", n.Name, err)
		}
		if l.Attrs().Flags&net.FlagUp == 0 {
			if err := netlink.LinkSetUp(l); err != nil {
				s.Close()
				return nil, fmt.Errorf("NIC %s: bring up: %w", n.Name, err)
			}
		}
		// Protocol 0 until bound, so no frame of another NIC is queued.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("NIC %s: AF_PACKET socket: %w", n.Name, err)
		}
		s.ports = append(s.ports, &port{nic: n, fd: fd})
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: n.Index}); err != nil {
			s.Close()
			return nil, fmt.Errorf("NIC %s: bind: %w", n.Name, err)
		}
		tv := unix.Timeval{Usec: 100_000}
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			s.Close()
			return nil, fmt.Errorf("NIC %s: receive timeout: %w", n.Name, err)
		}
	}
	return s, nil
}

// Close releases the sockets.
func (s *Session) Close() {
	for _, p := range s.ports {
		if p.fd >= 0 {
			unix.Close(p.fd)
			p.fd = -1
		}
	}
}

// Options of one exchange.
type Options struct {
	Duration time.Duration // listen at most this long
	Interval time.Duration // between beacons on each NIC (default 200ms)
	Key      []byte        // pair key: sign ours, require signed ones
	Roles    []RoleEntry   // our role proposal, sent in every beacon
	// UntilPeerRoles ends the exchange Linger after a proposal from the
	// peer has been heard on some NIC (it keeps sending meanwhile so the
	// peer hears ours too).
	UntilPeerRoles bool
	Linger         time.Duration
}

// Bounds on what one NIC's observation records.
const (
	maxStations = 32
	maxAddrs    = 16
)

// Heard is what one NIC heard during an exchange.
type Heard struct {
	NIC        host.NIC
	Peers      map[string]*Beacon // node ID -> last beacon heard from it
	Stations   []string           // source MACs of other stations (not beacon senders), sorted
	Frames     int                // frames received (not our own)
	OwnNode    bool               // heard this node's own beacons: a loop through a switch
	Addrs      []netip.Addr       // IPv4 senders seen (ARP, IPv4) from other stations, sorted
	BadBeacons int
	BadReason  string
	Sent       int

	beaconMACs map[string]bool
	otherMACs  map[string]bool
	addrs      map[netip.Addr]bool
}

// Observation is the result of one exchange on every NIC.
type Observation struct {
	Self Identity
	NICs []*Heard // in the session's NIC order
}

// Exchange sends beacons on every NIC and listens on all until the
// duration ends (or the peer's role proposal arrived, with UntilPeerRoles).
func (s *Session) Exchange(ctx context.Context, self Identity, o Options) (*Observation, error) {
	if o.Interval == 0 {
		o.Interval = 200 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	obs := &Observation{Self: self}
	var mu sync.Mutex // guards the Heard records and peerRolesAt
	var peerRolesAt time.Time
	var wg sync.WaitGroup
	sendErrs := make([]error, len(s.ports)) // one slot per goroutine: no sharing
	recvErrs := make([]error, len(s.ports))
	for i, p := range s.ports {
		h := &Heard{NIC: p.nic, Peers: map[string]*Beacon{}, beaconMACs: map[string]bool{}, otherMACs: map[string]bool{}, addrs: map[netip.Addr]bool{}}
		obs.NICs = append(obs.NICs, h)
		frame, err := s.frame(p, self, o)
		if err != nil {
			return nil, err
		}
		wg.Add(2)
		go func() { // sender
			defer wg.Done()
			t := time.NewTicker(o.Interval)
			defer t.Stop()
			for {
				to := &unix.SockaddrLinklayer{Ifindex: p.nic.Index, Halen: 6, Protocol: htons(EtherType)}
				copy(to.Addr[:], broadcast)
				if err := unix.Sendto(p.fd, frame, 0, to); err == nil {
					mu.Lock()
					h.Sent++
					mu.Unlock()
				} else if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.ENETDOWN) {
					sendErrs[i] = fmt.Errorf("NIC %s: send beacon: %w", p.nic.Name, err)
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
		go func() { // receiver
			defer wg.Done()
			buf := make([]byte, 2048)
			for ctx.Err() == nil {
				n, from, err := unix.Recvfrom(p.fd, buf, 0)
				if err != nil {
					if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
						continue
					}
					recvErrs[i] = fmt.Errorf("NIC %s: receive: %w", p.nic.Name, err)
					return
				}
				if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
					continue
				}
				mu.Lock()
				if h.record(buf[:n], self, o.Key) && o.UntilPeerRoles && peerRolesAt.IsZero() {
					peerRolesAt = time.Now()
					time.AfterFunc(o.Linger, cancel)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(append(sendErrs, recvErrs...)...); err != nil {
		return nil, err
	}
	for _, h := range obs.NICs {
		h.finish()
	}
	return obs, nil
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (s *Session) frame(p *port, self Identity, o Options) ([]byte, error) {
	b := &Beacon{NodeID: self.NodeID, NodeNumber: self.NodeNumber, NICMAC: p.nic.MAC, Slot: p.nic.SlotKey(),
		NICName: p.nic.Name, Digest: self.Digest, Roles: o.Roles}
	payload, err := b.Marshal(o.Key)
	if err != nil {
		return nil, fmt.Errorf("NIC %s: %w", p.nic.Name, err)
	}
	f := make([]byte, 14, 14+len(payload))
	copy(f[0:6], broadcast)
	copy(f[6:12], p.nic.MAC)
	binary.BigEndian.PutUint16(f[12:], EtherType)
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f, nil
}

// record files one received frame; it reports whether it was the first
// role proposal heard from a peer.
func (h *Heard) record(f []byte, self Identity, key []byte) bool {
	if len(f) < 14 {
		return false
	}
	h.Frames++
	src := net.HardwareAddr(f[6:12]).String()
	et := binary.BigEndian.Uint16(f[12:14])
	if et == EtherType {
		b, err := Parse(f[14:], key)
		switch {
		case errors.Is(err, ErrNotBeacon):
		case err != nil:
			h.BadBeacons++
			h.BadReason = err.Error()
			return false
		case b.NICMAC.String() != src:
			h.BadBeacons++
			h.BadReason = fmt.Sprintf("beacon from %s claims NIC MAC %s", src, b.NICMAC)
			return false
		default:
			h.beaconMACs[src] = true
			if b.NodeID == self.NodeID {
				h.OwnNode = true
				return false
			}
			prev := h.Peers[b.NodeID]
			h.Peers[b.NodeID] = b
			return len(b.Roles) > 0 && (prev == nil || len(prev.Roles) == 0)
		}
	}
	if len(h.otherMACs) < maxStations {
		h.otherMACs[src] = true
	}
	var a netip.Addr
	switch {
	case et == 0x0806 && len(f) >= 14+28:
		a, _ = netip.AddrFromSlice(f[14+14 : 14+18])
	case et == 0x0800 && len(f) >= 14+20:
		a, _ = netip.AddrFromSlice(f[14+12 : 14+16])
	}
	if a.IsValid() && !a.IsUnspecified() && len(h.addrs) < maxAddrs {
		h.addrs[a] = true
	}
	return false
}

// finish turns the sets into sorted lists; MACs that sent beacons are the
// nodes themselves, not other stations.
func (h *Heard) finish() {
	for m := range h.otherMACs {
		if !h.beaconMACs[m] {
			h.Stations = append(h.Stations, m)
		}
	}
	sort.Strings(h.Stations)
	for a := range h.addrs {
		h.Addrs = append(h.Addrs, a)
	}
	sort.Slice(h.Addrs, func(i, j int) bool { return h.Addrs[i].Less(h.Addrs[j]) })
}

// Class is what a NIC's observation says about its cabling.
type Class string

// Classes of NIC.
const (
	Crossover Class = "crossover" // hears the peer and nobody else
	Switched  Class = "switched"  // hears other stations: behind a switch
	Silent    Class = "silent"    // hears nothing (no cable, or peer not running)
	Looped    Class = "looped"    // hears this node's own beacons
)

// Classify says whether the NIC is a crossover candidate.
func (h *Heard) Classify() Class {
	switch {
	case h.OwnNode:
		return Looped
	case len(h.Stations) > 0 || len(h.Peers) > 1:
		return Switched
	case len(h.Peers) == 1:
		return Crossover
	}
	return Silent
}

// Peer returns the one peer heard on this NIC (for crossover NICs).
func (h *Heard) Peer() *Beacon {
	ids := make([]string, 0, len(h.Peers))
	for id := range h.Peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return nil
	}
	return h.Peers[ids[0]]
}

// Summary is a one-line description of what the NIC heard.
func (h *Heard) Summary() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: %s", h.NIC.Name, h.Classify())
	ids := make([]string, 0, len(h.Peers))
	for id := range h.Peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) > 0 {
		fmt.Fprintf(&b, ", nodes %v", ids)
	}
	if len(h.Stations) > 0 {
		fmt.Fprintf(&b, ", %d other station(s)", len(h.Stations))
	}
	if len(h.Addrs) > 0 {
		fmt.Fprintf(&b, ", addresses %v", h.Addrs)
	}
	if h.BadBeacons > 0 {
		fmt.Fprintf(&b, ", %d bad beacon(s): %s", h.BadBeacons, h.BadReason)
	}
	return b.String()
}

package roles

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/ftvs/ftvs/installer/beacon"
	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/host"
)

// NodeID is this node's identity: the configured name, or "ftvs-" and the
// lowest MAC of its NICs.
func NodeID(cfg *config.Config, nics []host.NIC) string {
	if cfg.Node.Name != "" {
		return cfg.Node.Name
	}
	var low net.HardwareAddr
	for _, n := range nics {
		if low == nil || bytes.Compare(n.MAC, low) < 0 {
			low = n.MAC
		}
	}
	return "ftvs-" + strings.ReplaceAll(low.String(), ":", "")
}

// NodeNumber agrees this node's number with the peer: configured numbers
// win (and must differ); otherwise the lower MAC on the first CoServer link
// is node 1. Both sides reach the same answer from what they heard.
func NodeNumber(configured int, ours net.HardwareAddr, peer *beacon.Beacon) (int, error) {
	if peer == nil {
		if configured == 0 {
			return 0, fmt.Errorf("node number is auto but no peer was heard")
		}
		return configured, nil
	}
	switch {
	case configured != 0 && peer.NodeNumber == configured:
		return 0, fmt.Errorf("both servers are configured as node %d (peer %s)", configured, peer.NodeID)
	case configured != 0:
		return configured, nil
	case peer.NodeNumber != 0:
		return 3 - peer.NodeNumber, nil
	}
	switch c := bytes.Compare(ours, peer.NICMAC); {
	case c < 0:
		return 1, nil
	case c > 0:
		return 2, nil
	}
	return 0, fmt.Errorf("the peer's CoServer link has our MAC %s", ours)
}

// Discovery is the outcome of the NIC step.
type Discovery struct {
	Proposal   *Proposal
	PeerRoles  []beacon.RoleEntry
	NodeID     string
	NodeNumber int
	Log        []string // what each NIC heard, for the console
}

// Discover runs the NIC step: bring the NICs up, exchange beacons, propose
// roles, then exchange proposals with the peer and require they agree.
// Sockets are opened in the calling thread's network namespace.
func Discover(ctx context.Context, cfg *config.Config, res *config.Resolved, digest [32]byte, key []byte, progress func(string)) (*Discovery, error) {
	d := &Discovery{NodeID: NodeID(cfg, res.NICs)}
	s, err := beacon.Open(res.NICs)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	self := beacon.Identity{NodeID: d.NodeID, NodeNumber: cfg.Node.Number, Digest: digest}
	// Listen until the peer is heard, then one more full window so every
	// NIC had a whole window with the peer sending (it may have started
	// late in ours).
	start := time.Now()
	var obs *beacon.Observation
	for heardBefore := false; ; {
		o, err := s.Exchange(ctx, self, beacon.Options{Duration: cfg.NICs.Listen, Key: key})
		if err != nil {
			return nil, err
		}
		obs = o
		heard := heardPeer(o)
		if heard && heardBefore {
			break
		}
		heardBefore = heardBefore || heard
		if !heard && time.Since(start) >= cfg.NICs.Wait {
			break
		}
		if progress != nil && !heard {
			progress(fmt.Sprintf("no peer heard yet; listening again (up to %s)", cfg.NICs.Wait))
		}
	}
	for _, h := range obs.NICs {
		d.Log = append(d.Log, h.Summary())
	}
	p, err := Propose(cfg, res, obs)
	if err != nil {
		return nil, err
	}
	d.Proposal = p
	// Second round: send our proposal until the peer's arrives, then a
	// little longer so the peer surely hears ours.
	obs2, err := s.Exchange(ctx, self, beacon.Options{Duration: 3 * cfg.NICs.Listen, Key: key,
		Roles: p.Entries(), UntilPeerRoles: true, Linger: time.Second})
	if err != nil {
		return nil, err
	}
	if p.Peer == nil {
		return nil, fmt.Errorf("no peer heard on the CoServer links")
	}
	for _, h := range obs2.NICs {
		if b := h.Peers[p.Peer.NodeID]; b != nil && len(b.Roles) > 0 {
			d.PeerRoles = b.Roles
		}
	}
	if d.PeerRoles == nil {
		return nil, fmt.Errorf("peer %s did not send its role proposal within %s", p.Peer.NodeID, 3*cfg.NICs.Listen)
	}
	if err := Compare(p.Entries(), d.PeerRoles); err != nil {
		return nil, err
	}
	n, err := NodeNumber(cfg.Node.Number, p.CoServer()[0].MAC, p.Peer)
	if err != nil {
		return nil, err
	}
	d.NodeNumber = n
	return d, nil
}

func heardPeer(o *beacon.Observation) bool {
	for _, h := range o.NICs {
		if len(h.Peers) > 0 {
			return true
		}
	}
	return false
}

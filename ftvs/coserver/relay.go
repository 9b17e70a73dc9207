package coserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/ftvs/ftvs/ftvs/port"
	"github.com/vishvananda/netlink"
)

// Redirected-port failover: when the primary's redirected NIC loses carrier
// its VS keeps running; its frames go out through the peer's redirected NIC
// (over the CoServer link) and the frames the peer's NIC receives for the VS
// come back the same way. No VS failover is needed.
const (
	msgFrames  = 65 // dir u8 (0 out: write on your NIC, 1 in: submit) | gso u16 | frame
	msgCarrier = 66 // up u8: the sender's redirected NIC has carrier
)

// relayWindow bounds the link messages in flight before relayed frames are
// dropped (TCP recovers them), so relaying never fills the link's window
// that the lockstep log needs.
const relayWindow = 4096

type relay struct {
	viaPeer   atomic.Bool // our NIC has no carrier: our VS uses the peer's
	peerViaUs atomic.Bool // the peer's NIC has no carrier: we carry its frames
	carrier   atomic.Bool
	out, in   atomic.Uint64
	drops     atomic.Uint64
}

func (r *relay) send(d *Daemon, dir byte, gso uint16, f []byte) {
	if st := d.sess.Status(); !st.PeerAlive || st.Sent-st.Acked > relayWindow {
		r.drops.Add(1)
		return
	}
	b := make([]byte, 3, 3+len(f))
	b[0] = dir
	binary.LittleEndian.PutUint16(b[1:], gso)
	if d.sess.Send(msgFrames, append(b, f...)) != nil {
		r.drops.Add(1)
	}
}

func (r *relay) toPeer(d *Daemon, frames []port.Frame) {
	for _, f := range frames {
		r.out.Add(1)
		r.send(d, 0, f.GSO, f.Data)
	}
}

func (r *relay) inToPeer(d *Daemon, f []byte) {
	r.in.Add(1)
	r.send(d, 1, 0, f)
}

// decodeRelayed splits a msgFrames payload.
func decodeRelayed(p []byte) (dir byte, gso uint16, frame []byte, err error) {
	if len(p) < 3+14 {
		return 0, 0, nil, fmt.Errorf("relayed frame of %d bytes: shorter than its header and an Ethernet header", len(p))
	}
	if p[0] > 1 {
		return 0, 0, nil, fmt.Errorf("relayed frame direction %d: want 0 (out) or 1 (in)", p[0])
	}
	if len(p)-3 > port.MaxFrame {
		return 0, 0, nil, fmt.Errorf("relayed frame of %d bytes: larger than %d", len(p)-3, port.MaxFrame)
	}
	return p[0], binary.LittleEndian.Uint16(p[1:]), p[3:], nil
}

// fromPeer handles a relayed frame (control goroutine).
func (r *relay) fromPeer(d *Daemon, p []byte) {
	dir, gso, f, err := decodeRelayed(p)
	if err != nil {
		d.addEvent("protocol", 0, err.Error())
		return
	}
	switch dir {
	case 0:
		d.portMu.Lock()
		err := d.port.Write([]port.Frame{{Data: f, GSO: gso, PartialCsum: d.mcfg.ChecksumOffload}})
		d.portMu.Unlock()
		if err != nil {
			r.drops.Add(1)
		}
	case 1:
		d.submitFrame(f)
	}
}

// onCarrier reacts to our redirected NIC's carrier changing.
func (d *Daemon) onCarrier(up bool) {
	if d.relay.carrier.Swap(up) == up {
		return
	}
	_ = d.sess.Send(msgCarrier, []byte{b2u(up)})
	if up {
		d.relay.viaPeer.Store(false)
		d.addEvent("carrier-up", 0, d.cfg.Redirected.Interface)
	} else {
		d.relay.viaPeer.Store(d.sess.Status().PeerAlive)
		d.addEvent("carrier-down", 0, d.cfg.Redirected.Interface+": VS frames go through the peer's NIC")
	}
	// Let the LAN's switches learn where the VS MAC is now: a gratuitous ARP
	// at once and again shortly after, since a NIC whose carrier has just
	// come back may not send the first.
	garp(d)
}

func (d *Daemon) onPeerCarrier(p []byte) {
	if len(p) < 1 {
		return
	}
	d.relay.peerViaUs.Store(p[0] == 0)
	d.addEvent("peer-carrier", 0, map[bool]string{true: "up", false: "down: relaying its VS frames"}[p[0] == 1])
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// watchCarrier follows the redirected NIC's carrier through netlink link
// updates.
func (d *Daemon) watchCarrier(ctx context.Context) {
	l, err := netlink.LinkByName(d.cfg.Redirected.Interface)
	if err != nil {
		d.log.Warn("coserver: carrier watch off", "err", err)
		return
	}
	idx := l.Attrs().Index
	d.relay.carrier.Store(hasCarrier(l.Attrs()))
	ch := make(chan netlink.LinkUpdate, 16)
	done := make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribe(ch, done); err != nil {
		d.log.Warn("coserver: carrier watch off", "err", err)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case u, ok := <-ch:
			if !ok {
				return
			}
			if u.Attrs().Index == idx {
				d.onCarrier(hasCarrier(u.Attrs()))
			}
		}
	}
}

func hasCarrier(a *netlink.LinkAttrs) bool {
	return a.RawFlags&0x10000 != 0 // IFF_LOWER_UP
}

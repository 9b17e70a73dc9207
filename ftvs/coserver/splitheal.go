package coserver

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/lockstep"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
)

// When a split brain heals (see the package doc, "Healed split brain"), two
// primaries meet: one of them fences itself so that only one VS emits
// frames from the VS MAC. The rule needs no further exchange: each primary
// announces when it went live (the role message on the CoServer links, and
// live_since_ms in its status document), and both compare the same two
// figures.

// roleFenced is the status role of a primary fenced by a healed split brain.
const roleFenced = "fenced (split brain)"

// Role message flags (byte 4 of msgRole).
const (
	roleFlagFenced    = 1 << 0 // fenced by a healed split brain
	roleFlagLeaseHeld = 1 << 1 // holds the witness lease
)

type splitHeal struct {
	liveSince atomic.Int64 // unix ms this node's VS went live here (0: not primary)
	fenced    atomic.Bool
	leaseHeld atomic.Bool   // a primary holding the witness lease (keepLease)
	foreignVS atomic.Uint64 // frames from the VS MAC seen on the redirected NIC while primary
	announced atomic.Int64  // unix ms of the survivor's last gratuitous ARP burst
}

// splitBrainLoser is the node that fences when both run as primary: with a
// witness, the one not holding the lease (the other served the clients);
// else the one that went live later by the times they announce; equal or
// unknown (0, a peer too old to announce it) times: node 2. Both nodes
// evaluate it on the same announced figures, so they agree however their
// clocks are set.
func splitBrainLoser(lease1, lease2 bool, live1, live2 int64) int {
	if lease1 != lease2 {
		if lease1 {
			return 2
		}
		return 1
	}
	if live1 > 0 && live2 > 0 && live1 != live2 {
		if live1 > live2 {
			return 1
		}
		return 2
	}
	return 2
}

// markLive records that this node's VS went live now (start as primary or
// go-live of a secondary).
func (d *Daemon) markLive() {
	d.split.liveSince.CompareAndSwap(0, time.Now().UnixMilli())
}

// isPrimary says whether the lockstep node runs as primary.
func (d *Daemon) isPrimary() bool {
	n := d.node.Load()
	return n != nil && n.Status().Role == lockstep.RolePrimary
}

// onPeerPrimary: the peer says (through source) it runs as primary too and
// went live at peerLive (unix ms, 0 unknown) and holds the witness lease or
// not. Exactly one of the two fences.
func (d *Daemon) onPeerPrimary(peerLive int64, peerLease, peerFenced bool, source string) {
	if !d.isPrimary() || d.split.fenced.Load() || peerFenced {
		return
	}
	mine := d.split.liveSince.Load()
	live, lease := [3]int64{}, [3]bool{}
	live[d.cfg.Node], live[3-d.cfg.Node] = mine, peerLive
	lease[d.cfg.Node], lease[3-d.cfg.Node] = d.split.leaseHeld.Load(), peerLease
	loser := splitBrainLoser(lease[1], lease[2], live[1], live[2])
	detail := fmt.Sprintf("peer is primary too (%s); went live: CoServer 1 %s, CoServer 2 %s", source, msTime(live[1]), msTime(live[2]))
	if loser != d.cfg.Node {
		d.addEvent("split-brain", d.seq(), detail+"; the peer fences itself, this node keeps serving")
		d.announceSurvivor()
		return
	}
	d.fenceSplitBrain(detail + "; this node lacks the witness lease, or went live later (or tie): fenced, emitting nothing until the operator resolves")
}

func msTime(ms int64) string {
	if ms == 0 {
		return "unknown"
	}
	return time.UnixMilli(ms).UTC().Format("15:04:05.000")
}

func (d *Daemon) seq() uint64 {
	if n := d.node.Load(); n != nil {
		return n.Status().Seq
	}
	return 0
}

// fenceSplitBrain stops this primary's VS from reaching the LAN: no frame
// leaves (emit), none enters (pumpPort, submitFrame). Its VS state and disk
// copies are kept as they are for the operator's choice.
func (d *Daemon) fenceSplitBrain(why string) {
	if !d.split.fenced.CompareAndSwap(false, true) {
		return
	}
	d.addEvent("split-brain", d.seq(), why)
	d.log.Warn("coserver: split brain healed: fenced", "why", why)
	go d.sendRole()
}

// unfenceSplitBrain: the operator kept this node's data (the peer
// discarded its VS and follows ours now).
func (d *Daemon) unfenceSplitBrain(why string) {
	if d.split.fenced.CompareAndSwap(true, false) {
		d.addEvent("split-brain-unfenced", d.seq(), why)
		d.log.Warn("coserver: split brain: serving again", "why", why)
		go d.sendRole()
	}
}

// announceSurvivor has the surviving VS send gratuitous ARPs (a logged
// command, as at go-live) for a few seconds: the LAN's switches learnt the
// VS MAC on whichever port the other VS last answered from, and the fenced
// one answers nothing, so without them the survivor's clients could wait for
// the switch's address table to age out. Spread over 3.5 s so that one comes
// after the peer's fence (its own probe cadence), at most a burst per 10 s.
func (d *Daemon) announceSurvivor() {
	now := time.Now().UnixMilli()
	last := d.split.announced.Load()
	if now-last < 10_000 || !d.split.announced.CompareAndSwap(last, now) {
		return
	}
	go func() {
		for _, at := range []time.Duration{0, 500 * time.Millisecond, 1500 * time.Millisecond, 3500 * time.Millisecond} {
			time.Sleep(at - time.Since(time.UnixMilli(now)))
			n := d.node.Load()
			if n == nil || n.Status().Role != lockstep.RolePrimary || d.split.fenced.Load() {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = n.Submit(ctx, machine.InCommand, machine.GratuitousARPCommand())
			cancel()
		}
	}()
}

// rolePayloadTail is what msgRole carries after the behaviour level:
// flags u8 | live since u64 (unix ms, big-endian).
func (d *Daemon) rolePayloadTail() []byte {
	var b [9]byte
	if d.split.fenced.Load() {
		b[0] |= roleFlagFenced
	}
	if d.split.leaseHeld.Load() {
		b[0] |= roleFlagLeaseHeld
	}
	binary.BigEndian.PutUint64(b[1:], uint64(d.split.liveSince.Load()))
	return b[:]
}

// parseRoleTail reads the tail of a peer's role message (absent: an older
// peer, not fenced, no lease, live time unknown).
func parseRoleTail(p []byte) (fenced, leaseHeld bool, liveSince int64) {
	if len(p) >= 5 {
		fenced, leaseHeld = p[4]&roleFlagFenced != 0, p[4]&roleFlagLeaseHeld != 0
	}
	if len(p) >= 13 {
		liveSince = int64(binary.BigEndian.Uint64(p[5:13]))
	}
	return fenced, leaseHeld, liveSince
}

// noteForeignVSFrame: the redirected NIC received a frame from the VS MAC
// that this node did not send.
func (d *Daemon) noteForeignVSFrame() {
	if d.relay.viaPeer.Load() || d.relay.peerViaUs.Load() {
		return // our own frames through the peer's NIC, or the peer's through ours
	}
	d.split.foreignVS.Add(1)
}

// watchSplitHeal looks for a second live VS while this node is primary and
// its peer is silent on the CoServer links (with the links up, the role
// exchange finds it): through the management probe, and on the production
// LAN, where another VS's frames mostly go unicast past this port, by the
// guard's ARP probe for the VS IP once a second (our own VS never sees our
// probe: only another VS answers it), besides any frame from the VS MAC that
// reaches the port anyway.
func (d *Daemon) watchSplitHeal(ctx context.Context) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	seen := d.split.foreignVS.Load()
	var lastMgmt, lastLAN time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := d.split.foreignVS.Load()
		lan := now != seen
		seen = now
		if !d.isPrimary() || d.split.fenced.Load() || d.sess.Status().PeerAlive ||
			d.relay.viaPeer.Load() || d.relay.peerViaUs.Load() {
			continue
		}
		// On a tap port the probe would enter our own VS, whose answer
		// comes back as received: there the passive sightings must do.
		if !lan && d.cfg.Redirected.Port == string(port.AFPacket) && time.Since(lastLAN) >= time.Second {
			lastLAN = time.Now()
			if hit, err := probeLAN(d.cfg.Redirected.Interface, d.mac, d.vsIP, d.cfg.Node, d.cfg.Timeouts.SplitBrain); err == nil && hit {
				lan = true
			}
		}
		if !lan && time.Since(lastMgmt) < time.Second {
			continue
		}
		lastMgmt = time.Now()
		answered := false
		if p := d.cfg.Management.Peer; p != "" {
			if st, err := FetchStatus(p, d.cfg.Timeouts.Management, false); err == nil {
				answered = true
				if st.Role == lockstep.RolePrimary.String() && !st.Fenced {
					d.onPeerPrimary(st.LiveSinceMS, st.LeaseHeld, false, "management network")
					continue
				}
			}
		}
		if lan && !answered && d.cfg.Node == 2 {
			// Another VS on the LAN and no way to learn when it went
			// live: the tie rule, which node 1 applies too (it keeps serving).
			d.fenceSplitBrain("another VS answers for the VS MAC on the production LAN, the peer silent on the links and the management network; node 2 fences (tie rule)")
		} else if lan && !answered {
			d.addEvent("split-brain", d.seq(), "another VS answers for the VS MAC on the production LAN; node 2 fences (tie rule), this node keeps serving")
			d.announceSurvivor()
		}
	}
}

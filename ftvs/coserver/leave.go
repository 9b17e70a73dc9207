package coserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/lockstep"
	"github.com/ftvs/ftvs/ftvs/machine"
)

// A secondary taken out of service (the first step of a rolling upgrade)
// tells the primary before it re-executes. Without the notice the primary
// holds its outputs until the peer timeout (the links are reset by the exec
// at once, but a silent peer is only declared after PeerTimeout) and
// reports the peer silent and lost, an alert for a planned step. With it,
// the primary goes on alone at once: its daemon hands its lockstep node the
// same peer-silent event the link would raise later (the split-brain guard
// still decides: MayGoOnAlone).
//
// Only a secondary sends it and only a primary acts on it. A primary
// leaving the pair with its secondary in sync hands its role over instead
// (lockstep Node.HandOver): it stops stamping, waits for the secondary's
// ack of its last input, tells it to take over at that seq and releases
// nothing more; the secondary goes live at once (no peer timeout, no guard
// check) and announces the VS MAC. When that fails (no secondary in sync,
// no ack within handOverWait, the secondary lost meanwhile) the primary
// carries on until its re-execution and the secondary goes live by the
// peer timeout as before.

// leaveWait bounds how long the leaving node waits for the notice's ack
// (the exec resets the links and may lose what is still queued).
const leaveWait = 200 * time.Millisecond

// handOverWait bounds a hand-over: the primary stamps nothing meanwhile.
const handOverWait = 2 * time.Second

// leave sends the notice when this node is a secondary and waits until the
// peer acknowledged it (or leaveWait); a primary hands its role over.
func (d *Daemon) leave() {
	n := d.node.Load()
	if n == nil || !d.sess.Status().PeerAlive {
		return
	}
	if st := n.Status(); st.Role == lockstep.RolePrimary && st.Peer == lockstep.PeerSynced {
		d.handOver(n)
		return
	}
	if n.Status().Role != lockstep.RoleSecondary {
		return
	}
	d.leaving.Store(true)
	if err := d.sess.Send(msgLeaving, nil); err != nil {
		d.log.Warn("coserver: leave notice not sent", "err", err)
		return
	}
	sent := d.sess.Status().Sent
	for deadline := time.Now().Add(leaveWait); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if d.sess.Status().Acked >= sent {
			d.log.Info("coserver: the primary has the leave notice")
			return
		}
	}
	d.log.Warn("coserver: leave notice not acknowledged; the primary will wait for the peer timeout", "wait", leaveWait)
}

// peerLeaving is the primary's side of the notice.
func (d *Daemon) peerLeaving() {
	if !d.isPrimary() {
		return
	}
	d.addEvent("peer-leaving", 0, "the secondary leaves the pair (out of service): going on alone now")
	d.nodeCh <- link.Delivery{Event: &link.Event{Kind: link.EventPeerSilent}}
}

// handOver gives the primary role to the in-sync secondary before this
// node leaves the pair.
func (d *Daemon) handOver(n *lockstep.Node) {
	d.leaving.Store(true) // no join request of ours
	// No role message may follow the hand-over on the link: a stale
	// "primary" after it would look like a split brain to the new primary.
	d.roleMu.Lock()
	d.handingOver.Store(true)
	d.roleMu.Unlock()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), handOverWait+time.Second)
	defer cancel()
	res, err := n.HandOver(ctx, handOverWait)
	took := time.Since(t0).Round(time.Microsecond)
	// What came in while this node stopped stamping goes to the new
	// primary, as frames that reach our NIC after the hand-over do
	// (pumpPort); a lost window update would cost the VS's persist timer.
	for _, in := range res.Unstamped {
		if in.Kind == machine.InFrame {
			d.relay.inToPeer(d, in.Payload)
		}
	}
	seq := res.Seq
	switch {
	case err == nil:
		d.addEvent("hand-over", seq, fmt.Sprintf("the secondary took over at seq %d in %s (%d inputs relayed to it): leaving the pair", seq, took, len(res.Unstamped)))
		d.log.Info("coserver: handed the primary role over", "seq", seq, "took", took, "relayed", len(res.Unstamped))
	case errors.Is(err, lockstep.ErrHandOverUnconfirmed):
		d.addEvent("hand-over", seq, fmt.Sprintf("not confirmed after %s: this node gave up its role; the secondary goes live after the peer timeout", took))
		d.log.Warn("coserver: hand-over not confirmed", "seq", seq, "err", err)
	default:
		d.handingOver.Store(false)
		d.addEvent("hand-over-failed", d.seq(), err.Error()+"; the secondary goes live after the peer timeout")
		d.log.Warn("coserver: hand-over failed; leaving as primary", "err", err)
	}
}

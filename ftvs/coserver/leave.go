package coserver

import (
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/lockstep"
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
// Only a secondary sends it and only a primary acts on it: a primary
// leaving the pair must not make its secondary go live early (its guard
// would refuse while the primary answers; the peer timeout path handles it).

// leaveWait bounds how long the leaving node waits for the notice's ack
// (the exec resets the links and may lose what is still queued).
const leaveWait = 200 * time.Millisecond

// leave sends the notice when this node is a secondary and waits until the
// peer acknowledged it (or leaveWait).
func (d *Daemon) leave() {
	n := d.node.Load()
	if n == nil || n.Status().Role != lockstep.RoleSecondary || !d.sess.Status().PeerAlive {
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
	n := d.node.Load()
	if n == nil || n.Status().Role != lockstep.RolePrimary {
		return
	}
	d.addEvent("peer-leaving", 0, "the secondary leaves the pair (out of service): going on alone now")
	d.nodeCh <- link.Delivery{Event: &link.Event{Kind: link.EventPeerSilent}}
}

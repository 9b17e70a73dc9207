package lockstep

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
)

// A planned hand-over gives the primary role to an in-sync secondary
// without a failover, in two steps:
//
//  1. The primary stops stamping at its last input N (inputs submitted
//     meanwhile wait in the queue; HandOver returns them to the caller for
//     the new primary) and waits until the peer's ack of N released every
//     held output: nothing was emitted that the peer has not applied.
//  2. It sends msgHandOver(gen, N, hash). The secondary, finding its log
//     at exactly N with the same output hash (and MayTakeOver's yes),
//     answers msgTookOver(N, 1) and goes live at once: no silence to wait
//     for and no split-brain guard to ask, since the primary gave up
//     explicitly. On the answer the old primary becomes a joining node
//     that releases nothing (it may serve again only after rejoining by
//     snapshot).
//
// Failures: before msgHandOver is queued the primary may always resume (a
// secondary lost, out of sync or too slow to ack ends the hand-over with
// an error, and the primary stamps on). After it, the primary still
// stamps nothing until the answer; a refusal (msgTookOver(N, 0)) or the
// peer's loss (silence with MayGoOnAlone's yes, or a restart) make it
// resume; a timeout while the link still hears the peer (the message or
// the answer lost) leaves the outcome unknown, so the node gives up all
// the same and the peer goes live by the ordinary path once this node is
// gone (ErrHandOverUnconfirmed).

type handOverReq struct {
	deadline time.Time
	done     chan handOverResult
	sent     bool // msgHandOver queued: wait for msgTookOver
	seq      uint64
}

type handOverResult struct {
	res HandOverResult
	err error
}

// HandOverResult is what a completed hand-over leaves to the caller.
type HandOverResult struct {
	Seq uint64 // the peer took over after this input
	// Unstamped are the inputs submitted after this node stopped stamping,
	// in order (Kind and Payload set): the caller hands them to the new
	// primary (the daemon relays frames over the link) rather than lose
	// them; a lost frame costs the client a retransmission timeout, and a
	// lost window update the VS's persist timer.
	Unstamped []machine.Input
}

// ErrNoSyncedPeer is returned by HandOver when no secondary follows the log.
var ErrNoSyncedPeer = errors.New("lockstep: no secondary in sync to hand over to")

// ErrHandOverUnconfirmed is returned by HandOver when the peer did not
// answer the hand-over in time: this node gave up its role all the same.
var ErrHandOverUnconfirmed = errors.New("lockstep: the peer did not confirm the hand-over; this node gave up its role all the same")

// HandOver gives the primary role to the in-sync secondary (above). It
// returns the seq N the peer takes over at and the inputs left unstamped;
// after it returns nil (or
// ErrHandOverUnconfirmed) this node is joining and releases nothing more.
// On any other error the node is still the primary (or was not one).
// timeout bounds the whole hand-over.
func (n *Node) HandOver(ctx context.Context, timeout time.Duration) (HandOverResult, error) {
	if timeout <= 0 {
		return HandOverResult{}, fmt.Errorf("lockstep: hand-over timeout %v, want > 0", timeout)
	}
	r := handOverReq{deadline: time.Now().Add(timeout), done: make(chan handOverResult, 1)}
	select {
	case n.hand <- r:
	case <-ctx.Done():
		return HandOverResult{}, ctx.Err()
	}
	select {
	case res := <-r.done:
		return res.res, res.err
	case <-ctx.Done():
		return HandOverResult{}, ctx.Err()
	}
}

func (n *Node) startHandOver(r handOverReq) {
	switch {
	case n.role != RolePrimary:
		r.done <- handOverResult{err: ErrNotPrimary}
	case n.handing != nil:
		r.done <- handOverResult{err: errors.New("lockstep: a hand-over is already in progress")}
	case !n.canHandOver():
		r.done <- handOverResult{err: ErrNoSyncedPeer}
	default:
		n.handing = &r
		n.log.Info("lockstep: handing over: stamping stopped", "seq", n.seq, "acked", n.applied)
	}
}

// canHandOver: the peer is a synced follower (no snapshot in flight) and
// this primary is not halted.
func (n *Node) canHandOver() bool {
	return n.peer == PeerSynced && !n.halted && n.snapImg == nil
}

// progressHandOver runs after every turn of the loop: it sends the
// hand-over once the peer acked everything, or abandons it when the peer
// is no longer a synced follower.
func (n *Node) progressHandOver() {
	h := n.handing
	if h == nil {
		return
	}
	if n.role != RolePrimary || !n.canHandOver() {
		n.endHandOver(HandOverResult{}, fmt.Errorf("the secondary left the pair or fell out of sync at seq %d: carrying on as primary", n.seq))
		return
	}
	if h.sent || n.applied < n.seq || n.flushed < n.seq {
		return // waiting for the answer, or outputs still wait for the peer's ack
	}
	if err := n.cfg.Link.Send(msgHandOver, encU64s(n.gen, n.seq, n.hash)); err != nil {
		// Not queued: the peer cannot take over, so we may go on.
		n.endHandOver(HandOverResult{}, fmt.Errorf("sending the hand-over: %w: carrying on as primary", err))
		return
	}
	h.sent, h.seq = true, n.seq
}

// onTookOver is the primary's side of the answer.
func (n *Node) onTookOver(seq uint64, ok bool) {
	h := n.handing
	if h == nil || !h.sent || seq != h.seq {
		return // stale
	}
	if !ok {
		n.endHandOver(HandOverResult{}, fmt.Errorf("the secondary refused the hand-over at seq %d: carrying on as primary", seq))
		return
	}
	n.endHandOver(HandOverResult{seq, n.giveUp("the peer took over at this seq; this node emits nothing more")}, nil)
}

// handOverTimeout: before msgHandOver the primary resumes; after it, the
// outcome is unknown and the node gives up.
func (n *Node) handOverTimeout() {
	h := n.handing
	if h == nil {
		return
	}
	if !h.sent {
		n.endHandOver(HandOverResult{}, fmt.Errorf("the secondary did not ack seq %d within the hand-over timeout: carrying on as primary", n.seq))
		return
	}
	un := n.giveUp("the peer did not confirm the hand-over: giving up the role all the same (the peer goes live when this node is gone)")
	n.endHandOver(HandOverResult{h.seq, un}, ErrHandOverUnconfirmed)
}

// giveUp ends this node's primary role after msgHandOver and returns the
// submissions it did not stamp.
func (n *Node) giveUp(why string) []machine.Input {
	n.releaseAll() // empty: every output was acked
	n.role, n.peer, n.eligible, n.following = RoleJoining, PeerNone, false, false
	n.gen++     // late acks of the old generation are stale
	n.publish() // Submit refuses from here on
	var un []machine.Input
	for len(n.submit) > 0 {
		s := <-n.submit
		un = append(un, machine.Input{Kind: s.kind, Payload: s.payload})
	}
	n.event(Event{Kind: EventHandOver, Seq: n.seq, Reason: why})
	return un
}

func (n *Node) endHandOver(res HandOverResult, err error) {
	h := n.handing
	if h == nil {
		return
	}
	if err != nil {
		n.log.Warn("lockstep: hand-over", "seq", n.seq, "err", err)
	}
	n.handing = nil
	h.done <- handOverResult{res, err}
}

// takeOver is the secondary's side of msgHandOver.
func (n *Node) takeOver(gen, seq, hash uint64) {
	why := fmt.Sprintf("hand-over at seq %d", seq)
	refuse := ""
	switch {
	case n.role != RoleSecondary || !n.following || !n.eligible || gen != n.snapGen:
		refuse = why + ": not in sync with the primary's log"
	case n.seq != seq || n.hash != hash:
		refuse = fmt.Sprintf("%s: this node is at seq %d (output hash %#x, primary's %#x)", why, n.seq, n.hash, hash)
	case n.cfg.MayTakeOver != nil && !n.cfg.MayTakeOver():
		refuse = why + ": this node may not take over (MayTakeOver)"
	}
	if refuse != "" {
		n.send(msgTookOver, encU64s(seq, 0)) // the primary carries on
		n.event(Event{Kind: EventNoGoLive, Seq: n.seq, Reason: refuse})
		return
	}
	// The answer goes first, ahead of anything this node emits: the old
	// primary learns it lost the role before any client sees our outputs.
	n.send(msgTookOver, encU64s(seq, 1))
	n.goLive(why, true)
}

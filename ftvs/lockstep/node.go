package lockstep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/machine"
)

// Role is what a node does with the log.
type Role uint8

const (
	RoleJoining   Role = iota + 1 // waiting for a snapshot from the primary
	RoleSecondary                 // following the primary's log
	RolePrimary                   // stamping inputs (solo when no peer follows)
)

func (r Role) String() string {
	switch r {
	case RoleJoining:
		return "joining"
	case RoleSecondary:
		return "secondary"
	case RolePrimary:
		return "primary"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// PeerState is the primary's view of its secondary.
type PeerState uint8

const (
	PeerNone    PeerState = iota // solo: outputs leave at once
	PeerJoining                  // snapshot sent; log streamed; outputs not yet gated
	PeerSynced                   // outputs wait for the peer's ack
)

func (p PeerState) String() string {
	return [...]string{"none", "joining", "synced"}[p]
}

// Transport is the message stream to the peer; *link.Session implements it.
type Transport interface {
	Send(typ uint8, payload []byte) error
	Incoming() <-chan link.Delivery
}

// Defaults for Config.
const (
	DefaultMaxLogEntries = 1 << 16
	DefaultMaxLogBytes   = 128 << 20
	DefaultMaxBatchBytes = 128 << 10
	DefaultSnapshotChunk = 1 << 20
	DefaultSubmitQueue   = 4096
)

// Config configures a Node.
type Config struct {
	Start   Role      // RolePrimary (fresh VS) or RoleJoining (wait for a snapshot)
	Replica Replica   // the machine; a joiner's is overwritten by Restore
	Link    Transport // to the peer
	// Emit receives released outputs, in Seq order, from the node's
	// goroutine. It must not call back into the Node.
	Emit func([]machine.Output)
	// OutputHeld, if set, receives how long each batch of outputs the
	// primary held for the peer's ack waited (from the node's goroutine,
	// before Emit), for the manager's output-hold histogram.
	OutputHeld func(time.Duration)
	// OnEvent, if set, receives every Event (from the node's goroutine).
	OnEvent func(Event)
	// Clock is a monotonic clock in ns; default time since New.
	Clock func() int64
	// MayGoLive is asked before a secondary goes live (split-brain guard:
	// management network, LAN watch, witness). Default: yes.
	MayGoLive func() bool
	// MayGoOnAlone is asked on the primary when its peer falls silent while
	// outputs wait for that peer's ack (split-brain guard: may the peer be
	// alive and about to take over with a log that lacks them?). Until it
	// says yes the primary holds its outputs and stamps nothing; Reconsider
	// asks again. Default: yes.
	MayGoOnAlone func() bool
	// MayTakeOver is asked on a secondary offered a planned hand-over:
	// the primary gave up explicitly, so no split-brain guard, only this
	// node's own readiness (the daemon: its virtual disk copies). A no
	// refuses the hand-over and the primary carries on. Default: yes.
	MayTakeOver func() bool
	// BeforeAck, if set, runs on a secondary after it applied a batch and
	// before it acks it: the mirrored disks' deferred flushes go here, so
	// the primary releases a FLUSH/FUA reply only once both copies are
	// durable (DRBD protocol C), with one flush per batch. An error skips
	// the ack (the primary's log bound then drops this node).
	BeforeAck func(applied uint64) error

	MaxLogEntries int // inputs held for the peer before it is dropped
	MaxLogBytes   int
	MaxBatchBytes int
	SnapshotChunk int
	SubmitQueue   int

	// Diverge is a TEST-ONLY fault hook: called on every input just before
	// this node's replica steps it, it may alter the input to make this
	// replica diverge. Never set it in production.
	Diverge func(in *machine.Input)

	Log *slog.Logger
}

// EventKind says what happened.
type EventKind uint8

const (
	EventGoLive       EventKind = iota + 1 // secondary became primary (Seq: its GARP input)
	EventNoGoLive                          // peer silent but this node may not go live (Reason)
	EventPeerLost                          // primary: secondary gone, now solo (Reason)
	EventSnapshotSent                      // primary: snapshot at Seq sent (Pause, Size)
	EventPeerSynced                        // primary: secondary follows, outputs gated from Seq
	EventRestored                          // secondary: snapshot at Seq restored
	EventDivergence                        // primary: ack hash mismatch at Seq (Reason)
	EventSplitBrain                        // both nodes claim primary (Reason)
	EventProtocol                          // a bad message from the peer (Reason)
)

// EventSnapshotRefused: primary: the Replica's PrepareSnapshot failed; no
// snapshot sent (Reason).
const EventSnapshotRefused = EventProtocol + 1

// EventHandOver: primary: handed its role to the peer at Seq; it emits
// nothing more (handover.go).
const EventHandOver = EventSnapshotRefused + 1

func (k EventKind) String() string {
	return [...]string{"?", "go-live", "no-go-live", "peer-lost", "snapshot-sent", "peer-synced",
		"restored", "divergence", "split-brain", "protocol-error", "snapshot-refused", "hand-over"}[min(int(k), 11)]
}

// Event is a state change worth a log line, an alert or a test assertion.
type Event struct {
	Kind   EventKind
	Seq    uint64
	Pause  time.Duration // EventSnapshotSent: how long the primary's loop stopped
	Size   int
	Reason string
	// Planned: EventGoLive after the primary handed its role over (a
	// planned switch, not a failover: no silence, no guard).
	Planned bool
}

// Status is a snapshot of the node.
type Status struct {
	Role          Role
	Peer          PeerState
	Seq           uint64 // last input stamped (primary) or applied (secondary)
	PeerApplied   uint64 // primary: last input the peer acked
	LogEntries    int    // inputs held for the peer
	HeldOutputs   int    // outputs waiting for an ack
	MaxHeld       int    // most inputs ever executed ahead of the peer's ack
	Divergences   int
	Snapshots     int
	LastPause     time.Duration
	SubmitDropped uint64
	// Halted: a primary whose peer fell silent and whose MayGoOnAlone hook
	// has not said yes: outputs held, nothing stamped.
	Halted bool
}

// ErrNotPrimary is returned by Submit on a node that does not stamp inputs.
var ErrNotPrimary = errors.New("lockstep: not the primary")

type submission struct {
	kind    machine.InputKind
	payload []byte
}

type entry struct {
	in   machine.Input
	hash uint64 // running output hash after this input
	outs []machine.Output
}

// Node runs one replica in lockstep with its peer.
type Node struct {
	cfg    Config
	rep    Replica
	log    *slog.Logger
	submit chan submission
	t0     time.Time

	// Owned by the Run goroutine.
	role        Role
	seq         uint64
	lastNow     int64
	lastNowAt   int64 // secondary: Clock() when the input stamped lastNow arrived
	hash        uint64
	vbase       int64 // virtual clock = vbase + Clock() - cbase
	cbase       int64
	peer        PeerState
	gen         uint64
	snapSeq     uint64
	snapHash    uint64
	applied     uint64 // primary: peer's last acked input
	appliedHash uint64
	entries     []entry
	logBytes    int
	flushed     uint64 // last seq put in a batch
	held        int
	dropSent    bool
	// flushBlocked: the last flush met a full link window; retry soon.
	flushBlocked bool
	// snapshot being streamed to a joiner (primary)
	snapImg   []byte
	snapOff   int
	snapSum   chan [2]uint64 // gen, checksum: computed off the loop
	snapSumOK bool
	snapSumV  uint64
	// secondary
	eligible  bool
	snapMeta  snapBegin
	snapBuf   []byte
	snapGen   uint64
	snapEnd   *[2]uint64 // gen, checksum, when SnapEnd came before the last chunk
	following bool
	// peerGone: the link reported the peer silent (or closed) and has not
	// seen it come back; Reconsider acts only then.
	peerGone bool
	halted   bool

	probes chan chan [2]uint64
	reask  chan struct{}
	hand   chan handOverReq
	// handing: a hand-over in progress (primary): nothing is stamped.
	handing *handOverReq

	mu     sync.Mutex
	status Status
}

// New checks the config and builds a node; Run starts it.
func New(cfg Config) (*Node, error) {
	if cfg.Replica == nil || cfg.Link == nil || cfg.Emit == nil {
		return nil, errors.New("lockstep config: Replica, Link and Emit are required")
	}
	if cfg.Start != RolePrimary && cfg.Start != RoleJoining {
		return nil, fmt.Errorf("lockstep config: start role %v, want primary or joining", cfg.Start)
	}
	n := &Node{cfg: cfg, rep: cfg.Replica, t0: time.Now(), role: cfg.Start}
	if n.cfg.Clock == nil {
		n.cfg.Clock = func() int64 { return int64(time.Since(n.t0)) }
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&n.cfg.MaxLogEntries, DefaultMaxLogEntries)
	def(&n.cfg.MaxLogBytes, DefaultMaxLogBytes)
	def(&n.cfg.MaxBatchBytes, DefaultMaxBatchBytes)
	def(&n.cfg.SnapshotChunk, DefaultSnapshotChunk)
	def(&n.cfg.SubmitQueue, DefaultSubmitQueue)
	if n.cfg.SnapshotChunk > link.MaxPayload-64 {
		n.cfg.SnapshotChunk = link.MaxPayload - 64
	}
	n.log = cfg.Log
	if n.log == nil {
		n.log = slog.Default()
	}
	n.submit = make(chan submission, n.cfg.SubmitQueue)
	n.probes = make(chan chan [2]uint64)
	n.reask = make(chan struct{}, 1)
	n.hand = make(chan handOverReq)
	n.snapSum = make(chan [2]uint64, 1)
	n.cbase = n.cfg.Clock()
	n.publish()
	return n, nil
}

// Submit hands an input (a frame from the VS port, a command) to the
// primary's sequencer. It blocks while the queue is full.
func (n *Node) Submit(ctx context.Context, kind machine.InputKind, payload []byte) error {
	n.mu.Lock()
	r := n.status.Role
	n.mu.Unlock()
	if r != RolePrimary {
		return ErrNotPrimary
	}
	select {
	case n.submit <- submission{kind, payload}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// StateHash asks the node's goroutine for the replica's state hash and the
// seq it was taken at (for status and tests; costs a snapshot).
func (n *Node) StateHash(ctx context.Context) (seq, hash uint64, err error) {
	r := make(chan [2]uint64, 1)
	select {
	case n.probes <- r:
	case <-ctx.Done():
		return 0, 0, ctx.Err()
	}
	v := <-r
	return v[0], v[1], nil
}

// Reconsider asks the node to decide again what a silent peer means: a
// halted primary asks MayGoOnAlone, a secondary refused by MayGoLive asks
// it again (the peer may have died since). It does nothing while the link
// hears the peer. It does not block.
func (n *Node) Reconsider() {
	select {
	case n.reask <- struct{}{}:
	default: // one request pending is enough
	}
}

// Status reports the node's state.
func (n *Node) Status() Status {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.status
}

func (n *Node) publish() {
	n.mu.Lock()
	s := &n.status
	s.Role, s.Peer, s.Seq, s.PeerApplied = n.role, n.peer, n.seq, n.applied
	s.LogEntries, s.HeldOutputs = len(n.entries), n.held
	s.Halted = n.halted
	n.mu.Unlock()
}

func (n *Node) event(e Event) {
	n.publish() // whoever reacts to the event sees the state it describes
	n.log.Info("lockstep "+e.Kind.String(), "seq", e.Seq, "reason", e.Reason, "pause", e.Pause, "size", e.Size)
	switch e.Kind {
	case EventDivergence:
		n.mu.Lock()
		n.status.Divergences++
		n.mu.Unlock()
	case EventSnapshotSent:
		n.mu.Lock()
		n.status.Snapshots++
		n.status.LastPause = e.Pause
		n.mu.Unlock()
	}
	if n.cfg.OnEvent != nil {
		n.cfg.OnEvent(e)
	}
}

func (n *Node) vnow() int64 { return n.vbase + n.cfg.Clock() - n.cbase }

// Run drives the node until ctx ends or the link's stream closes for good.
func (n *Node) Run(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	in := n.cfg.Link.Incoming()
	for {
		var tick <-chan time.Time
		stamping := n.role == RolePrimary && !n.halted && n.handing == nil
		if stamping {
			if d := n.rep.NextDeadline(); d != 0 {
				wait := time.Duration(d - n.vnow())
				if wait <= 0 {
					n.stamp(machine.InTick, nil)
					n.afterWork()
					continue
				}
				timer.Reset(wait)
				tick = timer.C
			}
		}
		var sub chan submission
		if stamping {
			sub = n.submit
		}
		var handDeadline <-chan time.Time
		if n.handing != nil {
			handDeadline = time.After(time.Until(n.handing.deadline))
		}
		var retry <-chan time.Time
		if (n.snapImg != nil && n.snapOff < len(n.snapImg)) || n.flushBlocked {
			retry = time.After(time.Millisecond) // link window full: try again
		}
		select {
		case <-retry:
		case v := <-n.snapSum:
			if n.snapImg != nil && v[0] == n.gen {
				n.snapSumOK, n.snapSumV = true, v[1]
			}
		case <-ctx.Done():
			// Held outputs die with us, as they would in a crash: the
			// clients' TCP retransmits whatever the survivor never sent.
			return ctx.Err()
		case s := <-sub:
			n.stamp(s.kind, s.payload)
			// Take what else is queued: one batch, one flush.
			for more := true; more && len(n.entries) < n.cfg.MaxLogEntries; {
				select {
				case s := <-sub:
					n.stamp(s.kind, s.payload)
				default:
					more = false
				}
			}
		case <-tick:
		case r := <-n.hand:
			n.startHandOver(r)
		case <-handDeadline:
			n.handOverTimeout()
		case r := <-n.probes:
			r <- [2]uint64{n.seq, n.rep.StateHash()}
		case <-n.reask:
			if n.peerGone {
				n.peerSilent("asked again")
			}
		case d, ok := <-in:
			if !ok {
				n.peerGone = true
				n.peerSilent("link closed")
				in = nil
				break
			}
			n.handle(d)
		}
		timer.Stop()
		n.afterWork()
	}
}

func (n *Node) afterWork() {
	n.pumpSnapshot()
	n.flush()
	n.progressHandOver()
	n.publish()
}

func (n *Node) helloPayload() []byte {
	return binary.LittleEndian.AppendUint64([]byte{byte(n.role)}, n.seq)
}

// send queues a message; a full link window drops the peer.
func (n *Node) send(typ uint8, p []byte) bool {
	err := n.cfg.Link.Send(typ, p)
	if err == nil {
		return true
	}
	if errors.Is(err, link.ErrWindowFull) && n.role == RolePrimary && n.peer != PeerNone {
		n.dropPeer("link send window full")
	} else {
		n.log.Warn("lockstep: send failed", "type", typ, "err", err)
	}
	return false
}

// apply steps the replica and folds its outputs into the running hash.
func (n *Node) apply(in machine.Input) []machine.Output {
	if n.cfg.Diverge != nil {
		n.cfg.Diverge(&in)
	}
	outs := n.rep.Step(in)
	n.hash = hashOutputs(n.hash, outs)
	n.seq = in.Seq
	n.lastNow = in.Now
	return outs
}

// stamp is the sequencer: number, time, execute, log. The primary never
// waits here; only the outputs may wait.
func (n *Node) stamp(kind machine.InputKind, payload []byte) {
	now := max(n.vnow(), n.lastNow)
	in := machine.Input{Seq: n.seq + 1, Now: now, Kind: kind, Payload: payload}
	outs := n.apply(in)
	switch n.peer {
	case PeerNone:
		n.emit(outs)
		return
	case PeerJoining:
		if n.held > 0 {
			// Outputs from before the resync still wait: keep the order.
			n.entries = append(n.entries, entry{in: in, hash: n.hash, outs: outs})
			n.held++
		} else {
			n.emit(outs)
			n.entries = append(n.entries, entry{in: in, hash: n.hash})
		}
	case PeerSynced:
		n.entries = append(n.entries, entry{in: in, hash: n.hash, outs: outs})
		if len(outs) > 0 {
			n.held++
		}
		if depth := int(n.seq - n.applied); depth > n.status.MaxHeld {
			n.mu.Lock()
			n.status.MaxHeld = depth
			n.mu.Unlock()
		}
	}
	n.logBytes += len(payload) + entryHeader
	if len(n.entries) > n.cfg.MaxLogEntries || n.logBytes > n.cfg.MaxLogBytes {
		n.dropPeer(fmt.Sprintf("log full (%d inputs, %d bytes): peer too far behind", len(n.entries), n.logBytes))
	}
}

func (n *Node) emit(outs []machine.Output) {
	if len(outs) > 0 {
		n.cfg.Emit(outs)
	}
}

// flush streams the inputs not yet sent to the peer, in batches.
func (n *Node) flush() {
	n.flushBlocked = false
	if n.role != RolePrimary || n.peer == PeerNone || len(n.entries) == 0 || n.snapImg != nil {
		return // (inputs after a snapshot follow its last chunk)
	}
	last := n.entries[len(n.entries)-1].in.Seq
	for n.flushed < last && n.peer != PeerNone {
		i := int(n.flushed + 1 - n.entries[0].in.Seq)
		first := n.entries[i].in.Seq
		// Size the batch first: one exact allocation (a lone input, the
		// common case when idle, is a hundred bytes, not MaxBatchBytes).
		size, cnt := batchHeader, 0
		for j := i; j < len(n.entries) && (cnt == 0 || size+entryHeader+len(n.entries[j].in.Payload) <= n.cfg.MaxBatchBytes); j++ {
			size += entryHeader + len(n.entries[j].in.Payload)
			cnt++
		}
		b := make([]byte, batchHeader, size)
		binary.LittleEndian.PutUint64(b, first)
		binary.LittleEndian.PutUint32(b[8:], uint32(cnt))
		for j := i; j < i+cnt; j++ {
			b = appendEntry(b, &n.entries[j].in)
		}
		err := n.cfg.Link.Send(msgBatch, b)
		if errors.Is(err, link.ErrWindowFull) {
			// The link is full (a snapshot in flight, a slow peer): the
			// log keeps the inputs; its bound decides when to give up.
			n.flushBlocked = true
			return
		}
		if err != nil {
			n.dropPeer(fmt.Sprintf("sending the log: %v", err))
			return
		}
		n.flushed = first + uint64(cnt) - 1
	}
}

// releaseAll lets every held output go (the peer is gone or dropped; the
// primary is authoritative) and empties the log.
func (n *Node) releaseAll() {
	for i := range n.entries {
		n.emit(n.entries[i].outs)
	}
	clear(n.entries)
	n.entries = n.entries[:0]
	n.logBytes, n.held = 0, 0
}

func (n *Node) dropPeer(reason string) {
	n.snapImg = nil
	n.releaseAll()
	n.peer = PeerNone
	n.gen++
	n.dropSent = n.cfg.Link.Send(msgDrop, encU64s(n.gen)) == nil
	n.event(Event{Kind: EventPeerLost, Seq: n.seq, Reason: reason})
}

func (n *Node) handle(d link.Delivery) {
	if e := d.Event; e != nil {
		switch e.Kind {
		case link.EventPeerSilent:
			n.peerGone = true
			n.peerSilent("peer silent on every link")
		case link.EventPeerUp:
			n.peerGone = false
			if n.role == RoleSecondary && e.Restarted {
				// A new incarnation of the peer: the primary we followed is
				// gone even though its silence was not timed out yet (a
				// quick restart). We hold the VS: go live as on silence,
				// rather than drop the state and leave the pair with none.
				n.peerSilent("peer restarted: the primary's process is gone")
			}
			if n.role == RolePrimary && n.peer != PeerNone && !n.halted {
				// The link stream was reset (restart): our log did not reach it.
				n.dropPeer("peer restarted")
			}
			if n.role == RoleSecondary {
				// We were cut off: whatever we missed, start over cleanly.
				n.role, n.eligible, n.following = RoleJoining, false, false
			}
			if n.role == RoleJoining {
				n.send(msgJoin, nil)
			}
			n.send(msgHello, n.helloPayload())
		}
		return
	}
	var err error
	switch d.Type {
	case msgBatch:
		err = n.onBatch(d.Payload)
	case msgAck:
		err = n.onAck(d.Payload)
	case msgSnapBegin:
		var s snapBegin
		if s, err = decodeSnapBegin(d.Payload); err == nil && n.role != RolePrimary {
			n.snapMeta, n.snapBuf, n.snapGen, n.snapEnd = s, make([]byte, 0, s.size), s.gen, nil
			n.role, n.following, n.eligible = RoleJoining, false, false
		}
	case msgSnapChunk:
		err = n.onChunk(d.Payload)
	case msgSnapEnd:
		err = n.onSnapEnd(d.Payload)
	case msgSynced:
		var v []uint64
		if v, _, err = u64s("synced", d.Payload, 2, false); err == nil && n.following && v[0] == n.snapGen {
			if n.seq+1 < v[1] {
				err = fmt.Errorf("synced from seq %d but only %d applied", v[1], n.seq)
			} else {
				n.eligible = true
			}
		}
	case msgJoin:
		if n.role == RolePrimary {
			n.sendSnapshot()
		}
	case msgHello:
		var h helloMsg
		if h, err = decodeHello(d.Payload); err == nil && h.role == RolePrimary && n.role == RolePrimary {
			n.event(Event{Kind: EventSplitBrain, Seq: n.seq,
				Reason: fmt.Sprintf("peer is primary too (at seq %d, we are at %d)", h.applied, n.seq)})
		}
	case msgHandOver:
		var v []uint64
		if v, _, err = u64s("hand-over", d.Payload, 3, false); err == nil {
			n.takeOver(v[0], v[1], v[2])
		}
	case msgTookOver:
		var v []uint64
		if v, _, err = u64s("took-over", d.Payload, 2, false); err == nil {
			n.onTookOver(v[0], v[1] == 1)
		}
	case msgDrop:
		if n.role == RoleSecondary {
			n.role, n.eligible, n.following = RoleJoining, false, false
			n.send(msgJoin, nil)
		}
	default:
		err = fmt.Errorf("unknown message type %d", d.Type)
	}
	if err != nil {
		n.event(Event{Kind: EventProtocol, Seq: n.seq, Reason: err.Error()})
		if n.role != RolePrimary {
			n.role, n.following, n.eligible = RoleJoining, false, false
			n.send(msgJoin, nil)
		}
	}
}

// sendSnapshot is reintegration on the primary: snapshot at the current
// seq N, streamed in chunks as the link window allows, then its checksum
// (computed off the loop), then the log from N+1 in the same stream. The
// loop stops only for Snapshot() itself: that is the pause.
func (n *Node) sendSnapshot() {
	t := time.Now()
	if p, ok := n.rep.(SnapshotPreparer); ok {
		if err := p.PrepareSnapshot(); err != nil {
			// No snapshot: a peer that followed (a divergence) is dropped
			// and rejoins; the caller's OnEvent decides when to try again.
			if n.peer != PeerNone {
				n.dropPeer("snapshot refused: " + err.Error())
			}
			n.event(Event{Kind: EventSnapshotRefused, Seq: n.seq, Reason: err.Error()})
			return
		}
	}
	// Outputs still held stay held until the peer acks this snapshot (its
	// state then covers them): releasing them now could let a client see
	// what a secondary that goes live next would not know.
	n.gen++
	img := n.rep.Snapshot()
	pause := time.Since(t)
	hdr := snapBegin{gen: n.gen, seq: n.seq, now: n.lastNow, hash: n.hash, size: uint64(len(img))}
	n.peer = PeerJoining
	n.snapSeq, n.snapHash, n.applied, n.appliedHash, n.flushed = n.seq, n.hash, n.seq, n.hash, n.seq
	n.snapImg, n.snapOff, n.snapSumOK = img, 0, false
	select { // a stale result from an abandoned snapshot
	case <-n.snapSum:
	default:
	}
	gen := n.gen
	go func() { n.snapSum <- [2]uint64{gen, snapshotSum(img)} }()
	if !n.send(msgSnapBegin, hdr.encode()) {
		return
	}
	n.event(Event{Kind: EventSnapshotSent, Seq: n.seq, Pause: pause, Size: len(img)})
}

// pumpSnapshot queues the next chunks while the link has room.
func (n *Node) pumpSnapshot() {
	if n.snapImg == nil || n.role != RolePrimary || n.peer == PeerNone {
		n.snapImg = nil
		return
	}
	for n.snapOff < len(n.snapImg) {
		end := min(n.snapOff+n.cfg.SnapshotChunk, len(n.snapImg))
		err := n.cfg.Link.Send(msgSnapChunk, append(encU64s(n.gen, uint64(n.snapOff)), n.snapImg[n.snapOff:end]...))
		if errors.Is(err, link.ErrWindowFull) {
			return
		}
		if err != nil {
			n.dropPeer(fmt.Sprintf("sending snapshot: %v", err))
			return
		}
		n.snapOff = end
	}
	if !n.snapSumOK {
		return
	}
	if n.send(msgSnapEnd, encU64s(n.gen, n.snapSumV)) {
		n.snapImg = nil
	}
}

func (n *Node) onChunk(p []byte) error {
	c, err := decodeSnapChunk(p)
	if err != nil {
		return err
	}
	if n.role != RoleJoining || c.gen != n.snapGen || n.snapBuf == nil {
		return nil // a stale snapshot's chunk
	}
	if c.offset != uint64(len(n.snapBuf)) || c.offset+uint64(len(c.data)) > n.snapMeta.size {
		return fmt.Errorf("snapshot chunk at offset %d (%d bytes): expected offset %d of %d", c.offset, len(c.data), len(n.snapBuf), n.snapMeta.size)
	}
	n.snapBuf = append(n.snapBuf, c.data...)
	return n.maybeRestore()
}

func (n *Node) onSnapEnd(p []byte) error {
	v, _, err := u64s("snapshot end", p, 2, false)
	if err != nil {
		return err
	}
	if n.role != RoleJoining || v[0] != n.snapGen || n.snapBuf == nil {
		return nil
	}
	n.snapEnd = &[2]uint64{v[0], v[1]}
	return n.maybeRestore()
}

// maybeRestore restores once every chunk and the checksum are in.
func (n *Node) maybeRestore() error {
	m := n.snapMeta
	if uint64(len(n.snapBuf)) != m.size || n.snapEnd == nil {
		return nil
	}
	img, sum := n.snapBuf, n.snapEnd[1]
	n.snapBuf, n.snapEnd = nil, nil
	if got := snapshotSum(img); got != sum {
		return fmt.Errorf("snapshot at seq %d: checksum %#x, primary sent %#x", m.seq, got, sum)
	}
	if err := n.rep.Restore(img); err != nil {
		return fmt.Errorf("restore snapshot at seq %d: %w", m.seq, err)
	}
	if got := snapshotSum(n.rep.Snapshot()); got != sum {
		return fmt.Errorf("snapshot at seq %d does not survive Restore/Snapshot unchanged (checksum %#x, want %#x)", m.seq, got, sum)
	}
	n.seq, n.lastNow, n.hash = m.seq, m.now, m.hash
	n.lastNowAt = n.cfg.Clock()
	n.role, n.following = RoleSecondary, true
	n.send(msgAck, encU64s(m.gen, n.seq, n.hash))
	n.event(Event{Kind: EventRestored, Seq: m.seq, Size: int(m.size)})
	return nil
}

func (n *Node) onBatch(p []byte) error {
	if n.role != RoleSecondary || !n.following {
		return nil // not ours to apply: we wait for a snapshot
	}
	ins, err := decodeBatch(p)
	if err != nil {
		return err
	}
	before := n.seq
	for _, in := range ins {
		if in.Seq <= n.seq {
			continue
		}
		if in.Seq != n.seq+1 {
			err = fmt.Errorf("batch input seq %d after %d: gap in the log", in.Seq, n.seq)
			break
		}
		n.apply(in)
	}
	if n.seq != before {
		n.lastNowAt = n.cfg.Clock() // only the last applied input's arrival counts
	}
	if err != nil {
		return err
	}
	if n.cfg.BeforeAck != nil {
		if err := n.cfg.BeforeAck(n.seq); err != nil {
			n.log.Warn("lockstep: not acking: BeforeAck failed", "seq", n.seq, "err", err)
			return nil
		}
	}
	n.send(msgAck, encU64s(n.snapGen, n.seq, n.hash))
	return nil
}

// onAck is the output rule: outputs of inputs up to the acked one leave
// now, after the divergence check.
func (n *Node) onAck(p []byte) error {
	a, err := decodeAck(p)
	if err != nil {
		return err
	}
	if n.role != RolePrimary || n.peer == PeerNone || a.gen != n.gen {
		return nil // stale
	}
	if a.applied > n.seq || a.applied < n.applied {
		return fmt.Errorf("ack of seq %d outside [%d, %d]", a.applied, n.applied, n.seq)
	}
	var want uint64
	switch {
	case a.applied == n.snapSeq:
		want = n.snapHash
	case a.applied == n.applied:
		want = n.appliedHash // a repeated ack
	case len(n.entries) > 0 && a.applied >= n.entries[0].in.Seq && a.applied <= n.entries[len(n.entries)-1].in.Seq:
		want = n.entries[a.applied-n.entries[0].in.Seq].hash
	default:
		return fmt.Errorf("ack of seq %d: not in the log", a.applied)
	}
	if want != a.hash {
		n.event(Event{Kind: EventDivergence, Seq: a.applied,
			Reason: fmt.Sprintf("peer output hash %#x at seq %d, ours %#x", a.hash, a.applied, want)})
		n.sendSnapshot()
		return nil
	}
	var now int64
	if n.cfg.OutputHeld != nil {
		now = n.vnow()
	}
	k := 0
	for k < len(n.entries) && n.entries[k].in.Seq <= a.applied {
		e := &n.entries[k]
		if len(e.outs) > 0 {
			if n.cfg.OutputHeld != nil {
				n.cfg.OutputHeld(time.Duration(max(now-e.in.Now, 0)))
			}
			n.emit(e.outs)
			n.held--
		}
		n.logBytes -= len(e.in.Payload) + entryHeader
		k++
	}
	clear(n.entries[:k])
	n.entries = n.entries[k:]
	n.applied, n.appliedHash = a.applied, a.hash
	n.halted = false // the peer is back and follows this generation
	if n.peer == PeerJoining {
		// The peer holds the snapshot; once every input stamped so far is
		// in the stream ahead of msgSynced, gate from here.
		n.flush()
		n.peer = PeerSynced
		n.send(msgSynced, encU64s(n.gen, n.seq+1))
		n.event(Event{Kind: EventPeerSynced, Seq: n.seq + 1})
	}
	return nil
}

// peerSilent: the primary carries on solo; an in-sync secondary goes live.
func (n *Node) peerSilent(why string) {
	switch n.role {
	case RolePrimary:
		if n.peer == PeerNone {
			return
		}
		if n.cfg.MayGoOnAlone != nil && !n.cfg.MayGoOnAlone() {
			if !n.halted {
				n.halted = true
				n.event(Event{Kind: EventNoGoLive, Seq: n.seq, Reason: why + ": may not go on alone; outputs held"})
			}
			return
		}
		n.halted = false
		// dropPeer: release what waited, new generation, drop notice (it
		// reaches the peer if the link comes back before a snapshot).
		n.dropPeer(why)
	case RoleSecondary, RoleJoining:
		if !n.eligible {
			n.event(Event{Kind: EventNoGoLive, Seq: n.seq, Reason: why + ": not in sync with the primary's log"})
			return
		}
		if n.cfg.MayGoLive != nil && !n.cfg.MayGoLive() {
			n.event(Event{Kind: EventNoGoLive, Seq: n.seq, Reason: why + ": split-brain guard refused"})
			return
		}
		// Every message before the silence is applied already: the log we
		// hold is finished.
		n.goLive(why, false)
	}
}

// goLive makes a secondary whose log is finished the primary. The virtual
// clock goes on from its last input plus the time since that input
// arrived: the silence counts, as it did on the primary's clock, so the
// VS's retransmission timers for what the dead primary never sent are due
// now, not a full RTO after go-live. Time still enters the replica only
// through the Input.Now this node stamps, and it never goes back.
func (n *Node) goLive(why string, planned bool) {
	now := n.cfg.Clock()
	n.role, n.peer, n.eligible, n.following = RolePrimary, PeerNone, false, false
	n.vbase, n.cbase = n.lastNow+max(now-n.lastNowAt, 0), now
	n.stamp(machine.InCommand, machine.GratuitousARPCommand())
	n.event(Event{Kind: EventGoLive, Seq: n.seq, Reason: why, Planned: planned})
}

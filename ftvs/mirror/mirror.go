package mirror

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// EventKind says what happened to a mirrored disk.
type EventKind uint8

const (
	EventDetached    EventKind = iota + 1 // local copy hit an I/O error; I/O goes through the peer
	EventSolo                             // peer lost: generations rotated, marking
	EventResyncStart                      // this node streams marked regions to the peer
	EventResyncDone                       // the target took the source's generations
	EventSplitBrain                       // waiting for ftvs vdisk resolve --discard-node N
	EventRefused                          // Decide refused (unrelated data, both bad, ...)
	EventFlushFailed                      // deferred (secondary) flush failed
)

func (k EventKind) String() string {
	return [...]string{"?", "detached", "solo", "resync-start", "resync-done", "split-brain", "refused", "flush-failed"}[min(int(k), 7)]
}

// Event is a state change for the daemon's event log and alerts.
type Event struct {
	Kind   EventKind
	Node   uint8 // the node this mirror runs on
	Reason string
}

// Config configures one mirrored disk on one CoServer.
type Config struct {
	Disk *vdisk.Disk // this CoServer's copy, opened with vdisk.Open
	// Link is the peer; Send is used, and Incoming only by Run (a daemon
	// that demultiplexes itself calls Handle instead and never Run).
	Link     Transport
	TypeBase uint8 // request type; replies use TypeBase+1. 0: DefaultTypeBase
	// NewGen returns a fresh random generation (crypto/rand in the shell).
	NewGen  func() uint64
	OnEvent func(Event)
	// CallTimeout bounds one remote operation (0: 10 s).
	CallTimeout time.Duration
	// ResyncPacer limits resync bandwidth (nil: vdisk.NewTokenBucket of
	// ResyncRate, or unlimited when ResyncRate is 0).
	ResyncPacer vdisk.Pacer
	ResyncRate  int64
	// ResyncChunk (0: 1 MiB) and ResyncInFlight (0: 4) shape the stream.
	ResyncChunk    int64
	ResyncInFlight int
	// ClientMaxWait: a resync chunk waits at most this long for client I/O
	// to go idle (0: 50 ms).
	ClientMaxWait time.Duration
	// HistoryWrites and HistoryBytes bound the lockstep write history
	// (0: 4096 writes, 32 MiB of data) that lets a detached node's reads be
	// served at its own write count (see ReadAt).
	HistoryWrites int
	HistoryBytes  int
}

type histWrite struct {
	count  uint64
	off, n int64
	data   []byte // in lockstep: a copy, so reads can be rebuilt at this count
}

// Mirror is one CoServer's side of a mirrored virtual disk and the
// blockdev.Device the machine uses. Safe for concurrent use.
type Mirror struct {
	cfg  Config
	disk *vdisk.Disk
	ep   *endpoint
	node uint8
	cf   *vdisk.ClientFirst

	mu         sync.Mutex
	lockstep   bool   // the peer runs the VS too and applies the writes itself
	detached   bool   // local copy failed: I/O goes to the peer
	divTarget  bool   // lockstep secondary resynchronised after a divergence: drop the replica's writes until the restore
	deferFlush bool   // secondary: Flush only notes; FlushPending does it before the ack
	pendFlush  bool   // a deferred flush is owed
	blocked    string // split brain / refusal: no go-live, no resync
	resyncing  bool   // this node is a resync source between Connect and FinishResync
	bulk       bulkState
	// compared: since Open this copy was compared with the peer's (Connect),
	// ran in lockstep, or the operator forced it; a copy that was running
	// when its CoServer stopped needs one of these before going live alone.
	compared    bool
	resyncPeer  vdisk.Metadata
	writes      uint64     // the machine's writes since StartLockstep (applied or skipped)
	flushed     uint64     // writes covered by this copy's last completed flush
	writeMu     sync.Mutex // a machine write vs. the primary's mark clearing
	hist        []histWrite
	histNext    int
	histBytes   int
	targetDone  chan struct{} // closed when the source ends our resync
	bulkResult  *string       // target: the source's bulk resync outcome ("" ok), consumed by Connect
	bulkSig     chan struct{} // closed when bulkResult is set
	stats       Stats
	resyncStats vdisk.ResyncStats
}

// Stats counts what the mirror did.
type Stats struct {
	LocalReads, LocalWrites, RemoteReads, RemoteWrites uint64
	SkippedWrites                                      uint64 // detached in lockstep: the peer applies them
	Flushes, DeferredFlushes                           uint64
	ServedRequests                                     uint64
	MarkClears                                         uint64 // lockstep: marks dropped after both copies flushed
}

var _ blockdev.Device = (*Mirror)(nil)

// New builds the mirror of an open copy. It starts with the peer absent:
// call StartLockstep, PeerLost or Connect as the daemon's state says.
func New(cfg Config) (*Mirror, error) {
	if cfg.Disk == nil || cfg.Link == nil || cfg.NewGen == nil {
		return nil, errors.New("mirror config: Disk, Link and NewGen are required")
	}
	if cfg.TypeBase == 0 {
		cfg.TypeBase = DefaultTypeBase
	}
	if cfg.TypeBase < 64 || cfg.TypeBase == 255 {
		return nil, fmt.Errorf("mirror config: type base %d, want 64..254 (lockstep uses the low types)", cfg.TypeBase)
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 10 * time.Second
	}
	if cfg.ResyncChunk <= 0 {
		cfg.ResyncChunk = 1 << 20
	}
	if cfg.ResyncChunk > MaxData {
		return nil, fmt.Errorf("mirror config: resync chunk %d exceeds %d", cfg.ResyncChunk, MaxData)
	}
	if cfg.ResyncInFlight <= 0 {
		cfg.ResyncInFlight = 4
	}
	if cfg.ClientMaxWait <= 0 {
		cfg.ClientMaxWait = 50 * time.Millisecond
	}
	if cfg.HistoryWrites <= 0 {
		cfg.HistoryWrites = 4096
	}
	if cfg.HistoryBytes <= 0 {
		cfg.HistoryBytes = 32 << 20
	}
	if cfg.ResyncPacer == nil && cfg.ResyncRate > 0 {
		cfg.ResyncPacer = vdisk.NewTokenBucket(cfg.ResyncRate, 0)
	}
	m := &Mirror{cfg: cfg, disk: cfg.Disk, node: cfg.Disk.Metadata().Node,
		cf: &vdisk.ClientFirst{MaxWait: cfg.ClientMaxWait}, hist: make([]histWrite, cfg.HistoryWrites)}
	m.bulkSig = make(chan struct{})
	m.ep = newEndpoint(cfg.Link.Send, cfg.TypeBase, cfg.CallTimeout, m.serve)
	return m, nil
}

// Run serves the peer's requests until ctx ends. With IncomingToo it also
// reads Link.Incoming itself (a transport used by this mirror only).
func (m *Mirror) Run(ctx context.Context, incomingToo bool) {
	if incomingToo {
		go func() {
			in := m.cfg.Link.Incoming()
			for {
				select {
				case <-ctx.Done():
					return
				case d, ok := <-in:
					if !ok {
						return
					}
					m.Handle(d)
				}
			}
		}()
	}
	m.ep.run(ctx)
}

// Handle takes one delivery from the link; it reports whether the message
// was this mirror's. The payload is kept: the caller must not reuse it
// (link deliveries are fresh copies). Undecodable messages are counted and dropped (the
// caller times out).
func (m *Mirror) Handle(d link.Delivery) bool {
	ok, _ := m.ep.handle(d)
	return ok
}

// IsMine says whether a link message type belongs to this mirror.
func (m *Mirror) IsMine(typ uint8) bool {
	return typ == m.cfg.TypeBase || typ == m.cfg.TypeBase+1
}

func (m *Mirror) event(k EventKind, reason string) {
	if m.cfg.OnEvent != nil {
		m.cfg.OnEvent(Event{Kind: k, Node: m.node, Reason: reason})
	}
}

// Disk is the local copy.
func (m *Mirror) Disk() *vdisk.Disk { return m.disk }

// Stats returns the counters.
func (m *Mirror) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// Detached reports whether the local copy was detached.
func (m *Mirror) Detached() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.detached
}

func (m *Mirror) Size() int64     { return m.disk.Size() }
func (m *Mirror) SectorSize() int { return m.disk.SectorSize() }

// StartLockstep is called when both CoServers run the VS (after the
// snapshot hand-over, on both): writes are applied locally by each side,
// the crashed-primary flag is set before the first one, and marking stays
// on so that a double crash resyncs only regions with writes in flight.
func (m *Mirror) StartLockstep() error {
	m.mu.Lock()
	det := m.detached
	m.lockstep, m.compared = true, true
	m.divTarget = false // the restored replica's writes count again
	// Both replicas start counting at the same input (the snapshot).
	m.writes, m.flushed, m.histNext, m.histBytes = 0, 0, 0, 0
	clear(m.hist)
	m.mu.Unlock()
	if det {
		return nil
	}
	m.disk.SetMarking(true)
	if err := m.disk.MarkRunning(); err != nil {
		return m.detach(fmt.Errorf("mark running: %w", err), 0, 0)
	}
	return nil
}

// SetDeferFlush makes Flush only note that a flush is owed; FlushPending
// (lockstep.Config.BeforeAck on the secondary) performs it before the ack,
// once per batch. Turning it off performs any owed flush (go-live).
func (m *Mirror) SetDeferFlush(on bool) error {
	m.mu.Lock()
	m.deferFlush = on
	m.mu.Unlock()
	if !on {
		return m.FlushPending()
	}
	return nil
}

// FlushPending performs a deferred flush. A local failure detaches the
// copy (the peer's copy, flushed by the peer itself, carries on).
func (m *Mirror) FlushPending() error {
	m.mu.Lock()
	owed := m.pendFlush && !m.detached
	m.pendFlush = false
	upTo, ls := m.writes, m.lockstep
	m.mu.Unlock()
	if !owed {
		return nil
	}
	if err := m.disk.Flush(); err != nil {
		m.event(EventFlushFailed, err.Error())
		return m.detach(fmt.Errorf("deferred flush: %w", err), 0, 0)
	}
	m.count(func(s *Stats) { s.Flushes++; m.flushed = max(m.flushed, upTo) })
	if ls {
		// Tell the primary, off the lockstep loop: it may drop marks.
		go m.ep.call(context.Background(), Request{Op: OpFlushed, Count: upTo})
	}
	return nil
}

// peerFlushed runs on the primary when the secondary reports its copy
// durable through its write w (lockstep write counts are aligned at
// StartLockstep). Writes up to min(w, our own last flush) are then on both
// copies: every mark is dropped (vdisk's ClearSynced keeps writes in
// flight) and the writes after that point, from the history, are marked
// again. This bounds a double crash's resync to the recent writes.
func (m *Mirror) peerFlushed(w uint64) error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	if !m.lockstep || m.detached {
		m.mu.Unlock()
		return nil
	}
	safe := min(w, m.flushed)
	if m.writes-safe >= uint64(len(m.hist)) {
		m.mu.Unlock()
		return nil // too far behind to know what to keep: keep everything
	}
	var keep [][2]int64
	for _, h := range m.hist {
		if h.count > safe && h.count <= m.writes {
			keep = append(keep, [2]int64{h.off, h.n})
		}
	}
	m.mu.Unlock()
	if err := m.disk.ClearSynced(); err != nil {
		return err
	}
	m.count(func(s *Stats) { s.MarkClears++ })
	if len(keep) > 0 {
		return m.disk.MarkRanges(keep)
	}
	return nil
}

// detach stops trusting the local copy. The peer goes solo and marks the
// failed range, so the union of marks covers it at the next resync.
func (m *Mirror) detach(cause error, off, n int64) error {
	m.mu.Lock()
	if m.detached {
		m.mu.Unlock()
		return nil
	}
	m.detached = true
	m.mu.Unlock()
	derr := m.disk.Detach(cause)
	req := Request{Op: OpGoSolo, Off: off, Count: uint64(n)}
	_, perr := m.ep.call(context.Background(), req)
	reason := fmt.Sprintf("local copy detached: %v", cause)
	if derr != nil {
		reason += fmt.Sprintf(" (recording it failed too: %v)", derr)
	}
	if perr != nil {
		reason += fmt.Sprintf("; peer could not go solo: %v", perr)
	}
	m.event(EventDetached, reason)
	if perr != nil {
		return fmt.Errorf("%s: %w", reason, perr)
	}
	return nil
}

func (m *Mirror) recordWrite(off int64, p []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writes++
	old := &m.hist[m.histNext]
	m.histBytes -= len(old.data)
	h := histWrite{count: m.writes, off: off, n: int64(len(p))}
	if m.lockstep && len(p) <= m.cfg.HistoryBytes {
		// Evict the oldest data until this write fits the byte budget.
		for i := 1; m.histBytes+len(p) > m.cfg.HistoryBytes && i < len(m.hist); i++ {
			e := &m.hist[(m.histNext+i)%len(m.hist)]
			m.histBytes -= len(e.data)
			e.data = nil
		}
		h.data = append([]byte(nil), p...)
		m.histBytes += len(p)
	}
	*old = h
	m.histNext = (m.histNext + 1) % len(m.hist)
}

// overlay applies to b (read at off from a peer whose replica had applied
// peerCount writes) this node's writes after peerCount up to upTo, in
// order: the result is the content as of this node's write upTo.
func (m *Mirror) overlay(b []byte, off int64, peerCount, upTo uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if upTo-peerCount >= uint64(len(m.hist)) || upTo > m.writes {
		return fmt.Errorf("read [%d, %d): the peer is %d writes behind, beyond the %d-write history", off, off+int64(len(b)), upTo-peerCount, len(m.hist))
	}
	var hs []*histWrite
	for i := range m.hist {
		h := &m.hist[i]
		if h.count > peerCount && h.count <= upTo && h.off < off+int64(len(b)) && off < h.off+h.n {
			hs = append(hs, h)
		}
	}
	slices.SortFunc(hs, func(a, b *histWrite) int { return cmp.Compare(a.count, b.count) })
	for _, h := range hs {
		if h.data == nil {
			return fmt.Errorf("read [%d, %d): write %d's data left the history", off, off+int64(len(b)), h.count)
		}
		lo, hi := max(off, h.off), min(off+int64(len(b)), h.off+h.n)
		copy(b[lo-off:hi-off], h.data[lo-h.off:hi-h.off])
	}
	return nil
}

// ReadAt serves the machine's read: locally, or from the peer once the
// local copy is detached (an error detaches it and retries there).
func (m *Mirror) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), m.Size(), m.SectorSize()); err != nil {
		return 0, err
	}
	m.cf.Begin()
	defer m.cf.End()
	m.mu.Lock()
	det, wait := m.detached, uint64(0)
	if m.lockstep {
		wait = m.writes
	}
	m.mu.Unlock()
	if !det {
		n, err := m.disk.ReadAt(p, off)
		if err == nil {
			m.count(func(s *Stats) { s.LocalReads++ })
			return n, nil
		}
		if derr := m.detach(fmt.Errorf("read [%d, %d): %w", off, off+int64(len(p)), err), 0, 0); derr != nil {
			return 0, derr
		}
	}
	return m.remoteRead(p, off, wait)
}

func (m *Mirror) remoteRead(p []byte, off int64, wait uint64) (int, error) {
	for done := 0; done < len(p); {
		k := min(len(p)-done, MaxData)
		at := off + int64(done)
		reply, err := m.ep.call(context.Background(), Request{Op: OpRead, Off: at, Count: uint64(k), Wait: wait})
		if err != nil {
			return done, err
		}
		if len(reply) != 8+k {
			return done, fmt.Errorf("mirror: remote read at %d: %d bytes, want %d", at, len(reply)-8, k)
		}
		copy(p[done:], reply[8:])
		if peer := u64(reply); wait > 0 && peer < wait {
			if err := m.overlay(p[done:done+k], at, peer, wait); err != nil {
				return done, fmt.Errorf("mirror: remote read: %w", err)
			}
		}
		done += k
	}
	m.count(func(s *Stats) { s.RemoteReads++ })
	return len(p), nil
}

// WriteAt applies the machine's write: locally (marked first while the
// copy marks), or, detached, through the peer unless the peer applies it
// itself in lockstep.
func (m *Mirror) WriteAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), m.Size(), m.SectorSize()); err != nil {
		return 0, err
	}
	m.cf.Begin()
	defer m.cf.End()
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	// Counted once the data is in place (or the write failed): a peer's
	// gated read at this count must see it. Every machine write counts, so
	// both replicas' counts stay aligned.
	defer m.recordWrite(off, p)
	m.mu.Lock()
	det, ls, div := m.detached, m.lockstep, m.divTarget
	m.mu.Unlock()
	if !det && ls && div {
		return m.dropDivergedWrite(p, off)
	}
	if !det {
		n, err := m.disk.WriteAt(p, off)
		if err == nil {
			m.count(func(s *Stats) { s.LocalWrites++ })
			return n, nil
		}
		if derr := m.detach(fmt.Errorf("write [%d, %d): %w", off, off+int64(len(p)), err), off, int64(len(p))); derr != nil {
			return 0, derr
		}
	}
	if ls {
		m.count(func(s *Stats) { s.SkippedWrites++ })
		return len(p), nil
	}
	for done := 0; done < len(p); {
		k := min(len(p)-done, MaxData)
		if _, err := m.ep.call(context.Background(), Request{Op: OpWrite, Off: off + int64(done), Data: p[done : done+k]}); err != nil {
			return done, err
		}
		done += k
	}
	m.count(func(s *Stats) { s.RemoteWrites++ })
	return len(p), nil
}

// Flush makes the machine's completed writes durable on this node's copy
// (the peer's is flushed by the peer's own step in lockstep, or here when
// the local copy is detached and the peer does not run the VS).
func (m *Mirror) Flush() error {
	m.mu.Lock()
	det, ls, def, upTo := m.detached, m.lockstep, m.deferFlush, m.writes
	if def && !det {
		m.pendFlush = true
		m.stats.DeferredFlushes++
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	if !det {
		if err := m.disk.Flush(); err == nil {
			m.count(func(s *Stats) { s.Flushes++; m.flushed = max(m.flushed, upTo) })
			return nil
		} else if derr := m.detach(fmt.Errorf("flush: %w", err), 0, 0); derr != nil {
			return derr
		}
	}
	if ls {
		return nil
	}
	_, err := m.ep.call(context.Background(), Request{Op: OpFlush})
	return err
}

func (m *Mirror) count(f func(*Stats)) {
	m.mu.Lock()
	f(&m.stats)
	m.mu.Unlock()
}

// MayGoLive is the daemon's go-live guard for this disk: only an UpToDate,
// attached copy with no pending split brain may serve the VS alone.
func (m *Mirror) MayGoLive() (bool, string) {
	m.mu.Lock()
	det, blocked := m.detached, m.blocked
	m.mu.Unlock()
	if det {
		return false, fmt.Sprintf("node %d: local copy detached after an I/O error", m.node)
	}
	if blocked != "" {
		return false, fmt.Sprintf("node %d: %s", m.node, blocked)
	}
	m.mu.Lock()
	compared := m.compared
	m.mu.Unlock()
	if md := m.disk.Metadata(); md.Crashed() && !compared {
		return false, fmt.Sprintf("node %d: this copy was running when its CoServer stopped and has not met the peer since: the peer may have gone on with newer data (ForceAlone overrides)", m.node)
	}
	if ok, why := vdisk.CanGoLiveAlone(m.disk.Metadata()); !ok {
		return false, fmt.Sprintf("node %d: %s", m.node, why)
	}
	return true, ""
}

// ForceAlone is the operator's override of MayGoLive's restart check (the
// peer is known dead for good and this copy is the one to keep).
func (m *Mirror) ForceAlone() {
	m.mu.Lock()
	m.compared = true
	m.mu.Unlock()
}

// PeerLost is the survivor's transition: the generations rotate and the
// copy marks every write from now on, before the next write is accepted.
// It fails (and the VS must not go on) when this copy may not serve alone.
func (m *Mirror) PeerLost() error {
	m.mu.Lock()
	m.lockstep = false
	m.resyncing = false // a resync in progress ended with the peer; Connect starts the next
	m.bulk = bulkIdle
	det := m.detached
	m.mu.Unlock()
	m.ep.failAll(ErrPeerLost)
	if det {
		return fmt.Errorf("mirror node %d: peer lost and the local copy is detached: no copy left", m.node)
	}
	if err := m.disk.GoSolo(m.cfg.NewGen()); err != nil {
		return fmt.Errorf("mirror node %d: go solo: %w", m.node, err)
	}
	m.event(EventSolo, "peer lost: new generation, marking writes")
	return nil
}

func u64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

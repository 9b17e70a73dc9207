package mirror

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// bulkState is a resync source's phase as OpResyncState reports it to a
// target waiting in Connect. The target trusts only this answer, not the
// OpBulkDone notice alone: each side's Connect rounds start on its own
// link events, so a target may come back to Connect after the source's
// round is over (and no new one will run) or while none runs at all.
type bulkState uint8

const (
	bulkIdle    bulkState = iota // no resync toward the peer, or a round is starting
	bulkRunning                  // BeginResync persisted; bulk passes running
	bulkOver                     // bulk passes over; FinishResync at the hand-over
)

// bulkPoll is how often a waiting target asks the source how its bulk goes.
const bulkPoll = time.Second

// ErrDetached: the local copy was detached after an I/O error; only the
// operator (a new disk, a new copy) ends it.
var ErrDetached = errors.New("mirror: local copy detached")

// ErrNoResync: a target waited for a source that runs no resync toward it;
// the caller runs a new Connect round.
var ErrNoResync = errors.New("mirror: the peer runs no resync toward this copy")

func (m *Mirror) setBulk(s bulkState) {
	m.mu.Lock()
	m.bulk = s
	m.mu.Unlock()
}

// remoteTarget is the resync engine's writer on the peer's copy.
type remoteTarget struct{ m *Mirror }

func (t remoteTarget) WriteAt(p []byte, off int64) (int, error) {
	if _, err := t.m.ep.call(context.Background(), Request{Op: OpResyncWrite, Off: off, Data: p}); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ChunkHeadroom and WriteChunk make remoteTarget a vdisk.ChunkWriter: the
// engine reads each chunk behind room for the request header, and the
// request goes to the link without copying the data again.
func (remoteTarget) ChunkHeadroom() int { return reqHeader }

func (t remoteTarget) WriteChunk(buf []byte, off int64) error {
	_, err := t.m.ep.callFramed(context.Background(), Request{Op: OpResyncWrite, Off: off}, buf)
	return err
}

func (m *Mirror) peerMeta(ctx context.Context) (vdisk.Metadata, *vdisk.Bitmap, error) {
	b, err := m.ep.call(ctx, Request{Op: OpGetMeta})
	if err != nil {
		return vdisk.Metadata{}, nil, err
	}
	if len(b) < vdisk.SlotSize {
		return vdisk.Metadata{}, nil, fmt.Errorf("peer metadata reply of %d bytes", len(b))
	}
	md, err := vdisk.Decode(b[:vdisk.SlotSize])
	if err != nil {
		return md, nil, fmt.Errorf("peer metadata: %w", err)
	}
	bm := vdisk.NewBitmap(md.DataSize, md.Granularity)
	if err := bm.Load(b[vdisk.SlotSize:]); err != nil {
		return md, nil, fmt.Errorf("peer on-disk bitmap: %w", err)
	}
	return md, bm, nil
}

func (m *Mirror) setPeerMeta(ctx context.Context, md vdisk.Metadata) error {
	_, err := m.ep.call(ctx, Request{Op: OpSetMeta, Data: md.Encode()})
	return err
}

// Connect runs when the peer is back (both CoServers call it): the
// metadata are exchanged and Decide says which way data flows. The source
// marks what must be copied, persists BeginResync (itself, then the
// target) and streams the marked regions in address order, rate-limited,
// client I/O first, while the VS keeps running and marking; it returns
// when a pass found nothing left. The daemon then calls FinishResync
// inside the lockstep snapshot pause. The target only answers; its copy
// stays Inconsistent (never goes live) until the source's FinishResync.
// Split brain, unrelated data and refusals return an error and write
// nothing; MayGoLive says no until an operator resolves it.
func (m *Mirror) Connect(ctx context.Context) (vdisk.Decision, error) {
	if m.Detached() {
		return vdisk.Decision{}, fmt.Errorf("mirror node %d: %w; replace the disk and recreate the copy", m.node, ErrDetached)
	}
	local, peer, peerMarks, err := m.bothMetas(ctx)
	if err != nil {
		return vdisk.Decision{}, err
	}
	m.setBulk(bulkIdle) // a new round: the target waits for its BeginResync
	dec := vdisk.Decide(local, peer)
	switch dec.Action {
	case vdisk.InSync:
		_, dirty := m.disk.Marks()
		if s := vdisk.Settle(local, dirty == 0); s.Gens != local.Gens {
			if err := m.disk.Update(func(x *vdisk.Metadata) { *x = s }); err != nil {
				return dec, err
			}
		}
		m.setBlocked("")
		m.mu.Lock()
		m.compared = true
		m.mu.Unlock()
		return dec, nil
	case vdisk.SplitBrain:
		m.setBlocked("split brain: " + dec.Reason)
		m.event(EventSplitBrain, dec.String())
		return dec, fmt.Errorf("mirror node %d: %w: %s", m.node, vdisk.ErrSplitBrain, dec.Reason)
	case vdisk.BitmapResync, vdisk.FullSync:
	default:
		m.setBlocked(dec.String())
		m.event(EventRefused, dec.String())
		return dec, fmt.Errorf("mirror node %d: %w: %s", m.node, vdisk.ErrRefused, dec)
	}
	m.setBlocked("")
	m.mu.Lock()
	m.compared = true
	m.mu.Unlock()
	if dec.Source != m.node {
		return dec, m.awaitBulk(ctx) // the peer drives; we serve its writes
	}
	full := dec.Action == vdisk.FullSync
	if full {
		err = m.disk.MarkAll()
	} else if dec.UnionBitmaps {
		err = m.disk.AddMarks(peerMarks)
	}
	if err != nil {
		return dec, fmt.Errorf("mirror node %d: mark regions to copy: %w", m.node, err)
	}
	nsrc, ndst := vdisk.BeginResync(local, peer, full, m.cfg.NewGen())
	if err := m.disk.Update(func(x *vdisk.Metadata) { *x = nsrc }); err != nil {
		return dec, fmt.Errorf("mirror node %d: begin resync: %w", m.node, err)
	}
	m.setBulk(bulkRunning)
	if err := m.setPeerMeta(ctx, ndst); err != nil {
		m.setBulk(bulkIdle)
		return dec, fmt.Errorf("mirror node %d: begin resync on the peer: %w", m.node, err)
	}
	m.disk.SetMarking(true) // the VS keeps writing here; further passes copy it
	m.mu.Lock()
	m.resyncing, m.resyncPeer = true, ndst
	m.mu.Unlock()
	m.event(EventResyncStart, dec.String())
	_, err = m.runResync(ctx)
	msg := ""
	if err != nil {
		msg = err.Error()
		m.setBulk(bulkIdle)
	} else {
		m.setBulk(bulkOver)
	}
	if _, nerr := m.ep.call(ctx, Request{Op: OpBulkDone, Data: []byte(msg)}); nerr != nil && err == nil {
		err = fmt.Errorf("mirror node %d: tell the target the bulk resync is over: %w", m.node, nerr)
	}
	return dec, err
}

// metaRetries bounds how often bothMetas reads again when this copy's
// metadata changed while the peer's were asked for.
const metaRetries = 8

// bothMetas returns this copy's metadata and the peer's as they were at one
// moment. Both nodes Connect at once and the source persists BeginResync
// on itself before on the target: a target that read the peer's metadata
// before the source's BeginResync and its own after it would hold a pair
// that never existed (the source new, itself Inconsistent with the source's
// fresh generation), which Decide rightly refuses ("neither copy holds good
// data"). So this copy's metadata are read before and after the peer's;
// when Decide's inputs changed in between (the peer wrote them: OpSetMeta)
// everything is read again. The source writes itself first, so a peer
// reply older than its write to us is caught here.
func (m *Mirror) bothMetas(ctx context.Context) (local, peer vdisk.Metadata, peerMarks *vdisk.Bitmap, err error) {
	for try := 0; ; try++ {
		before := m.disk.Metadata()
		peer, peerMarks, err = m.peerMeta(ctx)
		if err != nil {
			return local, peer, nil, fmt.Errorf("mirror node %d: peer metadata: %w", m.node, err)
		}
		local = m.disk.Metadata()
		if sameDecisionInputs(before, local) {
			return local, peer, peerMarks, nil
		}
		if try == metaRetries {
			return local, peer, nil, fmt.Errorf("mirror node %d: this copy's metadata changed %d times while the peer's were read", m.node, try+1)
		}
	}
}

// sameDecisionInputs: a and b agree on everything Decide reads that can
// change (identity, node and size never do).
func sameDecisionInputs(a, b vdisk.Metadata) bool {
	return a.Gens == b.Gens && a.State == b.State && a.Flags == b.Flags
}

// awaitBulk holds a resync target's Connect until the source's bulk passes
// are over, so that the daemon asks for the lockstep snapshot only then.
// The source's OpBulkDone wakes it; every bulkPoll it also asks the source
// (OpResyncState), which is what decides. It ends with an error, and the
// caller runs a new Connect round, on a link event (peer silent or up
// again), when the peer is lost, when the source's round failed, or when
// the source ran no resync toward this copy for CallTimeout. A source that
// leaves the question unanswered (an older version drops the unknown op)
// is not asked again: its OpBulkDone alone ends the wait, as before.
func (m *Mirror) awaitBulk(ctx context.Context) error {
	linkEv := m.ep.linkEvents()
	ticker := time.NewTicker(bulkPoll)
	defer ticker.Stop()
	poll := ticker.C
	var idleSince time.Time
	for {
		m.mu.Lock()
		sig := m.bulkSig
		m.mu.Unlock()
		select {
		case <-sig:
			m.mu.Lock()
			res := m.bulkResult
			m.bulkResult, m.bulkSig = nil, make(chan struct{})
			m.mu.Unlock()
			if res != nil && *res != "" {
				return fmt.Errorf("mirror node %d: the source's resync failed: %s", m.node, *res)
			}
		case <-linkEv:
			return fmt.Errorf("mirror node %d: waiting for the source's resync: link event: %w", m.node, ErrPeerLost)
		case <-ctx.Done():
			return ctx.Err()
		case <-poll:
		}
		if poll == nil {
			return nil // an older source's OpBulkDone (it cannot be asked)
		}
		b, err := m.ep.call(ctx, Request{Op: OpResyncState})
		if errors.Is(err, errNoReply) {
			poll = nil
			continue
		}
		if err != nil {
			return fmt.Errorf("mirror node %d: ask the source how its resync goes: %w", m.node, err)
		}
		if len(b) != 1 {
			return fmt.Errorf("mirror node %d: resync-state reply of %d bytes, want 1", m.node, len(b))
		}
		switch bulkState(b[0]) {
		case bulkOver:
			return nil
		case bulkRunning:
			idleSince = time.Time{}
		default:
			if idleSince.IsZero() {
				idleSince = time.Now()
			} else if time.Since(idleSince) > m.cfg.CallTimeout {
				return fmt.Errorf("mirror node %d: for %v: %w", m.node, m.cfg.CallTimeout, ErrNoResync)
			}
		}
	}
}

func (m *Mirror) runResync(ctx context.Context) (vdisk.ResyncStats, error) {
	st, err := m.resync(ctx, &vdisk.Resync{Pacer: m.cfg.ResyncPacer, Yield: m.cf})
	if err != nil {
		return st, fmt.Errorf("mirror node %d: resync: %w", m.node, err)
	}
	return st, nil
}

// resync runs r from this copy to the peer's (the source, target, marks,
// flush, progress and chunking filled in here; r brings the rest) and adds
// what it did to the node's resync stats.
func (m *Mirror) resync(ctx context.Context, r *vdisk.Resync) (vdisk.ResyncStats, error) {
	r.Src, r.Dst, r.Size, r.Marks, r.Progress = m.disk, remoteTarget{m}, m.Size(), m.disk, m.disk
	r.FlushDst = func() error {
		_, err := m.ep.call(context.Background(), Request{Op: OpResyncFlush})
		return err
	}
	r.Chunk, r.InFlight = m.cfg.ResyncChunk, m.cfg.ResyncInFlight
	st, err := r.Run(ctx)
	m.mu.Lock()
	m.resyncStats.Copied += st.Copied
	m.resyncStats.Skipped += st.Skipped
	m.resyncStats.Chunks += st.Chunks
	m.resyncStats.Passes += st.Passes
	m.resyncStats.Checkpoints += st.Checkpoints
	m.mu.Unlock()
	return st, err
}

// ResyncStats returns what this node's resyncs copied so far.
func (m *Mirror) ResyncStats() vdisk.ResyncStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.resyncStats
}

// FinishResync is the source's final step, run while the VS is paused
// (inside the replica's Snapshot at the hand-over, so no write can slip
// between the last pass and lockstep): the last marks are copied, the
// target drops its own marks and takes the source's generations
// (persisted on the target first), then the source's. A no-op when this
// node is not a resync source.
func (m *Mirror) FinishResync(ctx context.Context) error {
	m.mu.Lock()
	if !m.resyncing {
		m.mu.Unlock()
		return nil
	}
	m.mu.Unlock()
	if _, err := m.runResync(ctx); err != nil {
		return err
	}
	if _, err := m.ep.call(ctx, Request{Op: OpClearMarks}); err != nil {
		return fmt.Errorf("mirror node %d: target clear marks: %w", m.node, err)
	}
	peer, _, err := m.peerMeta(ctx)
	if err != nil {
		return fmt.Errorf("mirror node %d: end resync: %w", m.node, err)
	}
	esrc, edst := vdisk.EndResync(m.disk.Metadata(), peer)
	if err := m.setPeerMeta(ctx, edst); err != nil {
		return fmt.Errorf("mirror node %d: end resync on the target: %w", m.node, err)
	}
	if err := m.disk.Update(func(x *vdisk.Metadata) { *x = esrc }); err != nil {
		return fmt.Errorf("mirror node %d: end resync: %w", m.node, err)
	}
	m.mu.Lock()
	m.resyncing, m.bulk = false, bulkIdle
	m.mu.Unlock()
	m.event(EventResyncDone, "source: target UpToDate")
	return nil
}

// WaitResynced blocks the target until the source's FinishResync made this
// copy UpToDate, ctx ends, or a link event (peer silent or up) says the
// resync may not finish: the caller then runs Connect again.
func (m *Mirror) WaitResynced(ctx context.Context) error {
	m.mu.Lock()
	if m.disk.Metadata().State == vdisk.UpToDate {
		m.mu.Unlock()
		return nil
	}
	if m.targetDone == nil {
		m.targetDone = make(chan struct{})
	}
	ch := m.targetDone
	m.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-m.ep.linkEvents():
		return fmt.Errorf("mirror node %d: waiting for the end of the resync: link event: %w", m.node, ErrPeerLost)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Mirror) setBlocked(why string) {
	m.mu.Lock()
	m.blocked = why
	m.mu.Unlock()
}

// RemoteSummer returns a vdisk.Summer computed by the peer.
func (m *Mirror) RemoteSummer() vdisk.Summer {
	return vdisk.RemoteSummer{Call: func(ctx context.Context, req []byte) ([]byte, error) {
		return m.ep.call(ctx, Request{Op: OpSums, Data: req})
	}}
}

// Verify compares this copy with the peer's by per-region checksums while
// the VS runs (only 32 bytes per region cross the link). Regions written
// during the pass may differ transiently; the caller re-verifies them.
func (m *Mirror) Verify(ctx context.Context, o vdisk.VerifyOptions) ([]vdisk.Range, error) {
	if m.Detached() {
		return nil, errors.New("mirror: local copy detached: nothing to verify")
	}
	return vdisk.Verify(ctx, vdisk.ReaderSummer{R: m.disk}, m.RemoteSummer(), m.Size(), o)
}

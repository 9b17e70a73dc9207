package mirror

import (
	"context"
	"fmt"

	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// ResyncDiverged runs on the primary when lockstep found the secondary's
// replica diverged, before the snapshot that resynchronises it (inside the
// replica's Snapshot, the VS paused). The secondary's copy took writes the
// primary's did not (and missed some), and the marks cannot say where: the
// primary drops marks on the secondary's write count, which a diverged
// replica no longer shares. So every region is compared by checksum and
// the differing ones are copied from this copy. The peer's copy is
// Inconsistent from BeginResync until FinishResync (the caller's next
// step, in the same pause) ends the resync; until its replica is restored
// from the snapshot, the diverged replica's writes are dropped (WriteAt),
// so they cannot land behind the copy.
func (m *Mirror) ResyncDiverged(ctx context.Context) (vdisk.ResyncStats, error) {
	m.mu.Lock()
	ls, det := m.lockstep, m.detached
	m.lockstep = false
	m.mu.Unlock()
	if !ls || det {
		return vdisk.ResyncStats{}, fmt.Errorf("mirror node %d: resync after a divergence: not in lockstep with an attached copy", m.node)
	}
	if err := m.disk.GoSolo(m.cfg.NewGen()); err != nil {
		return vdisk.ResyncStats{}, fmt.Errorf("mirror node %d: resync after a divergence: new generation: %w", m.node, err)
	}
	if err := m.disk.MarkAll(); err != nil {
		return vdisk.ResyncStats{}, fmt.Errorf("mirror node %d: resync after a divergence: mark: %w", m.node, err)
	}
	peer, _, err := m.peerMeta(ctx)
	if err != nil {
		return vdisk.ResyncStats{}, fmt.Errorf("mirror node %d: resync after a divergence: peer metadata: %w", m.node, err)
	}
	dec := vdisk.Decide(m.disk.Metadata(), peer)
	if (dec.Action != vdisk.BitmapResync && dec.Action != vdisk.FullSync) || dec.Source != m.node {
		return vdisk.ResyncStats{}, fmt.Errorf("mirror node %d: resync after a divergence: generations say %s", m.node, dec)
	}
	nsrc, ndst := vdisk.BeginResync(m.disk.Metadata(), peer, false, m.cfg.NewGen())
	if err := m.disk.Update(func(x *vdisk.Metadata) { *x = nsrc }); err != nil {
		return vdisk.ResyncStats{}, fmt.Errorf("mirror node %d: resync after a divergence: begin: %w", m.node, err)
	}
	if _, err := m.ep.call(ctx, Request{Op: OpSetMeta, Count: divergedMark, Data: ndst.Encode()}); err != nil {
		return vdisk.ResyncStats{}, fmt.Errorf("mirror node %d: resync after a divergence: begin on the peer: %w", m.node, err)
	}
	m.mu.Lock()
	m.resyncing, m.resyncPeer = true, ndst
	m.mu.Unlock()
	m.event(EventResyncStart, "after a divergence: every region compared by checksum, differing ones copied")
	st, err := m.resync(ctx, &vdisk.Resync{SrcSums: vdisk.ReaderSummer{R: m.disk}, DstSums: m.RemoteSummer()})
	if err != nil {
		return st, fmt.Errorf("mirror node %d: resync after a divergence: %w", m.node, err)
	}
	return st, nil
}

// divergedMark, as the Count of OpSetMeta (unused otherwise), tells the peer that
// the BeginResync comes from ResyncDiverged: its running replica is
// diverged and its writes must not land behind the copy.
const divergedMark = 0xD1

// dropDivergedWrite drops a diverged replica's write (the snapshot that
// follows replaces the replica) but marks its range, so that a resync that
// fails half-way still covers it next time.
func (m *Mirror) dropDivergedWrite(p []byte, off int64) (int, error) {
	m.count(func(s *Stats) { s.SkippedWrites++ })
	if err := m.disk.MarkRanges([][2]int64{{off, int64(len(p))}}); err != nil {
		return 0, fmt.Errorf("mirror node %d: mark a dropped diverged write: %w", m.node, err)
	}
	return len(p), nil
}

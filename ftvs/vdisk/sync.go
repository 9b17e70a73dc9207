package vdisk

import (
	"context"
	"errors"
	"fmt"
)

// Errors SyncCopies returns when it must not copy anything.
var (
	ErrSplitBrain = errors.New("split brain")
	ErrUnrelated  = errors.New("unrelated data")
	ErrRefused    = errors.New("resync refused")
)

// SyncOptions tune SyncCopies.
type SyncOptions struct {
	// NewGen returns a fresh random generation (crypto/rand in the shell).
	NewGen func() uint64
	// Pacer and Yield are handed to the engine.
	Pacer Pacer
	Yield Yielder
	// SkipEqual compares checksums before writing each chunk.
	SkipEqual       bool
	Chunk           int64
	CheckpointEvery int64
	InFlight        int
	// Offline: both copies are held by this process only (ftvs vdisk resync),
	// so the crashed-primary flags are cleared at the end.
	Offline bool
}

// SyncCopies brings two local copies of one virtual disk in sync as Decide
// says: persists the start of the resync, copies, persists the end. It is
// the local form of what the runtime does over the CoServer link; split
// brain, unrelated data and refusals return an error and touch nothing.
func SyncCopies(ctx context.Context, a, b *Disk, o SyncOptions) (Decision, ResyncStats, error) {
	var st ResyncStats
	dec := Decide(a.Metadata(), b.Metadata())
	switch dec.Action {
	case InSync:
		for _, d := range []*Disk{a, b} {
			_, dirty := d.Marks()
			md := d.Metadata()
			if s := Settle(md, dirty == 0); s.Gens != md.Gens {
				if err := d.Update(func(m *Metadata) { *m = s }); err != nil {
					return dec, st, err
				}
			}
		}
		return dec, st, nil
	case SplitBrain:
		return dec, st, fmt.Errorf("%w: %s", ErrSplitBrain, dec.Reason)
	case Unrelated:
		return dec, st, fmt.Errorf("%w: %s", ErrUnrelated, dec.Reason)
	case BitmapResync, FullSync:
	default:
		return dec, st, fmt.Errorf("%w: %s", ErrRefused, dec.Reason)
	}
	if o.NewGen == nil {
		return dec, st, errors.New("vdisk: SyncOptions.NewGen is required")
	}
	src, dst := a, b
	if a.Metadata().Node != dec.Source {
		src, dst = b, a
	}
	full := dec.Action == FullSync
	// Marks first (durable on the source), then generations, then the
	// target goes Inconsistent: every crash point restarts safely.
	if full {
		if err := src.MarkAll(); err != nil {
			return dec, st, fmt.Errorf("source node %d: mark all: %w", dec.Source, err)
		}
	} else if dec.UnionBitmaps {
		if err := src.AddMarks(dst.OnDiskMarks()); err != nil {
			return dec, st, fmt.Errorf("source node %d: merge target's marks: %w", dec.Source, err)
		}
	}
	nsrc, ndst := BeginResync(src.Metadata(), dst.Metadata(), full, o.NewGen())
	if err := src.Update(func(m *Metadata) { *m = nsrc }); err != nil {
		return dec, st, fmt.Errorf("source node %d: %w", dec.Source, err)
	}
	if err := dst.Update(func(m *Metadata) { *m = ndst }); err != nil {
		return dec, st, fmt.Errorf("target node %d: %w", dec.Target, err)
	}
	dst.SetMarking(false)
	r := &Resync{
		Src: src, Dst: dst, Size: src.Size(), Marks: src,
		FlushDst: dst.Flush, Progress: src,
		Pacer: o.Pacer, Yield: o.Yield,
		Chunk: o.Chunk, CheckpointEvery: o.CheckpointEvery, InFlight: o.InFlight,
	}
	if o.SkipEqual {
		r.SrcSums, r.DstSums = ReaderSummer{src}, ReaderSummer{dst}
	}
	st, err := r.Run(ctx)
	if err != nil {
		return dec, st, err
	}
	if err := dst.ClearAllMarks(); err != nil {
		return dec, st, fmt.Errorf("target node %d: %w", dec.Target, err)
	}
	esrc, edst := EndResync(src.Metadata(), dst.Metadata())
	if o.Offline {
		esrc.Flags &^= FlagCrashedPrimary
	}
	if err := dst.Update(func(m *Metadata) { *m = edst }); err != nil {
		return dec, st, fmt.Errorf("target node %d: %w", dec.Target, err)
	}
	if err := src.Update(func(m *Metadata) { *m = esrc }); err != nil {
		return dec, st, fmt.Errorf("source node %d: %w", dec.Source, err)
	}
	return dec, st, nil
}

// ClearAllMarks drops every mark, in RAM and on disk (a target whose own
// marks were copied over, or a source after a completed resync).
func (d *Disk) ClearAllMarks() error {
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	d.mu.Lock()
	var cleared []int64
	for i, ok := d.coarse.NextSet(0); ok; i, ok = d.coarse.NextSet(i + 1) {
		cleared = append(cleared, i)
	}
	d.fine = NewBitmap(d.lay.DataSize, FineGranularity)
	for _, i := range cleared {
		d.coarse.ClearBit(i)
	}
	img := d.coarseImageWith(nil, false)
	d.mu.Unlock()
	if len(cleared) == 0 {
		return nil
	}
	return d.writeBitmapPages(img, cleared)
}

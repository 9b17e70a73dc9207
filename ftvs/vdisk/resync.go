package vdisk

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Marks is the resync engine's view of the regions still to copy (the
// source Disk implements it).
type Marks interface {
	// TakeNext clears and returns up to max bytes of consecutive marks
	// starting at the first mark at or after off.
	TakeNext(off, max int64) (start, n int64, ok bool)
	// Remark marks again a range whose copy failed.
	Remark(off, n int64)
}

// Pacer grants resync bandwidth: Take returns once n more bytes may be
// copied (TokenBucket), or an error to stop.
type Pacer interface {
	Take(ctx context.Context, n int64) error
}

// Yielder lets client I/O go first: Yield returns when the resync may issue
// its next chunk (the runtime blocks it while client requests are queued).
type Yielder interface {
	Yield(ctx context.Context) error
}

// Resync copies the marked regions from Src to Dst in address order.
// Progress is persisted through Checkpoint after Dst is flushed, so an
// interrupted resync continues from the marks left. Client writes that mark
// regions behind the cursor are picked up by a further pass.
type Resync struct {
	Src   io.ReaderAt
	Dst   io.WriterAt
	Size  int64
	Marks Marks
	// FlushDst makes the target durable; Checkpoint persists the source's
	// progress (Disk.Checkpoint). Both optional.
	FlushDst   func() error
	Checkpoint func(cursor int64) error
	Pacer      Pacer   // nil: unlimited
	Yield      Yielder // nil: never yields
	// SrcSums and DstSums, when both set, let a chunk whose checksums
	// already match be skipped instead of written.
	SrcSums, DstSums Summer
	Chunk            int64 // bytes per copy; 0: 1 MiB
	CheckpointEvery  int64 // bytes between checkpoints; 0: 64 MiB
}

// ResyncStats counts what a run did.
type ResyncStats struct {
	Copied      int64 // bytes written to the target
	Skipped     int64 // bytes whose checksums already matched
	Chunks      int64
	Passes      int64
	Checkpoints int64
}

// RegionError is an I/O failure during resync, with the region it hit.
type RegionError struct {
	Op       string // "read source", "write target", "checksum", "flush target", "checkpoint"
	Off, Len int64
	Err      error
}

func (e *RegionError) Error() string {
	if e.Len == 0 {
		return fmt.Sprintf("resync: %s at cursor %d: %v", e.Op, e.Off, e.Err)
	}
	return fmt.Sprintf("resync: %s region [%d, %d): %v", e.Op, e.Off, e.Off+e.Len, e.Err)
}

func (e *RegionError) Unwrap() error { return e.Err }

// Run copies until no mark is left, ctx ends or an error occurs.
func (r *Resync) Run(ctx context.Context) (ResyncStats, error) {
	var st ResyncStats
	chunk := r.Chunk
	if chunk <= 0 {
		chunk = 1 << 20
	}
	every := r.CheckpointEvery
	if every <= 0 {
		every = 64 << 20
	}
	if r.Src == nil || r.Dst == nil || r.Marks == nil {
		return st, errors.New("resync: source, target and marks are required")
	}
	buf := make([]byte, chunk)
	checkpoint := func(cursor int64) error {
		if r.FlushDst != nil {
			if err := r.FlushDst(); err != nil {
				return &RegionError{Op: "flush target", Off: cursor, Err: err}
			}
		}
		if r.Checkpoint != nil {
			if err := r.Checkpoint(cursor); err != nil {
				return &RegionError{Op: "checkpoint", Off: cursor, Err: err}
			}
		}
		st.Checkpoints++
		return nil
	}
	pos, since, wrapped := int64(0), int64(0), false
	st.Passes = 1
	for {
		if err := ctx.Err(); err != nil {
			return st, errors.Join(err, checkpoint(pos))
		}
		if r.Yield != nil {
			if err := r.Yield.Yield(ctx); err != nil {
				return st, errors.Join(err, checkpoint(pos))
			}
		}
		start, n, ok := r.Marks.TakeNext(pos, chunk)
		if !ok {
			if pos == 0 {
				break
			}
			pos = 0 // marks behind the cursor? another pass, in address order
			wrapped = true
			continue
		}
		if wrapped {
			st.Passes++
			wrapped = false
		}
		if r.Pacer != nil {
			if err := r.Pacer.Take(ctx, n); err != nil {
				r.Marks.Remark(start, n)
				return st, errors.Join(err, checkpoint(start))
			}
		}
		if n > int64(len(buf)) {
			buf = make([]byte, n) // Marks may round up to their granularity
		}
		if err := r.copyChunk(ctx, buf[:n], start, &st); err != nil {
			r.Marks.Remark(start, n)
			// Keep what was copied before the failure.
			return st, errors.Join(err, checkpoint(start))
		}
		st.Chunks++
		pos = start + n
		if since += n; since >= every {
			if err := checkpoint(pos); err != nil {
				return st, err
			}
			since = 0
		}
	}
	return st, checkpoint(r.Size)
}

func (r *Resync) copyChunk(ctx context.Context, b []byte, off int64, st *ResyncStats) error {
	n := int64(len(b))
	if r.SrcSums != nil && r.DstSums != nil {
		s, err := r.SrcSums.Sums(ctx, off, n, n)
		if err != nil {
			return &RegionError{Op: "checksum source", Off: off, Len: n, Err: err}
		}
		d, err := r.DstSums.Sums(ctx, off, n, n)
		if err != nil {
			return &RegionError{Op: "checksum target", Off: off, Len: n, Err: err}
		}
		if len(s) == 1 && len(d) == 1 && s[0] == d[0] {
			st.Skipped += n
			return nil
		}
	}
	if _, err := r.Src.ReadAt(b, off); err != nil {
		return &RegionError{Op: "read source", Off: off, Len: n, Err: err}
	}
	if _, err := r.Dst.WriteAt(b, off); err != nil {
		return &RegionError{Op: "write target", Off: off, Len: n, Err: err}
	}
	st.Copied += n
	return nil
}

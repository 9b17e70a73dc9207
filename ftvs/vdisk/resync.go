package vdisk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
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

// Progress persists the source's resync progress in two steps, so that
// copying goes on while the target flushes (Disk implements it).
type Progress interface {
	SnapshotProgress() ProgressToken
	CommitProgress(t ProgressToken, cursor int64) error
}

// ChunkWriter is an optional Dst interface for a target that sends each
// chunk on (over a link): the engine reads the chunk into a fresh buffer
// behind ChunkHeadroom spare bytes and hands it over with WriteChunk (data
// at buf[ChunkHeadroom():]), so the target frames it in place instead of
// copying. The data itself starts 4 KiB-aligned, as an O_DIRECT source
// read needs. The buffer is the target's afterwards.
type ChunkWriter interface {
	ChunkHeadroom() int
	WriteChunk(buf []byte, off int64) error
}

// Resync copies the marked regions from Src to Dst in address order.
// Progress is persisted after Dst is flushed, so an interrupted resync
// continues from the marks left. Client writes that mark regions behind the
// cursor are picked up by a further pass.
type Resync struct {
	Src   io.ReaderAt
	Dst   io.WriterAt
	Size  int64
	Marks Marks
	// FlushDst makes the target durable. It runs concurrently with further
	// writes to Dst (one flush at a time) and must cover every write that
	// completed before it was called. Optional.
	FlushDst func() error
	// Progress persists the source's progress after each flush. Optional.
	Progress Progress
	Pacer    Pacer   // nil: unlimited
	Yield    Yielder // nil: never yields
	// SrcSums and DstSums, when both set, let a chunk whose checksums
	// already match be skipped instead of written.
	SrcSums, DstSums Summer
	Chunk            int64 // bytes per copy; 0: 1 MiB
	CheckpointEvery  int64 // bytes between checkpoints; 0: 64 MiB
	// InFlight is how many chunks are copied at once (0 or 1: one). Src,
	// Dst and the Summers must then allow concurrent calls; Marks is only
	// ever called from Run's goroutine.
	InFlight int
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

// checkpointer runs at most one flush-then-commit in the background.
type checkpointer struct {
	r       *Resync
	pending chan error
	done    int64
}

// errEpochFailed: a copy of the checkpoint's epoch failed; the checkpoint
// is skipped (its regions stay marked on disk) and Run stops on the failure.
var errEpochFailed = errors.New("resync: a copy before the checkpoint failed")

// start snapshots the progress and, in the background, waits for the
// copies of ep (everything handed out before the snapshot), flushes the
// target and commits. Copies launched after it go on meanwhile: a
// checkpoint does not drain the pipeline.
func (c *checkpointer) start(cursor int64, ep *epoch) {
	var tok ProgressToken
	if c.r.Progress != nil {
		tok = c.r.Progress.SnapshotProgress()
	}
	ch := make(chan error, 1)
	c.pending = ch
	go func() {
		ep.wg.Wait()
		if ep.failed.Load() {
			ch <- errEpochFailed
			return
		}
		if c.r.FlushDst != nil {
			if err := c.r.FlushDst(); err != nil {
				ch <- &RegionError{Op: "flush target", Off: cursor, Err: err}
				return
			}
		}
		if c.r.Progress != nil {
			if err := c.r.Progress.CommitProgress(tok, cursor); err != nil {
				ch <- &RegionError{Op: "checkpoint", Off: cursor, Err: err}
				return
			}
		}
		ch <- nil
	}()
}

func (c *checkpointer) wait() error {
	if c.pending == nil {
		return nil
	}
	err := <-c.pending
	c.pending = nil
	if err == errEpochFailed {
		return nil // the failed copy is re-marked and reported by the window
	}
	if err == nil {
		c.done++
	}
	return err
}

// sync waits for the background checkpoint and runs a final one. The
// window is drained and its failures re-marked: nothing is left to wait
// for, and CommitProgress keeps the re-marked regions.
func (c *checkpointer) sync(cursor int64) error {
	if err := c.wait(); err != nil {
		return err
	}
	c.start(cursor, &epoch{})
	return c.wait()
}

// epoch is the set of copies launched between two checkpoints.
type epoch struct {
	wg     sync.WaitGroup
	failed atomic.Bool
}

// window runs up to n chunk copies at once (a link with latency needs
// several writes in flight to reach its bandwidth).
type window struct {
	bufs   chan []byte
	cur    *epoch // copies since the last checkpoint (Run's goroutine only)
	wg     sync.WaitGroup
	mu     sync.Mutex
	st     *ResyncStats
	failed []failedChunk
}

type failedChunk struct {
	start, n int64
	err      error
}

func (w *window) launch(ctx context.Context, r *Resync, start, n int64) {
	buf := <-w.bufs // a slot in the window, and its buffer (nil for a ChunkWriter)
	if _, owned := r.Dst.(ChunkWriter); !owned && int64(cap(buf)) < n {
		buf = make([]byte, n) // Marks may round up to their granularity
	}
	ep := w.cur
	w.wg.Add(1)
	ep.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer ep.wg.Done()
		var local ResyncStats
		err := r.copyChunk(ctx, buf, start, n, &local)
		if err != nil {
			ep.failed.Store(true)
		}
		w.mu.Lock()
		w.st.Copied += local.Copied
		w.st.Skipped += local.Skipped
		if err != nil {
			w.failed = append(w.failed, failedChunk{start, n, err})
		}
		w.mu.Unlock()
		w.bufs <- buf
	}()
}

// drain waits for every copy in flight and re-marks the failed ones; it
// returns the lowest failure.
func (w *window) drain(m Marks) (int64, error) {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	var first *failedChunk
	for i := range w.failed {
		f := &w.failed[i]
		m.Remark(f.start, f.n)
		if first == nil || f.start < first.start {
			first = f
		}
	}
	w.failed = nil
	if first == nil {
		return 0, nil
	}
	return first.start, first.err
}

// cut ends the current epoch (for a checkpoint) and starts the next.
func (w *window) cut() *epoch {
	old := w.cur
	w.cur = &epoch{}
	return old
}

func (w *window) anyFailed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.failed) > 0
}

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
	inflight := max(r.InFlight, 1)
	if r.Src == nil || r.Dst == nil || r.Marks == nil {
		return st, errors.New("resync: source, target and marks are required")
	}
	w := &window{bufs: make(chan []byte, inflight), st: &st, cur: &epoch{}}
	_, owned := r.Dst.(ChunkWriter)
	for range inflight {
		var buf []byte
		if !owned {
			buf = make([]byte, chunk)
		}
		w.bufs <- buf
	}
	ck := &checkpointer{r: r}
	// stop ends the run keeping what was copied: every copy in flight
	// completes, failures are re-marked, then a final checkpoint.
	stop := func(err error, cursor int64) (ResyncStats, error) {
		if at, derr := w.drain(r.Marks); derr != nil {
			err = errors.Join(err, derr)
			cursor = min(cursor, at)
		}
		err = errors.Join(err, ck.sync(cursor))
		st.Checkpoints = ck.done
		return st, err
	}
	pos, since, wrapped := int64(0), int64(0), false
	st.Passes = 1
	for {
		if err := ctx.Err(); err != nil {
			return stop(err, pos)
		}
		if w.anyFailed() {
			return stop(nil, pos)
		}
		if r.Yield != nil {
			if err := r.Yield.Yield(ctx); err != nil {
				return stop(err, pos)
			}
		}
		start, n, ok := r.Marks.TakeNext(pos, chunk)
		if !ok {
			if pos == 0 {
				// Copies still in flight may fail and re-mark: only an
				// empty set after they complete ends the run.
				if at, err := w.drain(r.Marks); err != nil {
					return stop(err, at)
				}
				if _, _, again := r.Marks.TakeNext(0, 0); !again {
					break
				}
				continue
			}
			// Marks behind the cursor? Another pass, in address order. The
			// copies of this pass complete first: a region re-marked by a
			// client write and taken again must not have its older copy,
			// still in flight, land on the target after the newer one.
			if at, err := w.drain(r.Marks); err != nil {
				return stop(err, at)
			}
			pos = 0
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
				return stop(err, start)
			}
		}
		w.launch(ctx, r, start, n)
		st.Chunks++
		pos = start + n
		if since += n; since >= every {
			// The checkpoint waits in the background for what was handed
			// out so far, then flushes and commits, while copying goes on.
			if err := ck.wait(); err != nil {
				return stop(err, pos)
			}
			ck.start(pos, w.cut())
			since = 0
		}
	}
	err := ck.sync(r.Size)
	st.Checkpoints = ck.done
	return st, err
}

// chunkAlign aligns a ChunkWriter's data in its buffer (O_DIRECT reads).
const chunkAlign = 4096

// copyChunk copies [off, off+n) through buf (the window's), or, for a
// ChunkWriter, through a fresh buffer the target keeps. A chunk whose sums
// already match is skipped before any buffer is allocated.
func (r *Resync) copyChunk(ctx context.Context, buf []byte, off, n int64, st *ResyncStats) error {
	if same, err := r.sumsMatch(ctx, off, n); err != nil || same {
		if same {
			st.Skipped += n
		}
		return err
	}
	if cw, owned := r.Dst.(ChunkWriter); owned {
		h := cw.ChunkHeadroom()
		pad := (h + chunkAlign - 1) &^ (chunkAlign - 1)
		full := make([]byte, int64(pad)+n) // a large allocation: page-aligned
		msg := full[pad-h:]
		return r.copyInto(full[pad:], off, st, func() error { return cw.WriteChunk(msg, off) })
	}
	b := buf[:n]
	return r.copyInto(b, off, st, func() error { _, err := r.Dst.WriteAt(b, off); return err })
}

// sumsMatch reports whether [off, off+n) has equal checksums on both sides
// (false when the Summers are not both set).
func (r *Resync) sumsMatch(ctx context.Context, off, n int64) (bool, error) {
	if r.SrcSums == nil || r.DstSums == nil {
		return false, nil
	}
	s, err := r.SrcSums.Sums(ctx, off, n, n)
	if err != nil {
		return false, &RegionError{Op: "checksum source", Off: off, Len: n, Err: err}
	}
	d, err := r.DstSums.Sums(ctx, off, n, n)
	if err != nil {
		return false, &RegionError{Op: "checksum target", Off: off, Len: n, Err: err}
	}
	return len(s) == 1 && len(d) == 1 && s[0] == d[0], nil
}

// copyInto reads the chunk into b and writes it with write.
func (r *Resync) copyInto(b []byte, off int64, st *ResyncStats, write func() error) error {
	n := int64(len(b))
	if _, err := r.Src.ReadAt(b, off); err != nil {
		return &RegionError{Op: "read source", Off: off, Len: n, Err: err}
	}
	if err := write(); err != nil {
		return &RegionError{Op: "write target", Off: off, Len: n, Err: err}
	}
	st.Copied += n
	return nil
}

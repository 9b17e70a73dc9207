package vdisk

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// Disk is one open copy of a virtual disk. It is itself a blockdev.Device of
// the data area (offset 0 is the first byte the VS sees). Safe for
// concurrent use.
type Disk struct {
	dev blockdev.Device
	// Identity and layout never change after Open; copied out of md so
	// the I/O path reads them without the lock.
	lay Metadata

	// persistMu serialises every metadata and bitmap write, so that a
	// marking writer never passes a bitmap write still in progress.
	persistMu sync.Mutex

	mu       sync.Mutex // guards everything below
	md       Metadata
	slot     int
	slots    [2]SlotStatus
	fine     *Bitmap // in RAM, FineGranularity per bit
	coarse   *Bitmap // the durable on-disk image
	marking  bool
	inflight map[int64]int // coarse region -> writes between mark and done
	// taken holds the coarse regions TakeNext handed to a resync since the
	// last Checkpoint: the only ones Checkpoint may clear.
	taken map[int64]struct{}
}

var _ blockdev.Device = (*Disk)(nil)

// CreateOptions describe a new copy.
type CreateOptions struct {
	UUID        [16]byte
	Node        uint8
	DataSize    int64 // 0: as much as the device holds
	Granularity int64 // 0: DefaultGranularity
}

// Create writes fresh metadata (both slots) and a clear bitmap to dev. The
// copy starts Inconsistent with the JustCreated generation, like a new DRBD
// disk: its first connection to the peer decides the initial sync.
func Create(dev blockdev.Device, o CreateOptions) (*Disk, error) {
	gran := o.Granularity
	if gran == 0 {
		gran = DefaultGranularity
	}
	sector := uint32(dev.SectorSize())
	size := o.DataSize
	if size == 0 {
		// Largest data size that fits: solve for the layout iteratively.
		size = (dev.Size() - DataAlign) &^ (FineGranularity - 1)
		for size > 0 {
			l, err := Layout(size, sector, gran)
			if err != nil {
				return nil, err
			}
			if l.DeviceSize <= dev.Size() {
				break
			}
			size -= roundUp(l.DeviceSize-dev.Size(), FineGranularity)
		}
		if size <= 0 {
			return nil, fmt.Errorf("device holds %d bytes, too small for a vdisk copy (metadata, bitmap and at least 4 KiB of data need more than %d)", dev.Size(), DataAlign)
		}
	}
	md, err := Layout(size, sector, gran)
	if err != nil {
		return nil, err
	}
	if md.DeviceSize > dev.Size() {
		return nil, fmt.Errorf("device holds %d bytes, a %d-byte virtual disk needs %d (data offset %d)", dev.Size(), size, md.DeviceSize, md.DataOffset)
	}
	md.UUID, md.Node = o.UUID, o.Node
	md.State = Inconsistent
	md.Gens.Current = JustCreated
	md.DeviceSize = dev.Size()
	if err := md.Validate(); err != nil {
		return nil, err
	}
	// Bitmap area first, metadata last: a crash in between leaves no magic.
	zero := make([]byte, 1<<20)
	for off := int64(0); off < md.BitmapBytes; off += int64(len(zero)) {
		n := min(int64(len(zero)), md.BitmapBytes-off)
		if _, err := dev.WriteAt(zero[:n], md.BitmapOffset+off); err != nil {
			return nil, fmt.Errorf("clear bitmap: %w", err)
		}
	}
	md.Seq = 1
	s1 := md.Encode()
	md.Seq = 2
	s0 := md.Encode()
	if _, err := dev.WriteAt(s1, SlotSize); err != nil {
		return nil, fmt.Errorf("write metadata slot 1: %w", err)
	}
	if _, err := dev.WriteAt(s0, 0); err != nil {
		return nil, fmt.Errorf("write metadata slot 0: %w", err)
	}
	if err := dev.Flush(); err != nil {
		return nil, err
	}
	return Open(dev)
}

// ReadMetadata reads both slots and the chosen metadata without opening the
// copy for writing.
func ReadMetadata(dev blockdev.Device) (Metadata, int, [2]SlotStatus, error) {
	if dev.Size() < BitmapOffset {
		return Metadata{}, -1, [2]SlotStatus{}, fmt.Errorf("device is %d bytes, too small for vdisk metadata: %w", dev.Size(), ErrNotVdisk)
	}
	b := make([]byte, 2*SlotSize)
	if _, err := dev.ReadAt(b, 0); err != nil {
		return Metadata{}, -1, [2]SlotStatus{}, fmt.Errorf("read metadata: %w", err)
	}
	return PickSlot(b[:SlotSize], b[SlotSize:])
}

// ReadBitmap reads the on-disk bitmap described by md.
func ReadBitmap(dev blockdev.Device, md Metadata) (*Bitmap, error) {
	bm := NewBitmap(md.DataSize, md.Granularity)
	img := make([]byte, md.BitmapBytes)
	if _, err := dev.ReadAt(img, md.BitmapOffset); err != nil {
		return nil, fmt.Errorf("read bitmap: %w", err)
	}
	if err := bm.Load(img); err != nil {
		return nil, fmt.Errorf("bitmap at %d: %w", md.BitmapOffset, err)
	}
	return bm, nil
}

// Open opens an existing copy. The in-RAM fine bitmap starts as the
// expansion of the on-disk one (the precise marks died with the process).
func Open(dev blockdev.Device) (*Disk, error) {
	md, slot, st, err := ReadMetadata(dev)
	if err != nil {
		return nil, err
	}
	if md.DeviceSize > dev.Size() || md.DataOffset+md.DataSize > dev.Size() {
		return nil, fmt.Errorf("metadata field device_size (offset 48): %d, but the device holds only %d bytes (truncated?)", md.DeviceSize, dev.Size())
	}
	if int64(dev.SectorSize()) > int64(md.SectorSize) {
		return nil, fmt.Errorf("device sector size %d is larger than the vdisk's %d", dev.SectorSize(), md.SectorSize)
	}
	coarse, err := ReadBitmap(dev, md)
	if err != nil {
		return nil, err
	}
	d := &Disk{dev: dev, md: md, lay: md, slot: slot, slots: st, coarse: coarse,
		fine: NewBitmap(md.DataSize, FineGranularity), inflight: map[int64]int{}, taken: map[int64]struct{}{}}
	for _, r := range coarse.Ranges() {
		d.fine.Mark(r[0], r[1])
	}
	return d, nil
}

// Metadata returns the current metadata.
func (d *Disk) Metadata() Metadata {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.md
}

// Slots says which slot is in use and what was found in both at Open.
func (d *Disk) Slots() (int, [2]SlotStatus) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.slot, d.slots
}

// Update applies f to the metadata and persists it to the other slot with
// the next sequence number, then flushes. Identity and layout fields cannot
// change.
func (d *Disk) Update(f func(*Metadata)) error {
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	return d.updateLocked(f)
}

func (d *Disk) updateLocked(f func(*Metadata)) error {
	d.mu.Lock()
	md := d.md
	d.mu.Unlock()
	old := md
	f(&md)
	if md.UUID != old.UUID || md.Node != old.Node || md.DataSize != old.DataSize ||
		md.DataOffset != old.DataOffset || md.BitmapOffset != old.BitmapOffset ||
		md.BitmapBytes != old.BitmapBytes || md.Granularity != old.Granularity {
		return errors.New("vdisk: metadata update may not change identity or layout")
	}
	md.Seq = old.Seq + 1
	if err := md.Validate(); err != nil {
		return fmt.Errorf("vdisk: refusing to write invalid metadata: %w", err)
	}
	slot := 1 - d.slot
	if _, err := d.dev.WriteAt(md.Encode(), int64(slot)*SlotSize); err != nil {
		return fmt.Errorf("write metadata slot %d: %w", slot, err)
	}
	if err := d.dev.Flush(); err != nil {
		return fmt.Errorf("flush metadata: %w", err)
	}
	d.mu.Lock()
	d.md, d.slot = md, slot
	d.mu.Unlock()
	return nil
}

// SetMarking turns write-intent marking on (alone, or in lockstep for
// double-crash safety) or off.
func (d *Disk) SetMarking(on bool) {
	d.mu.Lock()
	d.marking = on
	d.mu.Unlock()
}

// GoSolo persists the peer-lost transition (GoSolo on the generations, the
// crashed-primary flag) and starts marking, before any write is accepted.
func (d *Disk) GoSolo(newGen uint64) error {
	if ok, why := CanGoLiveAlone(d.Metadata()); !ok {
		return fmt.Errorf("vdisk: node %d may not go on alone: %s", d.Metadata().Node, why)
	}
	d.SetMarking(true)
	return d.Update(func(m *Metadata) {
		*m = GoSolo(*m, newGen)
		m.Flags |= FlagCrashedPrimary
	})
}

// MarkRunning sets the crashed-primary flag before this copy applies its
// first write: if the process dies before CloseClean, the next start knows
// writes may have been in flight.
func (d *Disk) MarkRunning() error {
	if md := d.Metadata(); md.Crashed() {
		return nil
	}
	return d.Update(func(m *Metadata) { m.Flags |= FlagCrashedPrimary })
}

// CloseClean records a clean shutdown (clears crashed-primary) after a flush.
func (d *Disk) CloseClean() error {
	if err := d.dev.Flush(); err != nil {
		return err
	}
	return d.Update(func(m *Metadata) { m.Flags &^= FlagCrashedPrimary })
}

func (d *Disk) Size() int64     { return d.lay.DataSize }
func (d *Disk) SectorSize() int { return int(d.lay.SectorSize) }

// ReadAt reads the data area.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), d.lay.DataSize, int(d.lay.SectorSize)); err != nil {
		return 0, fmt.Errorf("vdisk node %d: read: %w", d.lay.Node, err)
	}
	n, err := d.dev.ReadAt(p, d.lay.DataOffset+off)
	if err != nil {
		return n, fmt.Errorf("vdisk node %d: read data [%d, %d): %w", d.lay.Node, off, off+int64(len(p)), err)
	}
	return n, nil
}

// WriteAt writes the data area. While marking, the regions are marked (and
// a cold on-disk region persisted) before the data write is issued, and
// marked again in RAM when it completes, so a resync pass that raced with
// it copies the block once more.
func (d *Disk) WriteAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), d.lay.DataSize, int(d.lay.SectorSize)); err != nil {
		return 0, fmt.Errorf("vdisk node %d: write: %w", d.lay.Node, err)
	}
	n64 := int64(len(p))
	marking, err := d.markBefore(off, n64)
	if err != nil {
		return 0, fmt.Errorf("vdisk node %d: mark [%d, %d) before write: %w", d.lay.Node, off, off+n64, err)
	}
	n, err := d.dev.WriteAt(p, d.lay.DataOffset+off)
	if marking {
		d.markAfter(off, n64)
	}
	if err != nil {
		return n, fmt.Errorf("vdisk node %d: write data [%d, %d): %w", d.lay.Node, off, off+n64, err)
	}
	return n, nil
}

func (d *Disk) markBefore(off, n int64) (bool, error) {
	d.mu.Lock()
	if !d.marking {
		d.mu.Unlock()
		return false, nil
	}
	d.fine.Mark(off, n)
	first, last := d.coarse.bitRange(off, n)
	cold := false
	for i := first; i <= last; i++ {
		d.inflight[i]++
		cold = cold || !d.coarse.Test(i)
	}
	d.mu.Unlock()
	if !cold {
		return true, nil
	}
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	d.mu.Lock()
	var changed []int64
	for i := first; i <= last; i++ {
		if !d.coarse.Test(i) {
			changed = append(changed, i)
		}
	}
	img := d.coarseImageWith(changed, true)
	d.mu.Unlock()
	if len(changed) == 0 {
		return true, nil
	}
	if err := d.writeBitmapPages(img, changed); err != nil {
		d.markAfter(off, n) // undo the in-flight count; fine bits stay set
		return true, err
	}
	d.mu.Lock()
	for _, i := range changed {
		d.coarse.SetBit(i)
	}
	d.mu.Unlock()
	return true, nil
}

func (d *Disk) markAfter(off, n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fine.Mark(off, n)
	first, last := d.coarse.bitRange(off, n)
	for i := first; i <= last; i++ {
		if d.inflight[i]--; d.inflight[i] <= 0 {
			delete(d.inflight, i)
		}
	}
}

// coarseImageWith returns a copy of the on-disk image with bits set or
// cleared. Caller holds mu.
func (d *Disk) coarseImageWith(bitsIdx []int64, set bool) []byte {
	img := make([]byte, d.lay.BitmapBytes)
	copy(img, d.coarse.Bytes())
	for _, i := range bitsIdx {
		if set {
			img[i/8] |= 1 << (i % 8)
		} else {
			img[i/8] &^= 1 << (i % 8)
		}
	}
	return img
}

// writeBitmapPages writes the 4 KiB pages of img holding the given bits,
// then flushes. Caller holds persistMu.
func (d *Disk) writeBitmapPages(img []byte, bitsIdx []int64) error {
	last := int64(-1)
	for _, i := range bitsIdx {
		page := (i / 8) / SlotSize
		if page == last {
			continue
		}
		last = page
		off := page * SlotSize
		if _, err := d.dev.WriteAt(img[off:off+SlotSize], d.lay.BitmapOffset+off); err != nil {
			return fmt.Errorf("write bitmap page %d: %w", page, err)
		}
	}
	if err := d.dev.Flush(); err != nil {
		return fmt.Errorf("flush bitmap: %w", err)
	}
	return nil
}

// Flush makes completed writes durable.
func (d *Disk) Flush() error {
	if err := d.dev.Flush(); err != nil {
		return fmt.Errorf("vdisk node %d: %w", d.lay.Node, err)
	}
	return nil
}

// Marks returns the in-RAM fine bitmap's dirty ranges and byte count (for
// status and inspect).
func (d *Disk) Marks() (ranges [][2]int64, dirtyBytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.fine.Ranges(), d.fine.DirtyBytes()
}

// OnDiskMarks returns a copy of the on-disk bitmap.
func (d *Disk) OnDiskMarks() *Bitmap {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := NewBitmap(d.lay.DataSize, d.lay.Granularity)
	_ = c.Load(d.coarse.Bytes())
	return c
}

// AddMarks merges a peer's on-disk marks into this copy's fine bitmap (the
// union DRBD forms at every handshake): those regions are copied too. They
// are persisted to this copy's on-disk bitmap first, so a restart keeps them.
func (d *Disk) AddMarks(peer *Bitmap) error {
	if peer.size != d.lay.DataSize {
		return fmt.Errorf("peer bitmap covers %d bytes, this copy %d", peer.size, d.lay.DataSize)
	}
	return d.MarkRanges(peer.Ranges())
}

// MarkRanges marks ranges durably (as if written) without writing data.
func (d *Disk) MarkRanges(ranges [][2]int64) error {
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	d.mu.Lock()
	var changed []int64
	for _, r := range ranges {
		d.fine.Mark(r[0], r[1])
		first, last := d.coarse.bitRange(r[0], r[1])
		for i := first; i <= last; i++ {
			if !d.coarse.Test(i) {
				changed = append(changed, i)
			}
		}
	}
	img := d.coarseImageWith(changed, true)
	d.mu.Unlock()
	if len(changed) == 0 {
		return nil
	}
	if err := d.writeBitmapPages(img, changed); err != nil {
		return err
	}
	d.mu.Lock()
	for _, i := range changed {
		d.coarse.SetBit(i)
	}
	d.mu.Unlock()
	return nil
}

// MarkAll marks the whole data area durably (the start of a full sync).
func (d *Disk) MarkAll() error {
	return d.MarkRanges([][2]int64{{0, d.lay.DataSize}})
}

// TakeNext finds the first marked fine region at or after off and clears up
// to max bytes of consecutive marks from there (test-and-clear, before the
// copy: a write landing after this re-marks the block). It is the resync
// engine's view of the source's marks.
func (d *Disk) TakeNext(off, max int64) (start, n int64, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	i, ok := d.fine.NextSet(off / FineGranularity)
	if !ok {
		return 0, 0, false
	}
	start = i * FineGranularity
	for d.fine.Test(i) && n < max {
		d.taken[i*FineGranularity/d.lay.Granularity] = struct{}{}
		d.fine.ClearBit(i)
		n += min(FineGranularity, d.lay.DataSize-i*FineGranularity)
		i++
	}
	return start, n, true
}

// Remark re-marks a range whose copy failed.
func (d *Disk) Remark(off, n int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fine.Mark(off, n)
}

// ProgressToken is the set of regions a resync had copied when
// SnapshotProgress was called.
type ProgressToken struct {
	regions []int64
}

// SnapshotProgress captures the regions handed out by TakeNext so far and
// starts a new set. Once every copy handed out before it has completed,
// the engine flushes the target, possibly while it copies on, and calls
// CommitProgress with the token (or drops the token when one failed).
func (d *Disk) SnapshotProgress() ProgressToken {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := ProgressToken{regions: make([]int64, 0, len(d.taken))}
	for i := range d.taken {
		t.regions = append(t.regions, i)
	}
	clear(d.taken)
	slices.Sort(t.regions) // bitmap pages are written in order, each once
	return t
}

// CommitProgress persists resync progress on the source once the target has
// flushed everything in the token: on-disk bits of those regions with no
// fine mark left and no write in flight are cleared, and the cursor is
// recorded.
func (d *Disk) CommitProgress(t ProgressToken, cursor int64) error {
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	d.mu.Lock()
	var cleared []int64
	for _, i := range t.regions {
		// A region handed out again since the snapshot may have parts copied
		// but not yet flushed: it waits for the next token.
		if _, again := d.taken[i]; again {
			continue
		}
		if !d.coarse.Test(i) || d.inflight[i] > 0 || d.fine.Any(i*d.lay.Granularity, d.lay.Granularity) {
			continue
		}
		cleared = append(cleared, i)
	}
	// Clear the RAM image first: a writer arriving now sees a cold region,
	// takes the slow path and waits on persistMu to set the bit again.
	for _, i := range cleared {
		d.coarse.ClearBit(i)
	}
	img := d.coarseImageWith(nil, false)
	d.mu.Unlock()
	if len(cleared) > 0 {
		if err := d.writeBitmapPages(img, cleared); err != nil {
			return err
		}
	}
	return d.updateLocked(func(m *Metadata) { m.ResyncCursor = min(max(cursor, 0), m.DataSize) })
}

// Checkpoint is SnapshotProgress and CommitProgress in one step, for a
// caller that has already flushed the target.
func (d *Disk) Checkpoint(cursor int64) error {
	return d.CommitProgress(d.SnapshotProgress(), cursor)
}

// Device is the underlying block device.
func (d *Disk) Device() blockdev.Device { return d.dev }

// Detach records that this copy hit an I/O error and stops trusting it: the
// state becomes Inconsistent (the failed write left the region undefined),
// so it never goes live alone and is the target of the next resync. The
// runtime then carries on with the peer's copy, which goes solo and marks
// the failed write's range too (MarkRanges), so the union of marks covers
// it. Best effort: a dead disk may refuse even this write; the error is
// returned for the event log.
func (d *Disk) Detach(cause error) error {
	err := d.Update(func(m *Metadata) { m.State = Inconsistent })
	if err != nil {
		return fmt.Errorf("vdisk node %d: detach after %v: %w", d.lay.Node, cause, err)
	}
	return nil
}

// ClearSynced is lockstep's lazy bit clearing (md's, and DRBD's activity-log
// eviction): call it only after both copies have flushed every write
// completed so far (a synchronized FLUSH acknowledged by the peer). Every
// region without a write in flight is then identical on both copies, so its
// marks are dropped in RAM and on disk; regions with writes in flight keep
// theirs. Calling it every few seconds bounds the double-crash resync to the
// regions written since.
func (d *Disk) ClearSynced() error {
	d.persistMu.Lock()
	defer d.persistMu.Unlock()
	d.mu.Lock()
	var cleared []int64
	for i, ok := d.coarse.NextSet(0); ok; i, ok = d.coarse.NextSet(i + 1) {
		if d.inflight[i] == 0 {
			cleared = append(cleared, i)
		}
	}
	// Regions with writes in flight stay marked whole (conservative).
	fine := NewBitmap(d.lay.DataSize, FineGranularity)
	for i := range d.inflight {
		fine.Mark(i*d.lay.Granularity, d.lay.Granularity)
	}
	d.fine = fine
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

package vdisk

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/faultdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
)

const (
	testData = 32 << 20
	testGran = 1 << 20
)

type copyFile struct {
	path string
	dev  *filedev.Dev
	disk *Disk
}

func newCopy(t *testing.T, dir string, node uint8) *copyFile {
	t.Helper()
	l, err := Layout(testData, 512, testGran)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, map[uint8]string{1: "node1.img", 2: "node2.img"}[node])
	dev, err := filedev.Create(p, l.DeviceSize, filedev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	d, err := Create(dev, CreateOptions{UUID: testUUID, Node: node, DataSize: testData, Granularity: testGran})
	if err != nil {
		t.Fatal(err)
	}
	return &copyFile{path: p, dev: dev, disk: d}
}

// reopen simulates a restart of the process holding the copy: the in-RAM
// marks are gone, only what is on disk is left.
func (c *copyFile) reopen(t *testing.T) {
	t.Helper()
	c.dev.Close()
	dev, err := filedev.Open(c.path, filedev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	d, err := Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	c.dev, c.disk = dev, d
}

func genCounter() func() uint64 {
	var n uint64 = 0x5eed0000
	return func() uint64 { n += 0x10001; return n }
}

func dataOf(t *testing.T, d *Disk) []byte {
	t.Helper()
	b := make([]byte, d.Size())
	if _, err := d.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func assertIdentical(t *testing.T, a, b *Disk) {
	t.Helper()
	da, db := dataOf(t, a), dataOf(t, b)
	if !bytes.Equal(da, db) {
		for i := range da {
			if da[i] != db[i] {
				t.Fatalf("copies differ, first at data byte %d", i)
			}
		}
	}
	// A source still running keeps its crashed-primary flag (it applies
	// writes), so compare generations and states rather than Decide.
	ma, mb := a.Metadata(), b.Metadata()
	if ma.Gens.Current != mb.Gens.Current || ma.State != UpToDate || mb.State != UpToDate {
		t.Fatalf("after resync: node %d %s gen %#x, node %d %s gen %#x", ma.Node, ma.State, ma.Gens.Current, mb.Node, mb.State, mb.Gens.Current)
	}
	ma.Flags, mb.Flags = 0, 0
	if d := Decide(ma, mb); d.Action != InSync {
		t.Fatalf("after resync Decide says %v", d)
	}
}

// pair makes two copies and runs their initial sync.
func pair(t *testing.T) (*copyFile, *copyFile, func() uint64) {
	dir := t.TempDir()
	a, b := newCopy(t, dir, 1), newCopy(t, dir, 2)
	gen := genCounter()
	dec, st, err := SyncCopies(context.Background(), a.disk, b.disk, SyncOptions{NewGen: gen, SkipEqual: true, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Action != FullSync || dec.Source != 1 {
		t.Fatalf("initial decision %v", dec)
	}
	// Two fresh files are all zeros: everything matches, nothing is written.
	if st.Skipped != testData || st.Copied != 0 {
		t.Fatalf("initial sync of zero files: %+v", st)
	}
	return a, b, gen
}

func writeRandom(t *testing.T, rng *rand.Rand, d *Disk, n int, blocks int) map[int64]bool {
	t.Helper()
	touched := map[int64]bool{}
	buf := make([]byte, blocks*FineGranularity)
	for range n {
		off := rng.Int64N(testData/FineGranularity-int64(blocks)) * FineGranularity
		for i := range buf {
			buf[i] = byte(rng.Uint32())
		}
		if _, err := d.WriteAt(buf, off); err != nil {
			t.Fatal(err)
		}
		for k := range int64(blocks) {
			touched[off+k*FineGranularity] = true
		}
	}
	return touched
}

func TestCreateOpenUpdate(t *testing.T) {
	c := newCopy(t, t.TempDir(), 1)
	md := c.disk.Metadata()
	if md.State != Inconsistent || md.Gens.Current != JustCreated || md.Seq != 2 {
		t.Fatalf("new copy: %+v", md)
	}
	for i := range 3 {
		if err := c.disk.Update(func(m *Metadata) { m.Gens.Current = uint64(100 + i) }); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.disk.Update(func(m *Metadata) { m.Node = 2 }); err == nil {
		t.Fatal("identity change accepted")
	}
	c.reopen(t)
	md = c.disk.Metadata()
	if md.Gens.Current != 102 || md.Seq != 5 {
		t.Fatalf("after reopen: gen %d seq %d", md.Gens.Current, md.Seq)
	}
	// Tear the newest slot: the copy opens with the previous update.
	slot, _ := c.disk.Slots()
	junk := bytes.Repeat([]byte{0xa5}, 512)
	if _, err := c.dev.WriteAt(junk, int64(slot)*SlotSize+1024); err != nil {
		t.Fatal(err)
	}
	c.reopen(t)
	md = c.disk.Metadata()
	if md.Gens.Current != 101 || md.Seq != 4 {
		t.Fatalf("after torn slot: gen %d seq %d", md.Gens.Current, md.Seq)
	}
	if _, st := c.disk.Slots(); st[slot].Valid || !strings.Contains(st[slot].Err.Error(), "crc32c") {
		t.Fatalf("torn slot status: %+v", st[slot])
	}
	// The next update overwrites the torn slot, not the good one.
	if err := c.disk.Update(func(m *Metadata) { m.Gens.Current = 200 }); err != nil {
		t.Fatal(err)
	}
	if s, _ := c.disk.Slots(); s != slot {
		t.Fatalf("update went to slot %d, want the torn slot %d", s, slot)
	}
}

func TestSoloMarkingAndBitmapResync(t *testing.T) {
	a, b, gen := pair(t)
	rng := rand.New(rand.NewPCG(1, 2))
	// Lockstep: both copies get the same writes.
	for range 50 {
		off := rng.Int64N(testData/4096) * 4096
		p := bytes.Repeat([]byte{byte(rng.Uint32())}, 8192)
		if off+8192 > testData {
			continue
		}
		for _, c := range []*copyFile{a, b} {
			if _, err := c.disk.WriteAt(p, off); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Node 2 is lost: node 1 goes on alone and marks.
	if err := a.disk.GoSolo(gen()); err != nil {
		t.Fatal(err)
	}
	touched := writeRandom(t, rng, a.disk, 300, 2)
	_, dirty := a.disk.Marks()
	if dirty != int64(len(touched))*FineGranularity {
		t.Fatalf("fine marks cover %d bytes, %d blocks written", dirty, len(touched))
	}
	regions := map[int64]bool{}
	for off := range touched {
		regions[off/testGran] = true
	}
	// The on-disk bits are durable: read them back from the file.
	md, _, _, err := ReadMetadata(a.dev)
	if err != nil {
		t.Fatal(err)
	}
	onDisk, err := ReadBitmap(a.dev, md)
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.Count() != int64(len(regions)) {
		t.Fatalf("on-disk bitmap has %d bits, %d regions written", onDisk.Count(), len(regions))
	}
	for r := range regions {
		if !onDisk.Test(r) {
			t.Fatalf("region %d written but not marked on disk", r)
		}
	}
	dec, st, err := SyncCopies(context.Background(), a.disk, b.disk, SyncOptions{NewGen: gen, Chunk: 64 << 10, InFlight: 4})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Action != BitmapResync || dec.Source != 1 {
		t.Fatalf("decision %v", dec)
	}
	// Survivor did not restart: exactly the written blocks are copied.
	if st.Copied != dirty {
		t.Fatalf("copied %d bytes, %d were dirty", st.Copied, dirty)
	}
	assertIdentical(t, a.disk, b.disk)
	if md := a.disk.OnDiskMarks(); md.Count() != 0 {
		t.Fatalf("%d on-disk marks left after resync", md.Count())
	}
}

func TestSurvivorRestartResyncsCoarseRegions(t *testing.T) {
	a, b, gen := pair(t)
	if err := b.disk.GoSolo(gen()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	touched := writeRandom(t, rng, b.disk, 40, 1)
	regions := map[int64]bool{}
	for off := range touched {
		regions[off/testGran] = true
	}
	// The survivor crashes too (double crash, node 1 died first), and both
	// restart, in either order: the generations pick node 2.
	a.reopen(t)
	b.reopen(t)
	for _, order := range [][2]*Disk{{a.disk, b.disk}, {b.disk, a.disk}} {
		if d := Decide(order[0].Metadata(), order[1].Metadata()); d.Action != BitmapResync || d.Source != 2 {
			t.Fatalf("after double crash: %v", d)
		}
	}
	_, st, err := SyncCopies(context.Background(), a.disk, b.disk, SyncOptions{NewGen: gen})
	if err != nil {
		t.Fatal(err)
	}
	if st.Copied != int64(len(regions))*testGran {
		t.Fatalf("copied %d bytes, want %d whole regions", st.Copied, len(regions))
	}
	assertIdentical(t, a.disk, b.disk)
}

func TestDoubleCrashInLockstep(t *testing.T) {
	a, b, gen := pair(t)
	for _, c := range []*copyFile{a, b} {
		c.disk.SetMarking(true)
		if err := c.disk.MarkRunning(); err != nil {
			t.Fatal(err)
		}
	}
	p := bytes.Repeat([]byte{0x42}, 4096)
	for _, c := range []*copyFile{a, b} {
		if _, err := c.disk.WriteAt(p, 5<<20); err != nil {
			t.Fatal(err)
		}
	}
	// An in-flight write reached node 2's disk only; node 1 had marked it.
	if _, err := a.disk.markBefore(9<<20, 4096); err != nil {
		t.Fatal(err)
	}
	if _, err := b.disk.WriteAt(bytes.Repeat([]byte{0x99}, 4096), 9<<20); err != nil {
		t.Fatal(err)
	}
	a.reopen(t)
	b.reopen(t)
	dec, _, err := SyncCopies(context.Background(), b.disk, a.disk, SyncOptions{NewGen: gen, Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Action != BitmapResync || dec.Rule != 40 {
		t.Fatalf("double crash in lockstep: %v", dec)
	}
	assertIdentical(t, a.disk, b.disk)
}

func TestInterruptedResyncResumes(t *testing.T) {
	a, b, gen := pair(t)
	if err := a.disk.GoSolo(gen()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	writeRandom(t, rng, a.disk, 400, 4)
	a.reopen(t) // coarse marks only: lots to copy
	total := a.disk.OnDiskMarks().DirtyBytes()

	// Node 2's disk fails a write partway through the resync.
	fd := faultdev.New(b.dev)
	fd.Add(faultdev.Rule{Ops: faultdev.Write, Off: b.disk.Metadata().DataOffset + 20<<20, Len: 1 << 20, Count: 1})
	bd, err := Open(&lockedDev{Device: fd})
	if err != nil {
		t.Fatal(err)
	}
	opts := SyncOptions{NewGen: gen, Chunk: 256 << 10, CheckpointEvery: 1 << 20, InFlight: 3}
	_, st1, err := SyncCopies(context.Background(), a.disk, bd, opts)
	var re *RegionError
	if !errors.As(err, &re) || !errors.Is(err, faultdev.ErrInjected) {
		t.Fatalf("want an injected RegionError, got %v", err)
	}
	// With several chunks in flight any chunk overlapping the bad MiB may
	// be the one that hits it.
	if re.Op != "write target" || re.Off >= 21<<20 || re.Off+re.Len <= 20<<20 {
		t.Fatalf("error names region [%d, %d) op %q, fault was at data [%d, %d)", re.Off, re.Off+re.Len, re.Op, 20<<20, 21<<20)
	}
	if !strings.Contains(err.Error(), "resync: write target region [") {
		t.Fatalf("error text %q does not name the region", err)
	}
	if ok, _ := CanGoLiveAlone(bd.Metadata()); ok {
		t.Fatal("half-resynced target may go live alone")
	}
	// Both restart; the resync continues where it stopped.
	a.reopen(t)
	b.reopen(t)
	left := a.disk.OnDiskMarks().DirtyBytes()
	if left >= total || left == 0 {
		t.Fatalf("progress not persisted: %d of %d bytes still marked", left, total)
	}
	dec, st2, err := SyncCopies(context.Background(), a.disk, b.disk, opts)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Action != BitmapResync || dec.Source != 1 {
		t.Fatalf("resume decision %v", dec)
	}
	if st2.Copied != left || st1.Copied+st2.Copied > total+1<<20 {
		t.Fatalf("resume copied %d (left %d), first run %d, total %d", st2.Copied, left, st1.Copied, total)
	}
	assertIdentical(t, a.disk, b.disk)
}

func TestFullSyncToReplacedDisk(t *testing.T) {
	a, b, gen := pair(t)
	rng := rand.New(rand.NewPCG(7, 8))
	writeRandom(t, rng, a.disk, 50, 1)
	_ = b
	// Node 2's disk is replaced by a new one.
	dir := t.TempDir()
	nb := newCopy(t, dir, 2)
	dec, st, err := SyncCopies(context.Background(), nb.disk, a.disk, SyncOptions{NewGen: gen, SkipEqual: true})
	if err != nil {
		t.Fatal(err)
	}
	if dec.Action != FullSync || dec.Source != 1 {
		t.Fatalf("replaced disk: %v", dec)
	}
	if st.Copied+st.Skipped != testData || st.Copied == 0 || st.Skipped == 0 {
		t.Fatalf("full sync with skip-equal: %+v", st)
	}
	assertIdentical(t, a.disk, nb.disk)
}

func TestSplitBrainNeedsOperator(t *testing.T) {
	a, b, gen := pair(t)
	for _, c := range []*copyFile{a, b} {
		if err := c.disk.GoSolo(gen()); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	writeRandom(t, rng, a.disk, 20, 1)
	bTouched := writeRandom(t, rng, b.disk, 20, 1)
	before := dataOf(t, b.disk)
	dec, _, err := SyncCopies(context.Background(), a.disk, b.disk, SyncOptions{NewGen: gen})
	if !errors.Is(err, ErrSplitBrain) || dec.Action != SplitBrain {
		t.Fatalf("split brain: %v %v", dec, err)
	}
	if !bytes.Equal(before, dataOf(t, b.disk)) {
		t.Fatal("split brain detection wrote data")
	}
	if err := b.disk.Update(func(m *Metadata) { *m = MarkDiscard(*m) }); err != nil {
		t.Fatal(err)
	}
	dec, st, err := SyncCopies(context.Background(), a.disk, b.disk, SyncOptions{NewGen: gen})
	if err != nil || dec.Source != 1 {
		t.Fatalf("resolved: %v %v", dec, err)
	}
	// Node 2's own changes were overwritten as well (union of marks).
	if st.Copied < int64(len(bTouched))*FineGranularity {
		t.Fatalf("copied %d bytes, node 2 alone wrote %d blocks", st.Copied, len(bTouched))
	}
	assertIdentical(t, a.disk, b.disk)
}

// recDev records the order of operations.
type recDev struct {
	blockdev.Device
	mu  sync.Mutex
	ops []string
	md  int64
}

func (r *recDev) WriteAt(p []byte, off int64) (int, error) {
	r.mu.Lock()
	if off < r.md {
		r.ops = append(r.ops, "meta")
	} else {
		r.ops = append(r.ops, "data")
	}
	r.mu.Unlock()
	return r.Device.WriteAt(p, off)
}

func (r *recDev) Flush() error {
	r.mu.Lock()
	r.ops = append(r.ops, "flush")
	r.mu.Unlock()
	return r.Device.Flush()
}

func TestMarkBeforeWrite(t *testing.T) {
	c := newCopy(t, t.TempDir(), 1)
	rd := &recDev{Device: c.dev, md: c.disk.Metadata().DataOffset}
	d, err := Open(rd)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Update(func(m *Metadata) { m.State, m.Gens.Current = UpToDate, 77 }); err != nil {
		t.Fatal(err)
	}
	if err := d.GoSolo(78); err != nil {
		t.Fatal(err)
	}
	rd.ops = nil
	p := make([]byte, 4096)
	for _, off := range []int64{0, 4096, 2 << 20} {
		if _, err := d.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
	got := strings.Join(rd.ops, ",")
	// Cold region: bitmap page, flush, then data. Warm region: data only.
	if want := "meta,flush,data,data,meta,flush,data"; got != want {
		t.Fatalf("operation order %s, want %s", got, want)
	}
	// A failing bitmap write keeps the data write from happening at all.
	fd := faultdev.New(c.dev)
	d2, err := Open(fd)
	if err != nil {
		t.Fatal(err)
	}
	d2.SetMarking(true)
	fd.Add(faultdev.Rule{Ops: faultdev.Write, Off: BitmapOffset, Len: 4096})
	if _, err := d2.WriteAt(bytes.Repeat([]byte{1}, 4096), 8<<20); err == nil || !strings.Contains(err.Error(), "mark [8388608, 8392704)") {
		t.Fatalf("bitmap write failure: %v", err)
	}
	b := make([]byte, 4096)
	if _, err := d2.ReadAt(b, 8<<20); err != nil || !bytes.Equal(b, make([]byte, 4096)) {
		t.Fatalf("data written although its mark failed (err %v)", err)
	}
}

func TestConcurrentWritesDuringResync(t *testing.T) {
	a, b, gen := pair(t)
	if err := a.disk.GoSolo(gen()); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(11, 12))
	writeRandom(t, rng, a.disk, 200, 2)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(13, 14))
		buf := make([]byte, 4096)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			if _, err := a.disk.WriteAt(buf, r.Int64N(testData/4096)*4096); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	r := &Resync{Src: a.disk, Dst: b.disk, Size: testData, Marks: a.disk, FlushDst: b.disk.Flush,
		Progress: a.disk, Chunk: 16 << 10, CheckpointEvery: 1 << 20, InFlight: 4}
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	// Writes that raced the first run were re-marked; a final run with the
	// writer quiesced (the hand-over) leaves identical copies.
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dataOf(t, a.disk), dataOf(t, b.disk)) {
		t.Fatal("copies differ after resync with concurrent writes")
	}
}

func TestVerifyReportsRegions(t *testing.T) {
	a, b, _ := pair(t)
	for _, off := range []int64{3 << 20, 3<<20 + 4096, 17<<20 + 512} {
		if _, err := b.disk.WriteAt(bytes.Repeat([]byte{7}, 512), off); err != nil {
			t.Fatal(err)
		}
	}
	diffs, err := Verify(context.Background(), ReaderSummer{a.disk}, ReaderSummer{b.disk}, testData, VerifyOptions{Region: 1 << 20, Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []Range{{3 << 20, 1 << 20}, {17 << 20, 1 << 20}}
	if len(diffs) != 2 || diffs[0] != want[0] || diffs[1] != want[1] {
		t.Fatalf("diffs %v, want %v", diffs, want)
	}
	// An unreadable region is reported with its place.
	fd := faultdev.New(b.dev)
	fd.Add(faultdev.Rule{Ops: faultdev.Read, Off: b.disk.Metadata().DataOffset + 9<<20, Len: 4096})
	bd, err := Open(fd)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(context.Background(), ReaderSummer{a.disk}, ReaderSummer{bd}, testData, VerifyOptions{})
	if !errors.Is(err, faultdev.ErrInjected) || !strings.Contains(err.Error(), "copy B: checksum region [9437184, 10485760)") {
		t.Fatalf("read error: %v", err)
	}
}

func TestOpenRejectsTruncated(t *testing.T) {
	c := newCopy(t, t.TempDir(), 2)
	c.dev.Close()
	if err := os.Truncate(c.path, 8<<20); err != nil {
		t.Fatal(err)
	}
	dev, err := filedev.Open(c.path, filedev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	if _, err := Open(dev); err == nil || !strings.Contains(err.Error(), "device_size") {
		t.Fatalf("truncated copy: %v", err)
	}
}

func TestIOErrorDetach(t *testing.T) {
	a, b, gen := pair(t)
	fd := faultdev.New(b.dev)
	bd, err := Open(fd)
	if err != nil {
		t.Fatal(err)
	}
	// A lockstep write fails on node 2's disk.
	fd.Add(faultdev.Rule{Ops: faultdev.Write, Off: bd.Metadata().DataOffset + 6<<20, Len: 4096, Count: 1})
	p := bytes.Repeat([]byte{0x5a}, 8192)
	if _, err := a.disk.WriteAt(p, 6<<20); err != nil {
		t.Fatal(err)
	}
	_, werr := bd.WriteAt(p, 6<<20)
	if !errors.Is(werr, faultdev.ErrInjected) || !strings.Contains(werr.Error(), "write data [6291456, 6299648)") {
		t.Fatalf("write error does not name the region: %v", werr)
	}
	// Node 2's copy is detached; node 1 goes on alone and marks the failed
	// write as well.
	if err := bd.Detach(werr); err != nil {
		t.Fatal(err)
	}
	if ok, _ := CanGoLiveAlone(bd.Metadata()); ok {
		t.Fatal("a detached copy may go live alone")
	}
	if err := a.disk.GoSolo(gen()); err != nil {
		t.Fatal(err)
	}
	if err := a.disk.MarkRanges([][2]int64{{6 << 20, 8192}}); err != nil {
		t.Fatal(err)
	}
	// The disk is replaced or recovers: resync repairs the copy.
	fd.Clear()
	dec, _, err := SyncCopies(context.Background(), a.disk, bd, SyncOptions{NewGen: gen})
	if err != nil || dec.Action != BitmapResync || dec.Source != 1 {
		t.Fatalf("after detach: %v %v", dec, err)
	}
	assertIdentical(t, a.disk, bd)
}

func TestClearSyncedInLockstep(t *testing.T) {
	a, _, _ := pair(t)
	a.disk.SetMarking(true)
	p := make([]byte, 4096)
	for _, off := range []int64{0, 5 << 20, 9 << 20} {
		if _, err := a.disk.WriteAt(p, off); err != nil {
			t.Fatal(err)
		}
	}
	// One write is still in flight (marked, not completed) in region 20.
	if _, err := a.disk.markBefore(20<<20, 4096); err != nil {
		t.Fatal(err)
	}
	if n := a.disk.OnDiskMarks().Count(); n != 4 {
		t.Fatalf("%d regions marked, want 4", n)
	}
	if err := a.disk.ClearSynced(); err != nil {
		t.Fatal(err)
	}
	a.reopen(t) // what a crash now would leave
	bm := a.disk.OnDiskMarks()
	if bm.Count() != 1 || !bm.Test(20) {
		t.Fatalf("after ClearSynced: %v marked, want only region 20", bm.Ranges())
	}
}

// TestProgressStraddlingRegion: a region whose first half was copied before
// a progress snapshot and whose second half after it must not be cleared
// on disk until the second half is flushed too.
func TestProgressStraddlingRegion(t *testing.T) {
	a, _, gen := pair(t)
	if err := a.disk.GoSolo(gen()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.disk.WriteAt(make([]byte, testGran), 4*testGran); err != nil {
		t.Fatal(err)
	}
	if s, n, ok := a.disk.TakeNext(0, testGran/2); !ok || s != 4*testGran || n != testGran/2 {
		t.Fatalf("first half: %d %d %v", s, n, ok)
	}
	tok := a.disk.SnapshotProgress()
	if _, _, ok := a.disk.TakeNext(0, testGran); !ok {
		t.Fatal("second half not marked")
	}
	// The second half is taken (being copied, not yet flushed) when the
	// first token commits.
	if err := a.disk.CommitProgress(tok, 4*testGran+testGran/2); err != nil {
		t.Fatal(err)
	}
	if !a.disk.OnDiskMarks().Test(4) {
		t.Fatal("region cleared on disk while half of it was not yet flushed on the target")
	}
	if err := a.disk.CommitProgress(a.disk.SnapshotProgress(), 5*testGran); err != nil {
		t.Fatal(err)
	}
	if a.disk.OnDiskMarks().Test(4) {
		t.Fatal("region still marked after its last part was committed")
	}
}

// lockedDev serialises a device that is not safe for concurrent use
// (faultdev) for tests with several resync chunks in flight.
type lockedDev struct {
	mu sync.Mutex
	blockdev.Device
}

func (l *lockedDev) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Device.ReadAt(p, off)
}

func (l *lockedDev) WriteAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Device.WriteAt(p, off)
}

func (l *lockedDev) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.Device.Flush()
}

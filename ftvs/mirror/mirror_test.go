package mirror

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev/faultdev"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Solo marking, then resync copies exactly the written 4 KiB blocks, and
// the target takes the source's generations.
func TestSoloMarkingThenResyncCopiesMarkedOnly(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	m1 := p.n[1].m
	if err := m1.PeerLost(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, p.n[1], EventSolo)
	offs := map[int64]bool{}
	for i := range 40 {
		off := int64((i*7919)%(testData/4096)) * 4096
		writeBlock(t, m1, uint64(i), off)
		offs[off] = true
	}
	if _, dirty := p.n[1].disk.Marks(); dirty != int64(len(offs))*4096 {
		t.Fatalf("marked %d bytes, wrote %d distinct blocks", dirty, len(offs))
	}
	if ok, _ := p.n[2].m.MayGoLive(); !ok {
		t.Fatal("node 2 is UpToDate in its own metadata; the daemon's guard decides; the disk says yes")
	}
	dec, err := p.reconnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Action != vdisk.BitmapResync || dec.Source != 1 {
		t.Fatalf("decision %v, want bitmap resync from node 1", dec)
	}
	if got := m1.ResyncStats().Copied; got != int64(len(offs))*4096 {
		t.Fatalf("resync copied %d bytes, want exactly the %d marked", got, len(offs)*4096)
	}
	p.assertIdentical()
	a, b := p.n[1].disk.Metadata(), p.n[2].disk.Metadata()
	if a.Gens.Current != b.Gens.Current || b.State != vdisk.UpToDate {
		t.Fatalf("after resync: node 1 %+v %v, node 2 %+v %v", a.Gens, a.State, b.Gens, b.State)
	}
	waitEvent(t, p.n[2], EventResyncDone)
	if a.Gens.Bitmap != 0 || a.Gens != b.Gens {
		t.Fatalf("source kept a bitmap generation or gens differ: %+v vs %+v", a.Gens, b.Gens)
	}
}

// failingPacer stops the resync after n chunks (a link cut mid-resync).
type failingPacer struct{ left int }

var errCut = errors.New("link cut (test)")

func (f *failingPacer) Take(ctx context.Context, n int64) error {
	if f.left <= 0 {
		return errCut
	}
	f.left--
	return nil
}

func TestResyncInterruptedAndResumed(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	fp := &failingPacer{left: 5}
	p.pacers[1] = fp
	p.crash(1)
	p.start(1)
	m1 := p.n[1].m
	if err := m1.PeerLost(); err != nil {
		t.Fatal(err)
	}
	// 24 MiB of writes: 96 chunks of 256 KiB.
	for i := range 24 * 256 {
		writeBlock(t, m1, uint64(i), int64(i)*4096)
	}
	_, err := p.reconnect(ctx)
	if !errors.Is(err, errCut) {
		t.Fatalf("interrupted resync: %v, want the cut", err)
	}
	if ok, why := p.n[2].m.MayGoLive(); ok {
		t.Fatal("a half-resynced target may go live")
	} else {
		t.Logf("target refuses to go live: %s", why)
	}
	first := m1.ResyncStats().Copied
	if first != 5*256<<10 {
		t.Fatalf("first run copied %d bytes, want 5 chunks", first)
	}
	// The source restarts too: only the on-disk progress is left.
	p.pacers[1] = nil
	p.crash(1)
	p.start(1)
	if _, err := p.reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	second := p.n[1].m.ResyncStats().Copied
	total := int64(24 << 20)
	// Progress is persisted per 4 MiB region: the second run copies the
	// rest, at most one region again.
	if second > total-first+testGran || second < total-first {
		t.Fatalf("resumed run copied %d bytes; first run %d of %d", second, first, total)
	}
	p.assertIdentical()
}

// The resync never runs ahead of its token bucket (virtual clock).
func TestResyncRateLimit(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	var now time.Time
	tb := &vdisk.TokenBucket{Rate: 4 << 20, Burst: 256 << 10,
		Now: func() time.Time { return now },
		Sleep: func(ctx context.Context, d time.Duration) error {
			now = now.Add(d)
			return nil
		}}
	p.pacers[1] = tb
	p.crash(1)
	p.start(1)
	m1 := p.n[1].m
	if err := m1.PeerLost(); err != nil {
		t.Fatal(err)
	}
	for i := range 2048 {
		writeBlock(t, m1, uint64(i), int64(i)*8192)
	}
	start := now
	if _, err := p.reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	copied := m1.ResyncStats().Copied
	elapsed := now.Sub(start).Seconds()
	allowed := elapsed*float64(tb.Rate) + float64(tb.Burst) + float64(256<<10)
	if float64(copied) > allowed || copied < 2048*4096 {
		t.Fatalf("copied %d bytes in %.3f virtual seconds at %d B/s (allowed %.0f)", copied, elapsed, tb.Rate, allowed)
	}
	if elapsed < float64(copied-tb.Burst)/float64(tb.Rate)*0.99 {
		t.Fatalf("bucket let %d bytes through in %.3f s", copied, elapsed)
	}
	p.assertIdentical()
}

// An I/O error on one copy: detached, an event, reads and writes go on
// through the peer's copy, which goes solo and marks.
func TestIOErrorDetachesAndServesThroughPeer(t *testing.T) {
	p := newPair(t)
	m1 := p.n[1].m
	l, _ := vdisk.Layout(testData, 512, testGran)
	var want [][2]any
	for i := range 8 {
		b := writeBlock(t, m1, uint64(i), int64(i)*4096)
		want = append(want, [2]any{int64(i) * 4096, b})
	}
	if err := m1.Flush(); err != nil {
		t.Fatal(err)
	}
	// node 2 is in sync for these: copy them by resync-free means — node 2
	// never saw them, so write them there too (as lockstep would have).
	for _, w := range want {
		if _, err := p.n[2].m.WriteAt(w[1].([]byte), w[0].(int64)); err != nil {
			t.Fatal(err)
		}
	}
	p.n[1].fault.add(faultdev.Rule{Ops: faultdev.Write | faultdev.Read, Off: l.DataOffset + 16<<20, Len: 4096})
	b := pattern(99, 16<<20)
	if _, err := m1.WriteAt(b, 16<<20); err != nil {
		t.Fatalf("write over a failing disk: %v (the VS must carry on)", err)
	}
	e := waitEvent(t, p.n[1], EventDetached)
	t.Logf("event: %s", e.Reason)
	if !m1.Detached() {
		t.Fatal("copy not detached")
	}
	waitEvent(t, p.n[2], EventSolo)
	if md := p.n[1].disk.Metadata(); md.State != vdisk.Inconsistent {
		t.Fatalf("detached copy is %v, want Inconsistent", md.State)
	}
	if ok, _ := m1.MayGoLive(); ok {
		t.Fatal("a detached copy may go live")
	}
	got := make([]byte, 4096)
	if _, err := m1.ReadAt(got, 16<<20); err != nil || !bytes.Equal(got, b) {
		t.Fatalf("read back through the peer: %v, equal %v", err, bytes.Equal(got, b))
	}
	for _, w := range want {
		if _, err := m1.ReadAt(got, w[0].(int64)); err != nil || !bytes.Equal(got, w[1].([]byte)) {
			t.Fatalf("read at %d through the peer: %v", w[0], err)
		}
	}
	if err := m1.Flush(); err != nil {
		t.Fatalf("flush through the peer: %v", err)
	}
	st := m1.Stats()
	if st.RemoteWrites != 1 || st.RemoteReads != 9 {
		t.Fatalf("stats %+v", st)
	}
	// The peer marked the failed write: its copy knows what to resync.
	if _, dirty := p.n[2].disk.Marks(); dirty == 0 {
		t.Fatal("peer's copy marks nothing after our detach")
	}
	if md := p.n[2].disk.Metadata(); md.Gens.Bitmap == 0 {
		t.Fatalf("peer did not go solo: %+v", md.Gens)
	}
}

// Client I/O first: while a client request is in flight on the source,
// the resync issues no chunk (ClientMaxWait is set far beyond the test);
// once it completes the resync runs to the end.
func TestResyncYieldsToClientIO(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	p.crash(1)
	n1 := p.start(1)
	n1.m.cf.MaxWait = time.Hour
	if err := n1.m.PeerLost(); err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		writeBlock(t, n1.m, uint64(i), int64(i)*65536)
	}
	n1.m.cf.Begin() // a client request that has not completed
	done := make(chan error, 1)
	go func() {
		_, err := p.reconnect(ctx)
		done <- err
	}()
	for range 20 {
		select {
		case err := <-done:
			t.Fatalf("resync finished while a client request was in flight: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if c := n1.m.ResyncStats().Chunks; c != 0 {
			t.Fatalf("resync issued %d chunks while a client request was in flight", c)
		}
	}
	n1.m.cf.End()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	p.assertIdentical()
}

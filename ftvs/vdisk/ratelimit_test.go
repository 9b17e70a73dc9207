package vdisk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// fakeClock advances only when the bucket sleeps.
type fakeClock struct {
	now    time.Time
	slept  time.Duration
	sleeps int
}

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	c.slept += d
	c.sleeps++
	return nil
}

// memMarks is a Marks over a Bitmap, for engine tests without a Disk.
type memMarks struct{ b *Bitmap }

func (m memMarks) TakeNext(off, max int64) (int64, int64, bool) {
	i, ok := m.b.NextSet(off / m.b.gran)
	if !ok {
		return 0, 0, false
	}
	start, n := i*m.b.gran, int64(0)
	for m.b.Test(i) && n < max {
		m.b.ClearBit(i)
		n += m.b.gran
		i++
	}
	return start, n, true
}
func (m memMarks) Remark(off, n int64) { m.b.Mark(off, n) }

func memPair(t *testing.T, size int64) (*blockdev.Mem, *blockdev.Mem) {
	src, err := blockdev.NewMem(size, 512)
	if err != nil {
		t.Fatal(err)
	}
	dst, _ := blockdev.NewMem(size, 512)
	for i := range src.Bytes() {
		src.Bytes()[i] = byte(i*7 + i>>12)
	}
	return src, dst
}

// countingPacer grants at most limit bytes, recording every request.
type countingPacer struct {
	granted, limit int64
	requests       int
}

var errBudget = errors.New("budget spent")

func (p *countingPacer) Take(_ context.Context, n int64) error {
	if p.granted+n > p.limit {
		return errBudget
	}
	p.granted += n
	p.requests++
	return nil
}

func TestResyncBytesPerToken(t *testing.T) {
	for _, inflight := range []int{1, 4} {
		t.Run(fmt.Sprintf("inflight=%d", inflight), func(t *testing.T) { testBytesPerToken(t, inflight) })
	}
}

func testBytesPerToken(t *testing.T, inflight int) {
	const size = 8 << 20
	src, dst := memPair(t, size)
	marks := NewBitmap(size, 4096)
	marks.MarkAll()
	p := &countingPacer{limit: 3 << 20}
	r := &Resync{Src: src, Dst: dst, Size: size, Marks: memMarks{marks}, Pacer: p, Chunk: 256 << 10, InFlight: inflight}
	st, err := r.Run(context.Background())
	if !errors.Is(err, errBudget) {
		t.Fatalf("want the pacer's error, got %v", err)
	}
	// Every byte written was paid for, and no more than the budget.
	if st.Copied != p.granted || st.Copied != 3<<20 || int64(p.requests) != st.Chunks {
		t.Fatalf("copied %d, granted %d in %d requests, %d chunks", st.Copied, p.granted, p.requests, st.Chunks)
	}
	// The chunk refused by the pacer is marked again: nothing is lost.
	if marks.DirtyBytes() != size-3<<20 {
		t.Fatalf("%d bytes still marked, want %d", marks.DirtyBytes(), size-3<<20)
	}
	if !bytes.Equal(src.Bytes()[:3<<20], dst.Bytes()[:3<<20]) || bytes.Equal(src.Bytes()[3<<20:], dst.Bytes()[3<<20:]) {
		t.Fatal("copied region does not match the tokens granted")
	}
}

func TestTokenBucketRate(t *testing.T) {
	const size = 16 << 20
	const rate = 4 << 20 // 4 MiB per virtual second
	src, dst := memPair(t, size)
	marks := NewBitmap(size, 4096)
	marks.MarkAll()
	clk := &fakeClock{now: time.Unix(1000, 0)}
	tb := &TokenBucket{Rate: rate, Burst: 512 << 10, Now: clk.Now, Sleep: clk.Sleep}
	r := &Resync{Src: src, Dst: dst, Size: size, Marks: memMarks{marks}, Pacer: tb, Chunk: 128 << 10}
	st, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Copied != size || !bytes.Equal(src.Bytes(), dst.Bytes()) {
		t.Fatalf("copied %d of %d", st.Copied, size)
	}
	// In virtual time: bytes copied <= burst + rate * elapsed, and the
	// bucket did not over-throttle either (within one chunk).
	maxBytes := float64(tb.Burst) + clk.slept.Seconds()*rate
	if float64(st.Copied) > maxBytes+1 {
		t.Fatalf("copied %d bytes in %v of virtual time at %d B/s (max %.0f)", st.Copied, clk.slept, rate, maxBytes)
	}
	minBytes := float64(tb.Burst) + clk.slept.Seconds()*rate - float64(r.Chunk)
	if float64(st.Copied) < minBytes {
		t.Fatalf("bucket over-throttles: %d bytes in %v", st.Copied, clk.slept)
	}
}

func TestTokenBucketLargeRequest(t *testing.T) {
	clk := &fakeClock{now: time.Unix(0, 0)}
	tb := &TokenBucket{Rate: 1000, Burst: 100, Now: clk.Now, Sleep: clk.Sleep}
	for range 5 {
		if err := tb.Take(context.Background(), 1000); err != nil {
			t.Fatal(err)
		}
	}
	// 5000 bytes at 1000 B/s with a 100-byte burst: at least 3.9 s.
	if clk.slept < 3900*time.Millisecond {
		t.Fatalf("5000 bytes took only %v of virtual time", clk.slept)
	}
	if err := (&TokenBucket{Now: clk.Now, Sleep: clk.Sleep}).Take(context.Background(), 1); err == nil {
		t.Fatal("zero rate accepted")
	}
}

type countingYield struct{ n int }

func (y *countingYield) Yield(context.Context) error { y.n++; return nil }

func TestResyncYieldsBeforeEveryChunk(t *testing.T) {
	const size = 1 << 20
	src, dst := memPair(t, size)
	marks := NewBitmap(size, 4096)
	marks.Mark(0, 64<<10)
	marks.Mark(512<<10, 64<<10)
	y := &countingYield{}
	r := &Resync{Src: src, Dst: dst, Size: size, Marks: memMarks{marks}, Yield: y, Chunk: 32 << 10}
	st, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Chunks != 4 || y.n < int(st.Chunks) {
		t.Fatalf("%d chunks, %d yields", st.Chunks, y.n)
	}
	if st.Copied != 128<<10 {
		t.Fatalf("copied %d bytes of 128 KiB marked", st.Copied)
	}
}

func TestBitmapBasics(t *testing.T) {
	b := NewBitmap(10*4096+512, 4096)
	if b.Len() != 11 {
		t.Fatalf("len %d", b.Len())
	}
	if n := b.Mark(4095, 2); n != 2 {
		t.Fatalf("mark across a boundary set %d bits", n)
	}
	b.Mark(10*4096, 512)
	if b.DirtyBytes() != 2*4096+512 {
		t.Fatalf("dirty %d", b.DirtyBytes())
	}
	if got := b.Ranges(); len(got) != 2 || got[0] != [2]int64{0, 8192} || got[1] != [2]int64{40960, 512} {
		t.Fatalf("ranges %v", got)
	}
	if i, ok := b.NextSet(2); !ok || i != 10 {
		t.Fatalf("NextSet(2) = %d %v", i, ok)
	}
	img := append([]byte(nil), b.Bytes()...)
	c := NewBitmap(10*4096+512, 4096)
	if err := c.Load(append(img, 0, 0)); err != nil || c.Count() != 3 {
		t.Fatalf("load: %v count %d", err, c.Count())
	}
	img[1] |= 0x80 // bit 15: beyond the 11 regions
	if err := c.Load(img); err == nil {
		t.Fatal("bits beyond the last region accepted")
	}
	big := NewBitmap(1<<30, 4096)
	big.SetBit(big.Len() - 1)
	if i, ok := big.NextSet(0); !ok || i != big.Len()-1 {
		t.Fatalf("NextSet over a sparse bitmap: %d %v", i, ok)
	}
}

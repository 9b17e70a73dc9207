package vdisk

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"unsafe"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// framingTarget is a ChunkWriter like mirror's link target: it keeps every
// buffer it is given, checks that the data sits behind its headroom, and
// applies it to a memory copy.
type framingTarget struct {
	mu   sync.Mutex
	dst  *blockdev.Mem
	kept [][]byte
	bad  int
}

const testHeadroom = 31

func (f *framingTarget) WriteAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bad++ // the engine must use WriteChunk
	return f.dst.WriteAt(p, off)
}

func (f *framingTarget) ChunkHeadroom() int { return testHeadroom }

func (f *framingTarget) WriteChunk(buf []byte, off int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !bytes.Equal(buf[:testHeadroom], make([]byte, testHeadroom)) {
		f.bad++
	}
	if uintptr(unsafe.Pointer(&buf[testHeadroom]))%4096 != 0 {
		f.bad++ // the data must be aligned for O_DIRECT reads
	}
	copy(buf[:testHeadroom], "header written in place by the target")
	f.kept = append(f.kept, buf)
	_, err := f.dst.WriteAt(buf[testHeadroom:], off)
	return err
}

// A ChunkWriter target gets each chunk in its own buffer behind its
// headroom (never one the engine reuses), the data 4 KiB-aligned, and the
// copy is complete.
func TestResyncChunkWriterOwnsBuffers(t *testing.T) {
	const size = 8 << 20
	src, dst := memPair(t, size)
	marks := NewBitmap(size, 4096)
	marks.MarkAll()
	f := &framingTarget{dst: dst}
	r := &Resync{Src: src, Dst: f, Size: size, Marks: memMarks{marks}, Chunk: 256 << 10, InFlight: 4, CheckpointEvery: 1 << 20}
	st, err := r.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.bad != 0 {
		t.Fatalf("%d chunks came through WriteAt, without clean headroom or unaligned", f.bad)
	}
	if !bytes.Equal(src.Bytes(), dst.Bytes()) || st.Copied != size {
		t.Fatalf("copied %d of %d bytes; copies equal: %v", st.Copied, size, bytes.Equal(src.Bytes(), dst.Bytes()))
	}
	// Each kept buffer still holds its own chunk: none was reused.
	seen := map[*byte]bool{}
	for _, b := range f.kept {
		if seen[&b[0]] {
			t.Fatal("the engine handed the same buffer twice")
		}
		seen[&b[0]] = true
	}
	if len(f.kept) != size/(256<<10) || st.Checkpoints < 8 {
		t.Fatalf("%d chunks kept, %d checkpoints; want %d and at least 8", len(f.kept), st.Checkpoints, size/(256<<10))
	}
}

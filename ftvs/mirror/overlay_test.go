package mirror

import (
	"bytes"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

func memMirror(t *testing.T, cfg Config) *Mirror {
	t.Helper()
	l, err := vdisk.Layout(4<<20, 512, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	mem, _ := blockdev.NewMem(l.DeviceSize, 512)
	d, err := vdisk.Create(mem, vdisk.CreateOptions{UUID: testUUID, Node: 1, DataSize: 4 << 20, Granularity: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Disk, cfg.Link, cfg.NewGen = d, nullTransport{}, func() uint64 { return 99 }
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.lockstep = true
	return m
}

// A lagging peer's data is rebuilt at the reader's count: partial
// overlaps applied in write order; data evicted by the byte budget is an
// error, never a silent stale read.
func TestOverlayRebuildsAtTheReadersCount(t *testing.T) {
	m := memMirror(t, Config{})
	fill := func(v byte, n int) []byte { return bytes.Repeat([]byte{v}, n) }
	m.recordWrite(0, fill(1, 4096))    // 1: the peer has it
	m.recordWrite(512, fill(2, 1024))  // 2
	m.recordWrite(1024, fill(3, 4096)) // 3
	m.recordWrite(8192, fill(4, 512))  // 4: outside the range read
	m.recordWrite(0, fill(5, 512))     // 5
	want := fill(1, 4096)
	copy(want[512:], fill(2, 1024))
	copy(want[1024:], fill(3, 3072))
	copy(want[0:], fill(5, 512))
	got := fill(1, 4096) // what the peer at write 1 returns
	if err := m.overlay(got, 0, 1, 5); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("rebuilt %v..., want %v...", got[:16], want[:16])
	}
	// Only writes up to the reader's count apply.
	got = fill(1, 4096)
	if err := m.overlay(got, 0, 1, 2); err != nil {
		t.Fatal(err)
	}
	if got[600] != 2 || got[2048] != 1 || got[0] != 1 {
		t.Fatalf("write 3 or 5 applied at count 2: %v %v %v", got[0], got[600], got[2048])
	}

	small := memMirror(t, Config{HistoryBytes: 8192})
	for i := range 3 {
		small.recordWrite(0, fill(byte(i+1), 4096))
	}
	if err := small.overlay(make([]byte, 4096), 0, 0, 3); err == nil {
		t.Fatal("rebuilt a read from a write whose data the budget evicted")
	}
	if err := small.overlay(make([]byte, 4096), 0, 1, 3); err != nil {
		t.Fatalf("writes 2 and 3 are still held: %v", err)
	}
}

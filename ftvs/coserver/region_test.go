package coserver

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Two partitions of one disk file open side by side; the same range twice
// is refused (the runtime and another ftvs process); I/O lands at the
// offset and stays inside the range.
func TestRegionsOfOneDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(path, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := openRegion(path, 1<<20, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := openRegion(path, 2<<20, 0, true)
	if err != nil {
		t.Fatalf("a second partition of the disk: %v", err)
	}
	defer b.Close()
	if b.Size() != 2<<20 {
		t.Fatalf("size 0 runs to the end: got %d", b.Size())
	}
	if _, err := openRegion(path, 1<<20+512, 4096, true); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("an overlapping range opened: %v", err)
	}
	blk := bytes.Repeat([]byte{0xab}, 512)
	if _, err := a.WriteAt(blk, 1<<20-512); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WriteAt(blk, 1<<20); err == nil {
		t.Fatal("a write past the range's end went through")
	}
	if err := a.Flush(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Equal(raw[2<<20-512:2<<20], blk) || raw[2<<20] != 0 {
		t.Fatal("the write did not land at offset+off")
	}
	if _, err := openRegion(path, 3<<20, 2<<20, true); err == nil {
		t.Fatal("a range past the disk's end opened")
	}
}

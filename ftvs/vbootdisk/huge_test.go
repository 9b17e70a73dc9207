package vbootdisk

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
)

// A file over 1 GiB on a 2 GiB file-backed disk, written and read back in
// 1 MiB chunks: memory stays bounded, and mtools reads the same bytes.
func TestHugeFileOnFileDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	img := filepath.Join(t.TempDir(), "huge.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 2<<30); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(need(t, "mkfs.fat"), "-F", "32", "-i", "1", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.fat: %v\n%s", err, out)
	}
	dev, err := filedev.Open(img, filedev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	s := open(t, dev)
	const size, chunk = 1100 << 20, 1 << 20
	if err := s.Create("big.bin", t0); err != nil {
		t.Fatal(err)
	}
	fill := func(buf []byte, off int64) {
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], uint64(off+int64(i))*0x9e3779b97f4a7c15)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	buf, got := make([]byte, chunk), make([]byte, chunk)
	sum := sha256.New()
	for off := int64(0); off < size; off += chunk {
		fill(buf, off)
		sum.Write(buf)
		if _, err := s.WriteAt("big.bin", buf, off, t0); err != nil {
			t.Fatalf("write at %d: %v", off, err)
		}
	}
	for off := int64(0); off < size; off += chunk {
		fill(buf, off)
		if _, err := s.ReadAt("big.bin", got, off); err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if string(got) != string(buf) {
			t.Fatalf("wrong data in the chunk at %d", off)
		}
	}
	runtime.ReadMemStats(&ms)
	if alloc := ms.TotalAlloc - before; alloc > 32<<20 {
		t.Errorf("writing and reading %d MiB allocated %d bytes: not bounded", size>>20, alloc)
	}
	if err := dev.Flush(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", need(t, "mcopy")+" -n -i "+img+" ::/big.bin - | sha256sum").Output()
	if err != nil {
		t.Fatalf("mcopy | sha256sum: %v", err)
	}
	if want := hex.EncodeToString(sum.Sum(nil)); !strings.HasPrefix(string(out), want) {
		t.Fatalf("mtools reads sha256 %s, wrote %s", out[:64], want)
	}
	if out, err := exec.Command(need(t, "fsck.fat"), "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
}

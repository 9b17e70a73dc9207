package filedev

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

func roundTrip(t *testing.T, d *Dev) {
	t.Helper()
	// An unaligned buffer address (offset by one byte in a larger slice)
	// must work with O_DIRECT too.
	raw := make([]byte, 8192+1)
	p := raw[1:]
	for i := range p {
		p[i] = byte(i * 31)
	}
	if _, err := d.WriteAt(p, 4096); err != nil {
		t.Fatal(err)
	}
	if err := d.Flush(); err != nil {
		t.Fatal(err)
	}
	q := make([]byte, 8192+3)[3:]
	if _, err := d.ReadAt(q, 4096); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, q) {
		t.Fatal("read back differs")
	}
	if _, err := d.WriteAt(p[:100], 0); !errors.Is(err, blockdev.ErrUnaligned) {
		t.Fatalf("unaligned write: %v", err)
	}
	if _, err := d.ReadAt(p, d.Size()); !errors.Is(err, blockdev.ErrOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
}

func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "disk.img")
	d, err := Create(p, 1<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Size() != 1<<20 || d.SectorSize() != 512 || d.IsBlockDevice() {
		t.Fatalf("size %d sector %d block %v", d.Size(), d.SectorSize(), d.IsBlockDevice())
	}
	roundTrip(t, d)
	if _, err := Create(p, 1<<20, Options{}); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("Create over an existing file: %v", err)
	}
	dd, err := Open(p, Options{Direct: true, SectorSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer dd.Close()
	roundTrip(t, dd)
	if err := os.WriteFile(p+".odd", make([]byte, 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p+".odd", Options{}); err == nil || !strings.Contains(err.Error(), "multiple of the sector size") {
		t.Fatalf("odd-sized file: %v", err)
	}
	if _, err := Open(t.TempDir(), Options{}); err == nil {
		t.Fatal("directory accepted")
	}
	ro, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.WriteAt(make([]byte, 512), 0); err == nil {
		t.Fatal("write to a read-only device succeeded")
	}
}

// TestBlockDevice runs the same round trip on a loop device (root only).
func TestBlockDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for losetup")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup not installed")
	}
	p := filepath.Join(t.TempDir(), "loop.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 4<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--sector-size", "4096", p).Output()
	if err != nil {
		t.Skipf("losetup failed (no loop devices in this environment?): %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })
	d, err := Open(loop, Options{Direct: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !d.IsBlockDevice() || d.Size() != 4<<20 || d.SectorSize() != 4096 {
		t.Fatalf("loop device: block %v size %d sector %d", d.IsBlockDevice(), d.Size(), d.SectorSize())
	}
	roundTrip(t, d)
}

func TestHoldsData(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sparse.img")
	d, err := Create(p, 64<<20, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if has, what, err := d.HoldsData(); err != nil || has {
		t.Fatalf("sparse file: %v %q %v", has, what, err)
	}
	// Allocated zeros are not data.
	if _, err := d.WriteAt(make([]byte, 1<<20), 8<<20); err != nil {
		t.Fatal(err)
	}
	if has, _, err := d.HoldsData(); err != nil || has {
		t.Fatalf("zero extent counted as data: %v %v", has, err)
	}
	b := make([]byte, 512)
	b[17] = 1
	if _, err := d.WriteAt(b, 40<<20); err != nil {
		t.Fatal(err)
	}
	has, what, err := d.HoldsData()
	if err != nil || !has || !strings.Contains(what, "offset 41943057") {
		t.Fatalf("data at 40 MiB+17: %v %q %v", has, what, err)
	}
}

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "locked.img")
	d, err := Create(p, 1<<20, Options{Lock: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(p, Options{Lock: true}); err == nil || !strings.Contains(err.Error(), "in use by another ftvs process") {
		t.Fatalf("second locked open: %v", err)
	}
	ro, err := Open(p, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("unlocked read-only open of a locked copy: %v", err)
	}
	ro.Close()
	d.Close()
	d2, err := Open(p, Options{Lock: true})
	if err != nil {
		t.Fatalf("lock not released by Close: %v", err)
	}
	d2.Close()
}

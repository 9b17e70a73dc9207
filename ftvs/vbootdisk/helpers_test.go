package vbootdisk

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(dir, tool)); err == nil {
				return filepath.Join(dir, tool)
			}
		}
		t.Skipf("%s not installed (Debian: dosfstools/mtools)", tool)
	}
	return p
}

// mkfsDisk formats a FAT32 image of mib MiB with mkfs.fat (fixed volume id)
// and returns it as an in-memory device.
func mkfsDisk(t *testing.T, mib int64) *blockdev.Mem {
	t.Helper()
	return mkfsDiskWith(t, mib, 512)
}

// mkfsDiskWith formats with extra mkfs.fat arguments onto a device of the
// given sector size.
func mkfsDiskWith(t *testing.T, mib int64, devSector int, args ...string) *blockdev.Mem {
	t.Helper()
	img := filepath.Join(t.TempDir(), "boot.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, mib<<20); err != nil {
		t.Fatal(err)
	}
	args = append(append([]string{"-F", "32", "-i", "12345678", "-n", "VSBOOT"}, args...), img)
	out, err := exec.Command(need(t, "mkfs.fat"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("mkfs.fat: %v\n%s", err, out)
	}
	return loadDiskSector(t, img, devSector)
}

func loadDisk(t testing.TB, img string) *blockdev.Mem {
	t.Helper()
	return loadDiskSector(t, img, 512)
}

func loadDiskSector(t testing.TB, img string, sector int) *blockdev.Mem {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	m, err := blockdev.NewMem(int64(len(b)), sector)
	if err != nil {
		t.Fatal(err)
	}
	copy(m.Bytes(), b)
	return m
}

func saveDisk(t *testing.T, m *blockdev.Mem) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "out.img")
	if err := os.WriteFile(img, m.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return img
}

func cloneDisk(t *testing.T, m *blockdev.Mem) *blockdev.Mem {
	t.Helper()
	c, err := blockdev.NewMem(m.Size(), m.SectorSize())
	if err != nil {
		t.Fatal(err)
	}
	copy(c.Bytes(), m.Bytes())
	return c
}

// fsck runs fsck.fat -n (no changes) and fails on any complaint.
func fsck(t *testing.T, m *blockdev.Mem) {
	t.Helper()
	img := saveDisk(t, m)
	out, err := exec.Command(need(t, "fsck.fat"), "-n", "-V", img).CombinedOutput()
	if err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
	for _, bad := range [][]byte{[]byte("Reclaim"), []byte("wrong"), []byte("ree cluster summary"), []byte("Orphan"), []byte("has no ")} {
		if bytes.Contains(out, bad) {
			t.Fatalf("fsck.fat -n complains:\n%s", out)
		}
	}
}

// checkFSInfo recounts the free clusters from the raw FAT and compares them
// (and the lowest free cluster) with what the FSInfo sector says.
func checkFSInfo(t *testing.T, m *blockdev.Mem) {
	t.Helper()
	b := m.Bytes()
	g, err := parseBootSector(b[:512], m.Size())
	if err != nil {
		t.Fatal(err)
	}
	free, low := uint32(0), uint32(0xffffffff)
	for c := uint32(2); c <= g.maxCluster(); c++ {
		if binary.LittleEndian.Uint32(b[g.fatStart+int64(c)*4:])&fatMask == 0 {
			free++
			low = min(low, c)
		}
	}
	fi := b[g.fsInfo*g.bps:]
	if gotFree, gotNext := binary.LittleEndian.Uint32(fi[488:]), binary.LittleEndian.Uint32(fi[492:]); gotFree != free || gotNext != low {
		t.Fatalf("FSInfo says %d free, next %d; the FAT has %d free, lowest %d", gotFree, gotNext, free, low)
	}
}

func open(t *testing.T, m blockdev.Device) *Store {
	t.Helper()
	s, err := Open(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

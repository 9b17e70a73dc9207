package esp

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
)

func TestSizeMiBSkipsBrokenSizes(t *testing.T) {
	for payload := int64(0); payload < 300<<20; payload += 1 << 18 {
		mib := SizeMiB(payload)
		if mib < MinMiB || bad(mib) {
			t.Fatalf("SizeMiB(%d) = %d", payload, mib)
		}
		if mib<<20 < payload {
			t.Fatalf("SizeMiB(%d) = %d MiB: too small", payload, mib)
		}
	}
}

// TestFATPassesFsck writes a FAT32 image with go-diskfs at a size next to
// the broken ones, fixes the ".." entries and checks it with fsck.fat -n.
func TestFATPassesFsck(t *testing.T) {
	fsck, err := exec.LookPath("fsck.fat")
	if err != nil {
		t.Skip("fsck.fat not installed (Debian package dosfstools)")
	}
	for _, mib := range []int64{MinMiB, 65, 130} {
		img := filepath.Join(t.TempDir(), "fat.img")
		d, err := diskfs.Create(img, mib<<20, diskfs.SectorSizeDefault)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: "T"})
		if err != nil {
			t.Fatal(err)
		}
		if err := Populate(fs, []File{
			{Path: BootPath, Data: make([]byte, 3<<20)},
			{Path: ConfigPath, Data: []byte("x: 1\n")},
			{Path: "/EFI/BOOT/other", Data: []byte("y")},
		}); err != nil {
			t.Fatal(err)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if err := FixDotDot(img, 0); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(fsck, "-n", img).CombinedOutput(); err != nil {
			t.Errorf("%d MiB: fsck.fat -n: %v\n%s", mib, err, out)
		}
	}
}

func TestFixDotDotRejectsNonFAT(t *testing.T) {
	p := filepath.Join(t.TempDir(), "zero")
	if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := FixDotDot(p, 0); err == nil {
		t.Error("FixDotDot accepted zeros")
	}
}

func FuzzFixDotDot(f *testing.F) {
	bs := make([]byte, 1024)
	copy(bs[82:], "FAT32")
	bs[11], bs[12], bs[13], bs[14], bs[16], bs[36], bs[44] = 0, 2, 1, 1, 1, 1, 2
	f.Add(bs)
	f.Add(make([]byte, 600))
	f.Fuzz(func(t *testing.T, data []byte) {
		fixDotDot(memImage(data), 0) // must not panic on any input
	})
}

// memImage is a fixed-size in-memory image.
type memImage []byte

func (m memImage) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= int64(len(m)) {
		return 0, io.EOF
	}
	n := copy(p, m[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m memImage) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > int64(len(m)) {
		return 0, io.ErrShortWrite
	}
	return copy(m[off:], p), nil
}

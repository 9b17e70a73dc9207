package format

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
)

func TestFormatThenStore(t *testing.T) {
	dev, err := blockdev.NewMem(48<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"www/index.html":        []byte("<h1>VS</h1>"),
		"vs.conf":               []byte("ip=10.0.0.9\n"),
		"www/img/Big Photo.jpg": bytes.Repeat([]byte("0123456789abcdef"), 10_000),
	}
	if err := Format(dev, "VSBOOT", files); err != nil {
		t.Fatal(err)
	}
	s, err := vbootdisk.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got := make([]byte, len(want)+1)
		n, _ := s.ReadAt(name, got, 0)
		if !bytes.Equal(got[:n], want) {
			t.Errorf("%s: store reads %q, want %q", name, got[:n], want)
		}
	}
	if err := s.Create("www/upload.bin", 1_764_000_000); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAt("www/upload.bin", bytes.Repeat([]byte("u"), 9000), 0, 1_764_000_000); err != nil {
		t.Fatal(err)
	}
	fsckTool, err := exec.LookPath("fsck.fat")
	if err != nil {
		fsckTool = "/usr/sbin/fsck.fat"
		if _, err := os.Stat(fsckTool); err != nil {
			t.Skip("fsck.fat not installed (dosfstools)")
		}
	}
	img := filepath.Join(t.TempDir(), "boot.img")
	if err := os.WriteFile(img, dev.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(fsckTool, "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
}

func TestFormatRefusesBuggySizes(t *testing.T) {
	for _, mib := range []int64{64, 129, 259} {
		dev, err := blockdev.NewMem(mib<<20, 512)
		if err != nil {
			t.Fatal(err)
		}
		err = Format(dev, "VSBOOT", nil)
		if err == nil || !strings.Contains(err.Error(), "#418") {
			t.Errorf("%d MiB: %v, want a refusal naming the go-diskfs bug", mib, err)
		}
	}
}

// A FAT that go-diskfs v1.9.4 makes too small (issue #418) is refused by
// the store with an error that says so, and fsck.fat refuses it too.
func TestStoreRefusesShortFAT(t *testing.T) {
	dev, err := blockdev.NewMem(64<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fat32.Create(NewStorage(dev), dev.Size(), 0, 512, "BUGGY", true); err != nil {
		t.Fatal(err)
	}
	_, err = vbootdisk.Open(dev)
	if !errors.Is(err, vbootdisk.ErrCorrupt) || !strings.Contains(err.Error(), "#418") {
		t.Fatalf("Open of a 64 MiB go-diskfs FAT32: %v, want ErrCorrupt naming #418", err)
	}
}

// hugeDev claims 4 GiB and refuses any access: format must refuse the size
// before writing anything.
type hugeDev struct{}

func (hugeDev) ReadAt(p []byte, off int64) (int, error)  { return 0, errors.New("no access expected") }
func (hugeDev) WriteAt(p []byte, off int64) (int, error) { return 0, errors.New("no access expected") }
func (hugeDev) Flush() error                             { return nil }
func (hugeDev) Size() int64                              { return 4 << 30 }
func (hugeDev) SectorSize() int                          { return 512 }

func TestFormatRefuses4GiB(t *testing.T) {
	err := Format(hugeDev{}, "VSBOOT", nil)
	if err == nil || !strings.Contains(err.Error(), "#418") {
		t.Fatalf("4 GiB: %v, want a refusal naming the go-diskfs bug", err)
	}
}

package format

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
)

func TestFormatThenStore(t *testing.T) {
	dev, err := blockdev.NewMem(48<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"www/index.html": []byte("<h1>VS</h1>"), "vs.conf": []byte("ip=10.0.0.9\n")}
	if err := Format(dev, "VSBOOT", files); err != nil {
		t.Fatal(err)
	}
	s, err := vbootdisk.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got := make([]byte, 100)
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

package format

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
	"github.com/ftvs/ftvs/installer/layout"
)

// The two CoServers' copies: same inputs, different clocks (go-diskfs's
// clock is SOURCE_DATE_EPOCH when set, else the wall clock a second later),
// same bytes; the store reads them and fsck.fat accepts them.
func TestTwoCopiesAreIdentical(t *testing.T) {
	files := map[string][]byte{
		"ftvs/vs.yaml":        []byte("ip: 10.0.0.9/24\n"),
		"www/index.html":      []byte("<h1>VS</h1>"),
		"www/img/Big Pic.jpg": bytes.Repeat([]byte("0123456789abcdef"), 3000),
	}
	st := layout.PairStamp([]byte("pair key of the two coservers"), "ftvs-vd-boot")
	copyOf := func() *blockdev.Mem {
		dev, err := blockdev.NewMem(48<<20, 512)
		if err != nil {
			t.Fatal(err)
		}
		if err := FormatStamped(dev, "VSBOOT", files, st); err != nil {
			t.Fatal(err)
		}
		return dev
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1234567890")
	a := copyOf()
	os.Unsetenv("SOURCE_DATE_EPOCH")
	time.Sleep(1100 * time.Millisecond)
	b := copyOf()
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the two copies differ")
	}
	s, err := vbootdisk.Open(b)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got := make([]byte, len(want)+1)
		n, _ := s.ReadAt(name, got, 0)
		if !bytes.Equal(got[:n], want) {
			t.Errorf("%s: store reads %d bytes, want %d", name, n, len(want))
		}
	}
	fsckTool, err := exec.LookPath("fsck.fat")
	if err != nil {
		t.Skip("fsck.fat not installed (dosfstools)")
	}
	img := filepath.Join(t.TempDir(), "boot.img")
	if err := os.WriteFile(img, a.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(fsckTool, "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n: %v\n%s", err, out)
	}
}

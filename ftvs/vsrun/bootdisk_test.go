package vsrun

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
	"github.com/ftvs/ftvs/ftvs/vbootdisk/format"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// A vdisk copy (what the installer writes for the boot disk) is served from
// its data area, and only when the copy may go live alone.
func TestOpenBootDiskOnVdiskCopy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vd-boot")
	f, err := filedev.Create(path, 80<<20, filedev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := vdisk.Create(f, vdisk.CreateOptions{UUID: [16]byte{1}, Node: 1, DataSize: 48 << 20})
	if err != nil {
		t.Fatal(err)
	}
	page := []byte("from the vdisk data area\n")
	if err := format.Format(d, "VSBOOT", map[string][]byte{"www/index.html": page}); err != nil {
		t.Fatal(err)
	}
	f.Close()

	if _, err := openBootDisk(path, true); err == nil || !strings.Contains(err.Error(), "Inconsistent") {
		t.Fatalf("a fresh (Inconsistent) copy opened: %v", err)
	}
	f, _ = filedev.Open(path, filedev.Options{})
	d, _ = vdisk.Open(f)
	if err := d.Update(func(m *vdisk.Metadata) { m.State = vdisk.UpToDate }); err != nil {
		t.Fatal(err)
	}
	f.Close()

	b, err := openBootDisk(path, true)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 100)
	n, _ := b.Store.ReadAt("www/index.html", got, 0)
	if !bytes.Equal(got[:n], page) {
		t.Fatalf("read %q", got[:n])
	}
	if !b.vd.Metadata().Crashed() {
		t.Error("a writable copy is not marked running (crashed-primary) while served")
	}
	if _, err := openBootDisk(path, false); err == nil {
		t.Error("a second opener got the locked boot disk")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	f, _ = filedev.Open(path, filedev.Options{ReadOnly: true})
	defer f.Close()
	if md, _, _, err := vdisk.ReadMetadata(f); err != nil || md.Crashed() {
		t.Fatalf("after Close: crashed flag %v (%v), want a clean shutdown", md.Crashed(), err)
	}
}

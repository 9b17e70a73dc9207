package coserver

import (
	"errors"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
	"github.com/ftvs/ftvs/ftvs/vbootdisk/format"
)

// bootFiles serves serve_dir only: paths map under it, its root can be
// listed but not renamed or removed, and nothing is served before load.
func TestBootFilesServeDir(t *testing.T) {
	dev, err := blockdev.NewMem(48<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	if err := format.Format(dev, "VSBOOT", map[string][]byte{"www/index.html": []byte("hi"), "ftvs/vs.yaml": []byte("secret-ish")}); err != nil {
		t.Fatal(err)
	}
	b := newBootFiles(dev, "boot", "/www/")
	if _, err := b.Stat("/index.html"); !errors.Is(err, fsapi.ErrInvalid) {
		t.Fatalf("served before load: %v", err)
	}
	if err := b.load(); err != nil {
		t.Fatal(err)
	}
	if fi, err := b.Stat("/"); err != nil || !fi.Dir || fi.Name != "" {
		t.Fatalf("Stat of the served root: %+v, %v", fi, err)
	}
	if _, err := b.Stat("/ftvs/vs.yaml"); !errors.Is(err, fsapi.ErrNotExist) {
		t.Fatalf("a file outside serve_dir is visible: %v", err)
	}
	if _, err := b.Stat("/../ftvs/vs.yaml"); err == nil {
		t.Fatal("a path escaping serve_dir resolved")
	}
	for name, op := range map[string]func() error{
		"rename root": func() error { return b.Rename("/", "/x", 1) },
		"rmdir root":  func() error { return b.Rmdir("", 1) },
		"create root": func() error { return b.Create("/", 1) },
	} {
		if err := op(); !errors.Is(err, fsapi.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := b.Mkdir("/up", 1700000000); err != nil {
		t.Fatal(err)
	}
	if err := b.Create("/up/a.txt", 1700000000); err != nil {
		t.Fatal(err)
	}
	if _, err := b.WriteAt("/up/a.txt", []byte("data"), 0, 1700000000); err != nil {
		t.Fatal(err)
	}
	// The upload is in the FAT32 under www/, as a fresh reader sees it.
	st, err := vbootdisk.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := st.Stat("www/up/a.txt"); err != nil || fi.Size != 4 {
		t.Fatalf("www/up/a.txt on the disk: %+v, %v", fi, err)
	}
	// Another writer changed the disk (a resync): load sees it.
	if err := st.Remove("www/up/a.txt", 1700000001); err != nil {
		t.Fatal(err)
	}
	if err := b.load(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat("/up/a.txt"); !errors.Is(err, fsapi.ErrNotExist) {
		t.Fatalf("after reload: %v", err)
	}
	b.forget()
	if _, err := b.ReadDir("/"); !errors.Is(err, fsapi.ErrInvalid) {
		t.Fatalf("served after forget: %v", err)
	}
	bad := newBootFiles(dev, "boot", "/nope")
	if err := bad.load(); err == nil {
		t.Fatal("a serve_dir missing from the disk loaded")
	}
}

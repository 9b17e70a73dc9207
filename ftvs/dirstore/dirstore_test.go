package dirstore

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// tree makes root/ with files, a subdirectory, symlinks in and out, and a
// secret file outside root.
func tree(t testing.TB) (root, secret string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	secret = filepath.Join(base, "secret.txt")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(secret, []byte("SECRET"), 0o644))
	must(os.MkdirAll(filepath.Join(root, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(root, "a.txt"), []byte("hello world"), 0o644))
	must(os.WriteFile(filepath.Join(root, "sub", "b.bin"), bytes.Repeat([]byte{7}, 5000), 0o644))
	must(os.Symlink("a.txt", filepath.Join(root, "link-in")))
	must(os.Symlink(secret, filepath.Join(root, "link-out")))
	must(os.Symlink("../secret.txt", filepath.Join(root, "sub", "rel-out")))
	must(os.Symlink(base, filepath.Join(root, "dir-out")))
	must(os.Symlink("nowhere", filepath.Join(root, "dangling")))
	mt := time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)
	must(os.Chtimes(filepath.Join(root, "a.txt"), mt, mt))
	return root, secret
}

func TestStatReadAtReadDir(t *testing.T) {
	root, _ := tree(t)
	s, err := New(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := s.Stat("/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Name != "a.txt" || fi.Size != 11 || fi.Dir || fi.ModTime != time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC).Unix() {
		t.Fatalf("Stat a.txt = %+v", fi)
	}
	if fi, err := s.Stat(""); err != nil || !fi.Dir {
		t.Fatalf("Stat root = %+v, %v", fi, err)
	}
	b := make([]byte, 5)
	if n, err := s.ReadAt("a.txt", b, 6); n != 5 || (err != nil && err != io.EOF) || string(b) != "world" {
		t.Fatalf("ReadAt = %d %v %q", n, err, b)
	}
	if n, err := s.ReadAt("a.txt", b, 9); n != 2 || err != io.EOF {
		t.Fatalf("ReadAt at the end = %d, %v; want 2, io.EOF", n, err)
	}
	if fi2, err := s.Stat("a.txt"); err != nil || fi2 != fi {
		t.Fatalf("Stat through the cached descriptor = %+v, %v; want %+v", fi2, err, fi)
	}
	if n, err := s.ReadAt("link-in", b, 0); n != 5 || string(b) != "hello" {
		t.Fatalf("symlink inside the root: %d %v %q", n, err, b)
	}
	ents, err := s.ReadDir("/")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
	}
	if got := fmtNames(names); got != "a.txt,link-in,sub" {
		t.Fatalf("ReadDir / = %s (escaping and dangling links must be left out)", got)
	}
	if ents[2].Dir != true {
		t.Fatal("sub not marked as a directory")
	}
	if _, err := s.ReadAt("sub", b, 0); !errors.Is(err, fsapi.ErrInvalid) {
		t.Fatalf("ReadAt on a directory: %v", err)
	}
	if _, err := s.Stat("missing"); !errors.Is(err, fsapi.ErrNotExist) {
		t.Fatalf("Stat missing: %v", err)
	}
}

func fmtNames(n []string) string {
	var b bytes.Buffer
	for i, s := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s)
	}
	return b.String()
}

func TestRefusesEscapes(t *testing.T) {
	root, _ := tree(t)
	s, err := New(root, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := make([]byte, 6)
	for _, p := range []string{"../secret.txt", "/../secret.txt", "sub/../../secret.txt", "link-out", "sub/rel-out", "dir-out/secret.txt", "a.txt\x00"} {
		n, err := s.ReadAt(p, b, 0)
		if err == nil || bytes.Contains(b[:n], []byte("SECRET")) {
			t.Errorf("ReadAt(%q) = %d, %v: escaped the root", p, n, err)
		}
		if !errors.Is(err, fsapi.ErrInvalid) && !errors.Is(err, fsapi.ErrNotExist) {
			t.Errorf("ReadAt(%q): error %v is neither ErrInvalid nor ErrNotExist", p, err)
		}
		if _, err := s.Stat(p); err == nil {
			t.Errorf("Stat(%q) succeeded", p)
		}
	}
	if _, err := s.ReadDir("dir-out"); err == nil {
		t.Error("ReadDir through a symlink out of the root succeeded")
	}
}

func TestOpenFilesBounded(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 20; i++ {
		if err := os.WriteFile(filepath.Join(dir, strconv.Itoa(i)), []byte(strconv.Itoa(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := New(dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := make([]byte, 2)
	for round := 0; round < 3; round++ {
		for i := 0; i < 20; i++ {
			n, err := s.ReadAt(strconv.Itoa(i), b, 0)
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if string(b[:n]) != strconv.Itoa(i) {
				t.Fatalf("file %d read %q", i, b[:n])
			}
			if s.OpenFiles() > 4 {
				t.Fatalf("%d open files, bound 4", s.OpenFiles())
			}
		}
	}
}

func TestNewRefusesNonDirectory(t *testing.T) {
	root, secret := tree(t)
	_ = root
	if _, err := New(secret, 0); err == nil {
		t.Fatal("a file accepted as root")
	}
	if _, err := New(filepath.Join(root, "nope"), 0); err == nil {
		t.Fatal("a missing directory accepted as root")
	}
}

// FuzzPath: no path, however odd, reads a byte from outside the root.
func FuzzPath(f *testing.F) {
	for _, p := range []string{"a.txt", "../secret.txt", "link-out", "sub/rel-out", "dir-out/secret.txt", "//a.txt", "sub/./b.bin", "./../x", ""} {
		f.Add(p)
	}
	root, _ := tree(f)
	s, err := New(root, 8)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		b := make([]byte, 16)
		n, _ := s.ReadAt(p, b, 0)
		if bytes.Contains(b[:n], []byte("SECRET")) {
			t.Fatalf("ReadAt(%q) read the secret outside the root", p)
		}
		ents, _ := s.ReadDir(p)
		for _, e := range ents {
			if e.Name == "secret.txt" {
				t.Fatalf("ReadDir(%q) listed the directory above the root", p)
			}
		}
	})
}

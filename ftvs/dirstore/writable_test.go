package dirstore_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ftvs/ftvs/ftvs/dirstore"
	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
)

// step is one change applied to both stores.
type step struct {
	op       string
	a, b     string
	off, n   int64
	mtime    int64
	wantErr  error // nil: must succeed
	describe string
}

func apply(st fsapi.WritableFileStore, s step) error {
	switch s.op {
	case "create":
		return st.Create(s.a, s.mtime)
	case "write":
		b := make([]byte, s.n)
		for i := range b {
			b[i] = byte(int64(i) + s.off)
		}
		_, err := st.WriteAt(s.a, b, s.off, s.mtime)
		return err
	case "truncate":
		return st.Truncate(s.a, s.n, s.mtime)
	case "remove":
		return st.Remove(s.a, s.mtime)
	case "rename":
		return st.Rename(s.a, s.b, s.mtime)
	case "mkdir":
		return st.Mkdir(s.a, s.mtime)
	case "rmdir":
		return st.Rmdir(s.a, s.mtime)
	}
	panic(s.op)
}

// tree lists every entry (with times and sizes) and every file's bytes.
func tree(t *testing.T, st fsapi.FileStore) map[string]string {
	t.Helper()
	out := map[string]string{}
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := st.ReadDir(dir)
		if err != nil {
			t.Fatalf("ReadDir %q: %v", dir, err)
		}
		for _, e := range ents {
			p := e.Name
			if dir != "" {
				p = dir + "/" + e.Name
			}
			desc := fmt.Sprintf("dir=%v size=%d mtime=%d", e.Dir, e.Size, e.ModTime)
			if e.Dir {
				walk(p)
			} else {
				b := make([]byte, e.Size)
				if n, err := st.ReadAt(p, b, 0); int64(n) != e.Size || (err != nil && err != io.EOF) {
					t.Fatalf("ReadAt %s: %d %v", p, n, err)
				}
				desc += fmt.Sprintf(" data=%x", b)
			}
			out[p] = desc
		}
	}
	walk("")
	return out
}

// The directory store and the in-memory store that replays use agree on
// every change: same errors, same names, sizes, bytes and mtimes.
func TestWritableMatchesMemfs(t *testing.T) {
	dir := t.TempDir()
	ds, err := dirstore.NewWritable(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	ms := memfs.Writable{FS: memfs.New()}
	steps := []step{
		{op: "mkdir", a: "d", mtime: 100},
		{op: "create", a: "d/f", mtime: 101},
		{op: "write", a: "d/f", off: 0, n: 1000, mtime: 102},
		{op: "write", a: "d/f", off: 5000, n: 10, mtime: 103}, // hole
		{op: "truncate", a: "d/f", n: 700, mtime: 104},
		{op: "create", a: "g", mtime: 105},
		{op: "write", a: "g", off: 0, n: 5, mtime: 106},
		{op: "rename", a: "g", b: "d/f", mtime: 107}, // replaces a file
		{op: "mkdir", a: "d", mtime: 108, wantErr: fsapi.ErrExist},
		{op: "rmdir", a: "d", mtime: 109, wantErr: fsapi.ErrNotEmpty},
		{op: "remove", a: "d", mtime: 110, wantErr: fsapi.ErrIsDir},
		{op: "create", a: "d", mtime: 110, wantErr: fsapi.ErrIsDir},
		{op: "mkdir", a: "e", mtime: 111},
		{op: "rename", a: "d", b: "e", mtime: 112, wantErr: fsapi.ErrExist},
		{op: "rename", a: "d", b: "d/sub", mtime: 112, wantErr: fsapi.ErrInvalid},
		{op: "rename", a: "d", b: "e/moved", mtime: 113},
		{op: "remove", a: "e/moved/f", mtime: 114},
		{op: "remove", a: "e/moved/f", mtime: 115, wantErr: fsapi.ErrNotExist},
		{op: "rmdir", a: "e/moved", mtime: 116},
		{op: "write", a: "nothere", n: 1, mtime: 117, wantErr: fsapi.ErrNotExist},
		{op: "create", a: "nodir/x", mtime: 118, wantErr: fsapi.ErrNotExist},
		{op: "create", a: "../escape", mtime: 119, wantErr: fsapi.ErrInvalid},
		{op: "mkdir", a: "", mtime: 120, wantErr: fsapi.ErrInvalid},
	}
	for i, s := range steps {
		e1, e2 := apply(ds, s), apply(ms, s)
		for name, err := range map[string]error{"dirstore": e1, "memfs": e2} {
			if (s.wantErr == nil) != (err == nil) || (s.wantErr != nil && !errors.Is(err, s.wantErr)) {
				t.Fatalf("step %d %+v: %s error %v, want %v", i, s, name, err, s.wantErr)
			}
		}
		if a, b := tree(t, ds), tree(t, ms); !reflect.DeepEqual(a, b) {
			t.Fatalf("step %d %+v: stores differ\ndirstore %v\nmemfs    %v", i, s, a, b)
		}
	}
}

// Changes never leave the root, also through a symlink, and a read through
// a cached descriptor never shows a renamed-away file.
func TestWritableConfinedAndFresh(t *testing.T) {
	outside := t.TempDir()
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	ds, err := dirstore.NewWritable(dir, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	for name, err := range map[string]error{
		"create via symlink": ds.Create("out/x", 1),
		"mkdir via symlink":  ds.Mkdir("out/d", 1),
		"create ..":          ds.Create("a/../../x", 1),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("something was written outside the root: %v", ents)
	}
	// Cached read descriptors follow renames and removals.
	for _, p := range []string{"a", "b"} {
		if err := ds.Create(p, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := ds.WriteAt(p, []byte(p+p+p), 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 3)
	ds.ReadAt("a", buf, 0) // caches a descriptor of "a"
	if err := ds.Rename("b", "a", 2); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.ReadAt("a", buf, 0); (err != nil && err != io.EOF) || string(buf) != "bbb" {
		t.Fatalf("read after rename: %q %v", buf, err)
	}
	if fi, err := ds.Stat("a"); err != nil || fi.ModTime != 1 {
		t.Fatalf("mtime after rename: %+v %v (a rename keeps the file's own mtime)", fi, err)
	}
	if err := ds.Remove("a", 3); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.ReadAt("a", buf, 0); !errors.Is(err, fsapi.ErrNotExist) {
		t.Fatalf("read after remove: %v", err)
	}
	if fi, err := ds.Stat(""); err != nil || fi.ModTime != 3 {
		t.Fatalf("root mtime %+v %v, want the virtual time of the last change", fi, err)
	}
}

package memfs

import (
	"errors"
	"io"
	"testing"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

func TestFillIsOffsetConsistent(t *testing.T) {
	whole := make([]byte, 1000)
	Fill(whole, 5, 3)
	for _, cut := range [][2]int{{0, 1}, {1, 9}, {5, 100}, {13, 987}, {999, 1000}} {
		part := make([]byte, cut[1]-cut[0])
		Fill(part, 5, int64(3+cut[0]))
		if string(part) != string(whole[cut[0]:cut[1]]) {
			t.Fatalf("Fill at %v differs from the whole", cut)
		}
	}
}

func TestStore(t *testing.T) {
	fs := New()
	fs.Add("a/b/c.txt", []byte("hello"), 7)
	fs.AddSynthetic("big", 1<<40, 1, 8)
	if fi, err := fs.Stat("a/b"); err != nil || !fi.Dir || fi.Name != "b" {
		t.Fatalf("parent dir: %+v %v", fi, err)
	}
	if _, err := fs.Stat("a/../../etc"); !errors.Is(err, fsapi.ErrInvalid) && !errors.Is(err, fsapi.ErrNotExist) {
		t.Fatalf("escape: %v", err)
	}
	p := make([]byte, 10)
	if n, err := fs.ReadAt("a/b/c.txt", p, 2); n != 3 || err != io.EOF || string(p[:3]) != "llo" {
		t.Fatalf("ReadAt: %d %v", n, err)
	}
	if n, err := fs.ReadAt("big", p, 1<<40-4); n != 4 || err != io.EOF {
		t.Fatalf("synthetic tail: %d %v", n, err)
	}
	ents, err := fs.ReadDir("")
	if err != nil || len(ents) != 2 || ents[0].Name != "a" || ents[1].Name != "big" {
		t.Fatalf("ReadDir: %+v %v", ents, err)
	}
}

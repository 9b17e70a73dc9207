package install

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ftvs/ftvs/installer/layout"
)

// Both nodes' VS content must look the same to the VS, file times included
// (HTTP Last-Modified): a different second per installer made every page
// request a lockstep divergence.
func TestVSContentHasFixedTimes(t *testing.T) {
	dir := t.TempDir()
	r := &runner{o: Options{StateDir: dir}}
	c := layout.Content{VSBoot: layout.Files{"www/index.html": []byte("hi"), "ftvs/vs.yaml": []byte("x")}}
	if _, err := r.writeState(nil, []byte("rc"), c); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "vs-content", "index.html"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.ModTime().Unix() != layout.StampEpoch {
		t.Fatalf("index.html mtime %v, want the fixed epoch %d", fi.ModTime(), layout.StampEpoch)
	}
	if _, err := os.Stat(filepath.Join(dir, "vs-content", "vs.yaml")); err == nil {
		t.Fatal("a file outside www/ went into the VS content")
	}
}

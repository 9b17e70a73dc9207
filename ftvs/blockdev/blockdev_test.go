package blockdev

import (
	"bytes"
	"errors"
	"testing"
)

func TestMem(t *testing.T) {
	m, err := NewMem(8192, 512)
	if err != nil {
		t.Fatal(err)
	}
	p := bytes.Repeat([]byte{9}, 1024)
	if _, err := m.WriteAt(p, 512); err != nil {
		t.Fatal(err)
	}
	q := make([]byte, 1024)
	if _, err := m.ReadAt(q, 512); err != nil || !bytes.Equal(p, q) {
		t.Fatalf("read back: %v", err)
	}
	for _, c := range []struct {
		off  int64
		n    int
		want error
	}{
		{1, 512, ErrUnaligned}, {0, 100, ErrUnaligned}, {-512, 512, ErrUnaligned},
		{8192, 512, ErrOutOfRange}, {7680, 1024, ErrOutOfRange},
	} {
		if _, err := m.WriteAt(make([]byte, c.n), c.off); !errors.Is(err, c.want) {
			t.Errorf("write %d at %d: %v, want %v", c.n, c.off, err, c.want)
		}
		if _, err := m.ReadAt(make([]byte, c.n), c.off); !errors.Is(err, c.want) {
			t.Errorf("read %d at %d: %v, want %v", c.n, c.off, err, c.want)
		}
	}
	if _, err := NewMem(1000, 512); err == nil {
		t.Error("size not a sector multiple accepted")
	}
	if _, err := NewMem(4096, 1024); err == nil {
		t.Error("sector size 1024 accepted")
	}
}

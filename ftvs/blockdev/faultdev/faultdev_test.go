package faultdev

import (
	"errors"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

func TestRules(t *testing.T) {
	m, _ := blockdev.NewMem(1<<20, 512)
	d := New(m)
	d.Add(Rule{Ops: Write, Off: 4096, Len: 4096, Skip: 1, Count: 1})
	d.Add(Rule{Ops: Flush, Count: 1})
	b := make([]byte, 512)
	if _, err := d.WriteAt(b, 0); err != nil {
		t.Fatalf("write outside the range: %v", err)
	}
	if _, err := d.WriteAt(b, 4096); err != nil {
		t.Fatalf("skipped write: %v", err)
	}
	_, err := d.WriteAt(make([]byte, 8192), 0)
	if !errors.Is(err, ErrInjected) || !strings.Contains(err.Error(), "write 8192 bytes at 0") {
		t.Fatalf("overlapping write: %v", err)
	}
	if _, err := d.WriteAt(b, 4096); err != nil {
		t.Fatalf("count exhausted, still failing: %v", err)
	}
	if _, err := d.ReadAt(b, 4096); err != nil {
		t.Fatalf("read matched a write rule: %v", err)
	}
	if err := d.Flush(); !errors.Is(err, ErrInjected) {
		t.Fatalf("flush: %v", err)
	}
	if err := d.Flush(); err != nil {
		t.Fatalf("second flush: %v", err)
	}
	if d.Injected != 2 {
		t.Fatalf("injected %d", d.Injected)
	}
	d.Add(Rule{Ops: Read})
	if _, err := d.ReadAt(b, 0); !errors.Is(err, ErrInjected) {
		t.Fatalf("whole-device read rule: %v", err)
	}
	d.Clear()
	if _, err := d.ReadAt(b, 0); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
}

// Package faultdev wraps a blockdev.Device and fails chosen operations, so
// tests can check that an I/O error is reported with the region it hit and
// that a copy with a failing disk is detached, not trusted.
package faultdev

import (
	"errors"
	"fmt"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// Op is the kind of operation a Rule matches.
type Op uint8

const (
	Read Op = 1 << iota
	Write
	Flush
)

func (o Op) String() string {
	switch o {
	case Read:
		return "read"
	case Write:
		return "write"
	case Flush:
		return "flush"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ErrInjected is the error every injected failure wraps.
var ErrInjected = errors.New("injected I/O error")

// Rule fails operations of kind Ops that overlap [Off, Off+Len) (Len 0: the
// whole device; Flush always matches its range), after letting Skip matching
// operations through, at most Count times (0: forever).
type Rule struct {
	Ops   Op
	Off   int64
	Len   int64
	Skip  int
	Count int

	seen, fired int
}

// Dev is the fault-injecting wrapper. Not safe for concurrent use (it is
// plain data so the deterministic core's tests can use it too).
type Dev struct {
	inner blockdev.Device
	rules []*Rule
	// Injected counts the failures returned so far.
	Injected int
}

var _ blockdev.Device = (*Dev)(nil)

// New wraps inner.
func New(inner blockdev.Device) *Dev { return &Dev{inner: inner} }

// Add installs a rule; rules are checked in the order added.
func (d *Dev) Add(r Rule) { d.rules = append(d.rules, &r) }

// Clear removes every rule (the "disk was replaced" moment of a test).
func (d *Dev) Clear() { d.rules = nil }

func (d *Dev) check(op Op, off int64, n int) error {
	for _, r := range d.rules {
		if r.Ops&op == 0 {
			continue
		}
		if op != Flush && r.Len != 0 && (off >= r.Off+r.Len || off+int64(n) <= r.Off) {
			continue
		}
		r.seen++
		if r.seen <= r.Skip || (r.Count != 0 && r.fired >= r.Count) {
			continue
		}
		r.fired++
		d.Injected++
		if op == Flush {
			return fmt.Errorf("flush: %w", ErrInjected)
		}
		return fmt.Errorf("%s %d bytes at %d: %w", op, n, off, ErrInjected)
	}
	return nil
}

func (d *Dev) ReadAt(p []byte, off int64) (int, error) {
	if err := d.check(Read, off, len(p)); err != nil {
		return 0, err
	}
	return d.inner.ReadAt(p, off)
}

func (d *Dev) WriteAt(p []byte, off int64) (int, error) {
	if err := d.check(Write, off, len(p)); err != nil {
		return 0, err
	}
	return d.inner.WriteAt(p, off)
}

func (d *Dev) Flush() error {
	if err := d.check(Flush, 0, 0); err != nil {
		return err
	}
	return d.inner.Flush()
}

func (d *Dev) Size() int64     { return d.inner.Size() }
func (d *Dev) SectorSize() int { return d.inner.SectorSize() }

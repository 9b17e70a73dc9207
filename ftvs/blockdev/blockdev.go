// Package blockdev is the block-device contract the deterministic core uses
// for disk access inside Step: a fixed-size device addressed in whole, aligned
// sectors. It holds no I/O of its own (no os, no syscall): implementations
// that touch files or partitions live in the shell (blockdev/filedev), and the
// in-memory Mem and the fault-injecting faultdev serve tests.
package blockdev

import (
	"errors"
	"fmt"
	"io"
)

// Device is a fixed-size block device. Offsets and lengths of ReadAt and
// WriteAt must be multiples of SectorSize and lie within Size. A successful
// WriteAt is durable only after Flush returns nil (a FLUSH/FUA from a client is
// answered only then).
type Device interface {
	io.ReaderAt
	io.WriterAt
	// Flush makes every completed write durable (fdatasync on a file).
	Flush() error
	// Size is the device size in bytes, a multiple of SectorSize.
	Size() int64
	// SectorSize is the logical sector size in bytes (512 or 4096).
	SectorSize() int
}

// Errors every implementation returns (wrapped, with the offending numbers).
var (
	ErrUnaligned  = errors.New("blockdev: unaligned offset or length")
	ErrOutOfRange = errors.New("blockdev: access beyond end of device")
)

// CheckAccess validates an access of n bytes at off on a device of the given
// size and sector size; implementations call it first so that every device
// rejects the same requests with the same errors.
func CheckAccess(off int64, n int, size int64, sector int) error {
	if sector <= 0 {
		return fmt.Errorf("blockdev: sector size %d is not positive", sector)
	}
	if off < 0 || off%int64(sector) != 0 || n%sector != 0 {
		return fmt.Errorf("%w: offset %d length %d (sector size %d)", ErrUnaligned, off, n, sector)
	}
	if off > size || int64(n) > size-off {
		return fmt.Errorf("%w: offset %d length %d, device size %d", ErrOutOfRange, off, n, size)
	}
	return nil
}

// Mem is a Device held in memory: deterministic, for the core's tests and
// for replaying input logs without disks.
type Mem struct {
	data    []byte
	sector  int
	flushes uint64
}

// NewMem returns a zero-filled Mem device of size bytes.
func NewMem(size int64, sector int) (*Mem, error) {
	if sector != 512 && sector != 4096 {
		return nil, fmt.Errorf("blockdev: sector size %d, want 512 or 4096", sector)
	}
	if size < 0 || size%int64(sector) != 0 {
		return nil, fmt.Errorf("blockdev: size %d is not a multiple of sector size %d", size, sector)
	}
	return &Mem{data: make([]byte, size), sector: sector}, nil
}

func (m *Mem) ReadAt(p []byte, off int64) (int, error) {
	if err := CheckAccess(off, len(p), int64(len(m.data)), m.sector); err != nil {
		return 0, err
	}
	return copy(p, m.data[off:]), nil
}

func (m *Mem) WriteAt(p []byte, off int64) (int, error) {
	if err := CheckAccess(off, len(p), int64(len(m.data)), m.sector); err != nil {
		return 0, err
	}
	return copy(m.data[off:], p), nil
}

func (m *Mem) Flush() error    { m.flushes++; return nil }
func (m *Mem) Size() int64     { return int64(len(m.data)) }
func (m *Mem) SectorSize() int { return m.sector }
func (m *Mem) Flushes() uint64 { return m.flushes }
func (m *Mem) Bytes() []byte   { return m.data }

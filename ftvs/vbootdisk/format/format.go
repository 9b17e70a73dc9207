// Package format makes a VS boot disk: a FAT32 filesystem written by
// go-diskfs through installer/layout.FormatFAT32 (the installer's own
// formatter, which refuses the sizes go-diskfs v1.9.4 gets wrong and fixes
// what fsck.fat reports) on a blockdev.Device. It runs in the shell and in
// tests, never in the deterministic core. The format is reproducible: the
// same label, files and layout.Stamp give the same bytes on both CoServers
// whatever their clocks (layout.FormatFAT32Stamped overwrites the times
// go-diskfs took from the clock and sets the volume ID).
package format

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
	"github.com/ftvs/ftvs/installer/layout"
)

// Format writes a FAT32 filesystem labelled label over the whole of dev,
// holding files (slash paths to contents; directories are made as needed),
// stamped with layout.DefaultStamp(label).
func Format(dev blockdev.Device, label string, files map[string][]byte) error {
	return FormatStamped(dev, label, files, layout.DefaultStamp(label))
}

// FormatStamped is Format with the given times and volume ID: use
// layout.PairStamp(pairKey, diskName) for a disk both CoServers format.
func FormatStamped(dev blockdev.Device, label string, files map[string][]byte, st layout.Stamp) error {
	s := NewStorage(dev)
	if err := layout.FormatFAT32Stamped(s, 0, dev.Size(), label, layout.Files(files), st); err != nil {
		return fmt.Errorf("format boot disk: %w", err)
	}
	return nil
}

// Storage is a go-diskfs backend.Storage over a blockdev.Device.
type Storage struct {
	b   *vbootdisk.ByteIO
	dev blockdev.Device
	pos int64
}

var _ backend.Storage = (*Storage)(nil)

// NewStorage wraps dev for go-diskfs.
func NewStorage(dev blockdev.Device) *Storage {
	return &Storage{b: vbootdisk.NewByteIO(dev), dev: dev}
}

func (s *Storage) ReadAt(p []byte, off int64) (int, error)  { return s.b.ReadAt(p, off) }
func (s *Storage) WriteAt(p []byte, off int64) (int, error) { return s.b.WriteAt(p, off) }
func (s *Storage) Close() error                             { return nil }
func (s *Storage) Path() string                             { return "" }
func (s *Storage) Sys() (*os.File, error)                   { return nil, errors.New("not an OS file") }
func (s *Storage) Writable() (backend.WritableFile, error)  { return s, nil }
func (s *Storage) Stat() (fs.FileInfo, error)               { return devInfo{s.dev.Size()}, nil }

func (s *Storage) Read(p []byte) (int, error) {
	n, err := s.b.ReadAt(p, s.pos)
	s.pos += int64(n)
	return n, err
}

func (s *Storage) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += s.pos
	case io.SeekEnd:
		off += s.dev.Size()
	default:
		return s.pos, fmt.Errorf("seek: bad whence %d", whence)
	}
	if off < 0 {
		return s.pos, fmt.Errorf("seek to %d", off)
	}
	s.pos = off
	return off, nil
}

type devInfo struct{ size int64 }

func (i devInfo) Name() string       { return "bootdisk" }
func (i devInfo) Size() int64        { return i.size }
func (i devInfo) Mode() fs.FileMode  { return 0o600 }
func (i devInfo) ModTime() time.Time { return time.Time{} }
func (i devInfo) IsDir() bool        { return false }
func (i devInfo) Sys() any           { return nil }

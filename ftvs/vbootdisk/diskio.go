package vbootdisk

import (
	"fmt"
	"io"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// diskIO reads and writes byte ranges of a sector-addressed device: aligned
// middles go straight through, partial head and tail sectors through one
// sector-sized bounce buffer (read-modify-write for writes).
type diskIO struct {
	dev    blockdev.Device
	ss     int64
	bounce []byte
}

func newDiskIO(dev blockdev.Device) diskIO {
	ss := int64(dev.SectorSize())
	return diskIO{dev: dev, ss: ss, bounce: make([]byte, ss)}
}

func (d *diskIO) readAt(p []byte, off int64) error {
	for len(p) > 0 {
		if rem := off % d.ss; rem != 0 || int64(len(p)) < d.ss {
			base := off - rem
			if _, err := d.dev.ReadAt(d.bounce, base); err != nil {
				return fmt.Errorf("read disk at %d: %w", base, err)
			}
			n := copy(p, d.bounce[rem:])
			p, off = p[n:], off+int64(n)
			continue
		}
		n := int64(len(p)) - int64(len(p))%d.ss
		if _, err := d.dev.ReadAt(p[:n], off); err != nil {
			return fmt.Errorf("read disk %d bytes at %d: %w", n, off, err)
		}
		p, off = p[n:], off+n
	}
	return nil
}

func (d *diskIO) writeAt(p []byte, off int64) error {
	for len(p) > 0 {
		if rem := off % d.ss; rem != 0 || int64(len(p)) < d.ss {
			base := off - rem
			if _, err := d.dev.ReadAt(d.bounce, base); err != nil {
				return fmt.Errorf("read disk at %d: %w", base, err)
			}
			n := copy(d.bounce[rem:], p)
			if _, err := d.dev.WriteAt(d.bounce, base); err != nil {
				return fmt.Errorf("write disk at %d: %w", base, err)
			}
			p, off = p[n:], off+int64(n)
			continue
		}
		n := int64(len(p)) - int64(len(p))%d.ss
		if _, err := d.dev.WriteAt(p[:n], off); err != nil {
			return fmt.Errorf("write disk %d bytes at %d: %w", n, off, err)
		}
		p, off = p[n:], off+n
	}
	return nil
}

// ByteIO gives byte-granular io.ReaderAt/io.WriterAt access to a sector
// device (partial sectors are read, modified and written back). Tools
// outside the core use it to put other FAT code (go-diskfs) on a Device.
type ByteIO struct{ d diskIO }

// NewByteIO wraps dev.
func NewByteIO(dev blockdev.Device) *ByteIO { return &ByteIO{d: newDiskIO(dev)} }

func (b *ByteIO) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > b.d.dev.Size() {
		return 0, fmt.Errorf("read at %d: %w", off, blockdev.ErrOutOfRange)
	}
	n := len(p)
	var eof error
	if rest := b.d.dev.Size() - off; int64(n) > rest {
		n, eof = int(rest), io.EOF
	}
	if err := b.d.readAt(p[:n], off); err != nil {
		return 0, err
	}
	return n, eof
}

func (b *ByteIO) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > b.d.dev.Size() {
		return 0, fmt.Errorf("write %d bytes at %d: %w", len(p), off, blockdev.ErrOutOfRange)
	}
	if err := b.d.writeAt(p, off); err != nil {
		return 0, err
	}
	return len(p), nil
}

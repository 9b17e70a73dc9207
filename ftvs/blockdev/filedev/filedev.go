// Package filedev is the shell's blockdev.Device on a regular file or a block
// device (a partition in production, a file in tests): positional I/O,
// fdatasync on Flush, and optionally O_DIRECT so the page cache neither hides
// a failing disk nor doubles the memory use.
package filedev

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// Options choose how the device is opened.
type Options struct {
	ReadOnly bool
	// Direct opens with O_DIRECT; unaligned buffers go through an aligned
	// bounce buffer. Some filesystems (tmpfs) refuse O_DIRECT: Open fails then.
	Direct bool
	// SectorSize for regular files (block devices report their own);
	// 0 means 512.
	SectorSize int
	// Exclusive opens a block device with O_EXCL: it fails with EBUSY if
	// the device is mounted or held by another user (md, LVM, a partition).
	Exclusive bool
	// Lock takes an exclusive flock (non-blocking) so that two ftvs
	// processes never write one copy at once (the runtime and an operator's
	// ftvs vdisk resync, say). The lock goes with Close.
	Lock bool
}

// Dev is an open file or block device.
type Dev struct {
	f      *os.File
	path   string
	size   int64
	sector int
	direct bool
	block  bool
}

var _ blockdev.Device = (*Dev)(nil)

// Open opens an existing file or block device. A regular file's size must
// be a multiple of the sector size.
func Open(path string, o Options) (*Dev, error) {
	flags := unix.O_RDWR | unix.O_CLOEXEC
	if o.ReadOnly {
		flags = unix.O_RDONLY | unix.O_CLOEXEC
	}
	if o.Direct {
		flags |= unix.O_DIRECT
	}
	if o.Exclusive {
		if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeDevice != 0 {
			flags |= unix.O_EXCL
		}
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if o.Lock {
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("%s is in use by another ftvs process (locked)", path)
			}
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
	}
	d, err := newDev(f, path, o)
	if err != nil {
		f.Close()
		return nil, err
	}
	return d, nil
}

// Create makes a new regular file of size bytes (sparse, so reading it gives
// zeros) and opens it. It never replaces an existing file.
func Create(path string, size int64, o Options) (*Dev, error) {
	sector := o.SectorSize
	if sector == 0 {
		sector = 512
	}
	if size <= 0 || size%int64(sector) != 0 {
		return nil, fmt.Errorf("create %s: size %d is not a positive multiple of %d", path, size, sector)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	f.Close()
	return Open(path, o)
}

func newDev(f *os.File, path string, o Options) (*Dev, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	d := &Dev{f: f, path: path, direct: o.Direct}
	switch {
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		d.block = true
		var sz uint64
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(&sz))); e != 0 {
			return nil, fmt.Errorf("%s: BLKGETSIZE64: %w", path, e)
		}
		ss, err := unix.IoctlGetInt(int(f.Fd()), unix.BLKSSZGET)
		if err != nil {
			return nil, fmt.Errorf("%s: BLKSSZGET: %w", path, err)
		}
		d.size, d.sector = int64(sz), ss
	case fi.Mode().IsRegular():
		d.sector = o.SectorSize
		if d.sector == 0 {
			d.sector = 512
		}
		d.size = fi.Size()
		if d.size%int64(d.sector) != 0 {
			return nil, fmt.Errorf("%s: size %d is not a multiple of the sector size %d", path, d.size, d.sector)
		}
	default:
		return nil, fmt.Errorf("%s: not a regular file or block device (%s)", path, fi.Mode().Type())
	}
	if d.sector != 512 && d.sector != 4096 {
		return nil, fmt.Errorf("%s: sector size %d, want 512 or 4096", path, d.sector)
	}
	return d, nil
}

// Path is the name the device was opened with.
func (d *Dev) Path() string { return d.path }

// IsBlockDevice reports whether the device is a block device, not a file.
func (d *Dev) IsBlockDevice() bool { return d.block }

func (d *Dev) Size() int64     { return d.size }
func (d *Dev) SectorSize() int { return d.sector }

// directAlign is the buffer address alignment O_DIRECT needs on Linux for
// every device we support (the logical block size, at most 4096).
const directAlign = 4096

func aligned(p []byte) bool {
	return len(p) == 0 || uintptr(unsafe.Pointer(&p[0]))%directAlign == 0
}

func alignedBuf(n int) []byte {
	b := make([]byte, n+directAlign)
	skip := int(directAlign - uintptr(unsafe.Pointer(&b[0]))%directAlign)
	if skip == directAlign {
		skip = 0
	}
	return b[skip : skip+n : skip+n]
}

func (d *Dev) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), d.size, d.sector); err != nil {
		return 0, fmt.Errorf("%s: read: %w", d.path, err)
	}
	if len(p) == 0 {
		return 0, nil
	}
	buf := p
	if d.direct && !aligned(p) {
		buf = alignedBuf(len(p))
	}
	n, err := d.f.ReadAt(buf, off)
	if &buf[0] != &p[0] {
		copy(p, buf[:n])
	}
	if err != nil {
		return n, fmt.Errorf("%s: read %d bytes at %d: %w", d.path, len(p), off, err)
	}
	return n, nil
}

func (d *Dev) WriteAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), d.size, d.sector); err != nil {
		return 0, fmt.Errorf("%s: write: %w", d.path, err)
	}
	if len(p) == 0 {
		return 0, nil
	}
	buf := p
	if d.direct && !aligned(p) {
		buf = alignedBuf(len(p))
		copy(buf, p)
	}
	n, err := d.f.WriteAt(buf, off)
	if err != nil {
		return n, fmt.Errorf("%s: write %d bytes at %d: %w", d.path, len(p), off, err)
	}
	return n, nil
}

// Flush is fdatasync: data and the metadata needed to read it back.
func (d *Dev) Flush() error {
	for {
		err := unix.Fdatasync(int(d.f.Fd()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: fdatasync: %w", d.path, err)
		}
		return nil
	}
}

// Close closes the device without flushing.
func (d *Dev) Close() error { return d.f.Close() }

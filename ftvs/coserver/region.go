package coserver

import (
	"errors"
	"fmt"
	"os"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
	"github.com/ftvs/ftvs/ftvs/coserver/config"
	"golang.org/x/sys/unix"
)

// copyDev is one node's copy of a virtual disk as the mirror sees it.
type copyDev interface {
	blockdev.Device
	Close() error
}

// openCopy opens vs.disks[i]'s copy: all of its path (locked, exclusive),
// or the byte range offset/size of it (a partition of a whole disk).
// Data disks bypass the page cache (O_DIRECT: the VS's clients cache, and
// their writes are whole sectors). The boot disk does not: the FAT32 store
// writes directory entries and file tails in pieces smaller than a sector,
// which O_DIRECT turns into synchronous read-modify-write (FTP uploads ran
// at a quarter of the buffered speed). Durability is the same either way:
// the mirror acknowledges a FLUSH or FUA only after fsync on both copies.
func openCopy(dc config.Disk) (copyDev, error) {
	direct := !dc.Boot
	if dc.Offset == 0 && dc.Size == 0 {
		return openFile(dc.Path, filedev.Options{Direct: direct, Lock: true, Exclusive: true})
	}
	return openRegion(dc.Path, dc.Offset, dc.Size, direct)
}

// openFile opens with O_DIRECT where the filesystem allows it: tmpfs
// refuses O_DIRECT, so fall back to buffered I/O (flushes still fsync).
func openFile(path string, o filedev.Options) (*filedev.Dev, error) {
	dev, err := filedev.Open(path, o)
	if err != nil {
		o.Direct = false
		dev, err = filedev.Open(path, o)
	}
	return dev, err
}

// region is a byte range of a larger file or device. Several regions of one
// disk are open at once (boot and data partitions), so neither flock nor
// O_EXCL (both whole-file) guard it: an OFD write lock on the range does,
// against another ftvs process opening the same range this way.
type region struct {
	*filedev.Dev
	off, size int64
	lock      *os.File // holds the range lock
}

func (r *region) Size() int64 { return r.size }

func (r *region) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), r.size, r.SectorSize()); err != nil {
		return 0, err
	}
	return r.Dev.ReadAt(p, r.off+off)
}

func (r *region) WriteAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), r.size, r.SectorSize()); err != nil {
		return 0, err
	}
	return r.Dev.WriteAt(p, r.off+off)
}

func (r *region) Close() error { return errors.Join(r.lock.Close(), r.Dev.Close()) }

func openRegion(path string, off, size int64, direct bool) (*region, error) {
	dev, err := openFile(path, filedev.Options{Direct: direct})
	if err != nil {
		return nil, err
	}
	if size == 0 {
		size = dev.Size() - off
	}
	ss := int64(dev.SectorSize())
	if off%ss != 0 || size%ss != 0 || size <= 0 || off+size > dev.Size() {
		dev.Close()
		return nil, fmt.Errorf("%s: range %d+%d does not fit its %d bytes in whole %d-byte sectors", path, off, size, dev.Size(), ss)
	}
	// The lock is taken through a second descriptor: OFD locks belong to
	// the open file description, and this one lives as long as dev.
	lk, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		dev.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	fl := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: size}
	if err := unix.FcntlFlock(lk.Fd(), unix.F_OFD_SETLK, &fl); err != nil {
		lk.Close()
		dev.Close()
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("%s bytes %d+%d are in use by another ftvs process (locked)", path, off, size)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &region{Dev: dev, off: off, size: size, lock: lk}, nil
}

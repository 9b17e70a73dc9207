package filedev

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// maxScan bounds how much allocated data HoldsData reads from a file.
const maxScan = 64 << 20

// HoldsData reports whether the device holds anything a user might want
// kept, with a short description of what was found. A regular file holds
// data if any allocated extent (SEEK_DATA) contains a non-zero byte within
// the first 64 MiB of allocated data, or if it has more allocated data than
// that. A block device holds data if its first or last MiB (partition
// tables, filesystem, LVM and md signatures) has a non-zero byte.
func (d *Dev) HoldsData() (bool, string, error) {
	if d.size == 0 {
		return false, "", nil
	}
	if d.block {
		for _, off := range []int64{0, max(d.size-1<<20, 0)} {
			if nz, at, err := d.nonZero(off, min(1<<20, d.size-off)); err != nil || nz {
				return nz, fmt.Sprintf("non-zero byte at offset %d", at), err
			}
		}
		return false, "", nil
	}
	fd := int(d.f.Fd())
	scanned := int64(0)
	for pos := int64(0); pos < d.size; {
		start, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return false, "", nil // only holes left
		}
		if err != nil {
			// No SEEK_DATA support: fall back to reading everything.
			start = pos
		}
		end, err := unix.Seek(fd, start, unix.SEEK_HOLE)
		if err != nil {
			end = d.size
		}
		n := end - start
		if scanned+n > maxScan {
			return true, fmt.Sprintf("more than %d MiB of allocated data", maxScan>>20), nil
		}
		if nz, at, err := d.nonZero(start, n); err != nil || nz {
			return nz, fmt.Sprintf("non-zero byte at offset %d", at), err
		}
		scanned += n
		pos = end
	}
	return false, "", nil
}

func (d *Dev) nonZero(off, n int64) (bool, int64, error) {
	buf := alignedBuf(1 << 20)
	zero := make([]byte, len(buf))
	for pos := off; pos < off+n; {
		k := min(int64(len(buf)), off+n-pos)
		// Whole aligned reads, even past the end of a sparse file's extent.
		rd, err := d.f.ReadAt(buf[:k], pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return false, pos, fmt.Errorf("%s: read %d bytes at %d: %w", d.path, k, pos, err)
		}
		if !bytes.Equal(buf[:rd], zero[:rd]) {
			i := 0
			for buf[i] == 0 {
				i++
			}
			return true, pos + int64(i), nil
		}
		if rd == 0 {
			break
		}
		pos += int64(rd)
	}
	return false, 0, nil
}

package vsrun

import (
	"errors"
	"fmt"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// bootDisk is the VS boot disk the solo VS serves from: a FAT32 image, or a
// vdisk copy whose data area holds the FAT32 (what the installer writes).
type bootDisk struct {
	path     string
	writable bool
	file     *filedev.Dev
	vd       *vdisk.Disk     // nil for a bare FAT32 image
	dev      blockdev.Device // what the store reads: file, or vd's data area
	Store    *vbootdisk.Store
}

// openBootDisk opens path (locked; read-only unless writable) and the FAT32
// in it. A vdisk copy must be allowed to go live alone (an Outdated copy
// never is) and is marked running before the first write.
func openBootDisk(path string, writable bool) (*bootDisk, error) {
	f, err := filedev.Open(path, filedev.Options{ReadOnly: !writable, Lock: true})
	if err != nil {
		return nil, fmt.Errorf("boot disk: %w", err)
	}
	b := &bootDisk{path: path, writable: writable, file: f}
	var dev blockdev.Device = f
	if _, _, _, err := vdisk.ReadMetadata(f); err == nil {
		if b.vd, err = vdisk.Open(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("boot disk %s: vdisk copy: %w", path, err)
		}
		if ok, why := vdisk.CanGoLiveAlone(b.vd.Metadata()); !ok {
			f.Close()
			return nil, fmt.Errorf("boot disk %s: this copy may not serve alone: %s", path, why)
		}
		if writable {
			if err := b.vd.MarkRunning(); err != nil {
				f.Close()
				return nil, fmt.Errorf("boot disk %s: %w", path, err)
			}
		}
		dev = b.vd
	} else if !errors.Is(err, vdisk.ErrNotVdisk) {
		f.Close()
		return nil, fmt.Errorf("boot disk %s: %w", path, err)
	}
	b.dev = dev
	if b.Store, err = vbootdisk.Open(dev); err != nil {
		b.Close()
		return nil, fmt.Errorf("boot disk %s: %w", path, err)
	}
	return b, nil
}

// Close makes the served changes durable (the store's Sync; a vdisk copy
// also records the clean shutdown) and releases the file.
func (b *bootDisk) Close() error {
	var errs []error
	if b.Store != nil && b.writable {
		errs = append(errs, b.Store.Sync())
	}
	if b.vd != nil && b.writable {
		errs = append(errs, b.vd.CloseClean())
	}
	errs = append(errs, b.file.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("boot disk %s: %w", b.path, err)
	}
	return nil
}

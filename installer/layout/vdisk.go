package layout

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"os"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// vdiskData is the largest whole-MiB data area that fits in a partition of
// partSize bytes after the vdisk metadata and bitmap. For the VS boot disk
// it also avoids the FAT32 sizes go-diskfs gets wrong.
func vdiskData(partSize uint64, fat bool) (offset, size uint64, err error) {
	for data := int64(partSize) - vdisk.DataAlign; data >= mib; data -= mib {
		l, err := vdisk.Layout(data, SectorSize, vdisk.DefaultGranularity)
		if err != nil {
			return 0, 0, err
		}
		if l.DeviceSize > int64(partSize) {
			continue
		}
		if fat && checkFATBytes(data) != nil {
			if data < 40*mib {
				break
			}
			continue
		}
		return uint64(l.DataOffset), uint64(data), nil
	}
	return 0, 0, fmt.Errorf("partition of %d bytes has no room for vdisk metadata and data", partSize)
}

// VDiskUUID is the identity both copies of a virtual disk share, derived
// from the pair key so the two installers agree without talking.
func VDiskUUID(pairKey []byte, name string) [16]byte {
	m := hmac.New(sha256.New, pairKey)
	m.Write([]byte("ftvs vdisk uuid v1\x00" + name))
	var u [16]byte
	copy(u[:], m.Sum(nil))
	u[6] = u[6]&0x0f | 0x80 // RFC 9562 version 8 (custom)
	u[8] = u[8]&0x3f | 0x80
	return u
}

// region is a blockdev.Device over a byte range of an open file: one
// partition of the target disk.
type region struct {
	f    *os.File
	off  int64
	size int64
}

func (r region) ReadAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), r.size, SectorSize); err != nil {
		return 0, err
	}
	return r.f.ReadAt(p, r.off+off)
}

func (r region) WriteAt(p []byte, off int64) (int, error) {
	if err := blockdev.CheckAccess(off, len(p), r.size, SectorSize); err != nil {
		return 0, err
	}
	return r.f.WriteAt(p, r.off+off)
}

func (r region) Flush() error    { return r.f.Sync() }
func (r region) Size() int64     { return r.size }
func (r region) SectorSize() int { return SectorSize }
func partRegion(f *os.File, pt Part) region {
	return region{f: f, off: int64(pt.Start) * SectorSize, size: int64(pt.Size)}
}

// createVDisk writes fresh vdisk metadata into a virtual disk partition.
func createVDisk(f *os.File, pt Part, node int, pairKey []byte) error {
	d, err := vdisk.Create(partRegion(f, pt), vdisk.CreateOptions{
		UUID: VDiskUUID(pairKey, pt.VDName), Node: uint8(node), DataSize: int64(pt.DataSize)})
	if err != nil {
		return fmt.Errorf("vdisk metadata: %w", err)
	}
	md := d.Metadata()
	if uint64(md.DataOffset) != pt.DataOffset || uint64(md.DataSize) != pt.DataSize {
		return fmt.Errorf("vdisk placed its data at %d+%d, the plan says %d+%d", md.DataOffset, md.DataSize, pt.DataOffset, pt.DataSize)
	}
	return nil
}

// checkVDisk reads a virtual disk partition's metadata back.
func checkVDisk(f *os.File, pt Part, node int, pairKey []byte) error {
	md, _, _, err := vdisk.ReadMetadata(partRegion(f, pt))
	if err != nil {
		return err
	}
	if md.UUID != VDiskUUID(pairKey, pt.VDName) || int(md.Node) != node ||
		uint64(md.DataOffset) != pt.DataOffset || uint64(md.DataSize) != pt.DataSize {
		return fmt.Errorf("vdisk metadata reads back as uuid %x node %d data %d+%d", md.UUID, md.Node, md.DataOffset, md.DataSize)
	}
	return nil
}

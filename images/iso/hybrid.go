package iso

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
)

// DefaultHybridMBR is Debian's isohybrid MBR boot code (package isolinux):
// under BIOS from a disk it loads isolinux.bin from the LBA we patch in.
const DefaultHybridMBR = "/usr/lib/ISOLINUX/isohdpfx.bin"

// The isohybrid layout (syslinux's isohybrid, xorriso's -isohybrid-mbr):
// the MBR boot code's first 432 bytes, isolinux.bin's LBA in 512-byte
// sectors at 432, and a partition table with an active partition covering
// the image (BIOS) and an EFI System Partition (type 0xEF) over the El
// Torito EFI image, so UEFI firmware finds \EFI\BOOT\BOOTX64.EFI when the
// ISO is written to a USB stick. The image is padded to whole cylinders of
// the 64-head, 32-sector geometry the boot code assumes (1 MiB).
const (
	hybridHeads     = 64
	hybridSectors   = 32
	hybridCylinder  = hybridHeads * hybridSectors * 512
	isoSector       = 2048
	bootRecordLBA   = 17
	isolinuxHybridA = 0x7078c0fb // isolinux.bin bytes 0x40..0x43: built for isohybrid
)

// bootImages are the two El Torito images the boot catalog names: their
// LBAs in 2048-byte sectors.
type bootImages struct {
	biosLBA, efiLBA uint32
}

// readBootCatalog finds the BIOS (default entry) and EFI (platform 0xEF
// section) images in the El Torito catalog of the ISO at r.
func readBootCatalog(r io.ReaderAt) (bootImages, error) {
	var br [isoSector]byte
	if _, err := r.ReadAt(br[:], bootRecordLBA*isoSector); err != nil {
		return bootImages{}, fmt.Errorf("boot record volume descriptor: %w", err)
	}
	if br[0] != 0 || string(br[1:6]) != "CD001" || !bytes.HasPrefix(br[7:], []byte("EL TORITO SPECIFICATION")) {
		return bootImages{}, errors.New("sector 17 is not an El Torito boot record")
	}
	catLBA := binary.LittleEndian.Uint32(br[0x47:])
	var cat [isoSector]byte
	if _, err := r.ReadAt(cat[:], int64(catLBA)*isoSector); err != nil {
		return bootImages{}, fmt.Errorf("boot catalog at LBA %d: %w", catLBA, err)
	}
	if cat[0] != 1 || cat[30] != 0x55 || cat[31] != 0xAA {
		return bootImages{}, fmt.Errorf("boot catalog at LBA %d: no validation entry", catLBA)
	}
	var b bootImages
	if cat[32] != 0x88 {
		return bootImages{}, errors.New("boot catalog: the default (BIOS) entry is not bootable")
	}
	b.biosLBA = binary.LittleEndian.Uint32(cat[32+8:])
	// Section headers (0x90, 0x91 for the last) each followed by entries.
	for off := 64; off+32 <= len(cat); {
		h := cat[off : off+32]
		if h[0] != 0x90 && h[0] != 0x91 {
			break
		}
		platform, n := h[1], int(binary.LittleEndian.Uint16(h[2:]))
		off += 32
		for i := 0; i < n && off+32 <= len(cat); i, off = i+1, off+32 {
			if platform == 0xEF && cat[off] == 0x88 && b.efiLBA == 0 {
				b.efiLBA = binary.LittleEndian.Uint32(cat[off+8:])
			}
		}
		if h[0] == 0x91 {
			break
		}
	}
	if b.efiLBA == 0 {
		return bootImages{}, errors.New("boot catalog: no EFI (platform 0xEF) entry")
	}
	return b, nil
}

// chs is the cylinder/head/sector triple of an LBA in the isohybrid
// geometry, clamped to the largest CHS address as MBRs do past 8 GiB.
func chs(lba uint32) [3]byte {
	c := lba / (hybridHeads * hybridSectors)
	h := (lba / hybridSectors) % hybridHeads
	s := lba%hybridSectors + 1
	if c > 1023 {
		c, h, s = 1023, hybridHeads-1, hybridSectors
	}
	return [3]byte{byte(h), byte(s) | byte(c>>8)<<6, byte(c)}
}

func partitionEntry(active bool, typ byte, start, count uint32) []byte {
	e := make([]byte, 16)
	if active {
		e[0] = 0x80
	}
	first, last := chs(start), chs(start+count-1)
	copy(e[1:4], first[:])
	e[4] = typ
	copy(e[5:8], last[:])
	binary.LittleEndian.PutUint32(e[8:], start)
	binary.LittleEndian.PutUint32(e[12:], count)
	return e
}

// makeHybrid turns the finished ISO at path into an isohybrid image that
// also boots from a disk or USB stick, under BIOS and UEFI. mbrCode is the
// isohdpfx.bin boot code; efiSize the EFI image's size in bytes.
func makeHybrid(path, mbrCode string, efiSize int64) error {
	code, err := os.ReadFile(mbrCode)
	if err != nil {
		return fmt.Errorf("isohybrid MBR (Debian package isolinux): %w", err)
	}
	if len(code) < 432 {
		return fmt.Errorf("isohybrid MBR %s: %d bytes, want at least 432", mbrCode, len(code))
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	imgs, err := readBootCatalog(f)
	if err != nil {
		return fmt.Errorf("isohybrid: %w", err)
	}
	var sig [4]byte
	if _, err := f.ReadAt(sig[:], int64(imgs.biosLBA)*isoSector+0x40); err != nil {
		return fmt.Errorf("isohybrid: isolinux.bin: %w", err)
	}
	if binary.LittleEndian.Uint32(sig[:]) != isolinuxHybridA {
		return errors.New("isohybrid: isolinux.bin is not an isohybrid-capable build (no signature at 0x40)")
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := (st.Size() + hybridCylinder - 1) / hybridCylinder * hybridCylinder
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("isohybrid: padding to whole cylinders: %w", err)
	}
	var mbr [512]byte
	if _, err := f.ReadAt(mbr[:], 0); err != nil {
		return err
	}
	for _, b := range mbr[:] {
		if b != 0 {
			return errors.New("isohybrid: the ISO's system area is not empty")
		}
	}
	copy(mbr[:432], code[:432])
	binary.LittleEndian.PutUint32(mbr[432:], imgs.biosLBA*4)
	// A disk signature derived from the image's first sectors, not a
	// random one: two builds of the same inputs give the same bytes.
	head := make([]byte, 64*isoSector)
	if _, err := f.ReadAt(head, 16*isoSector); err != nil {
		return err
	}
	binary.LittleEndian.PutUint32(mbr[440:], crc32.ChecksumIEEE(head))
	copy(mbr[446:], partitionEntry(true, 0x17, 0, uint32(size/512)))
	efiSectors := uint32((efiSize + 511) / 512)
	copy(mbr[462:], partitionEntry(false, 0xEF, imgs.efiLBA*4, efiSectors))
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := f.WriteAt(mbr[:], 0); err != nil {
		return fmt.Errorf("isohybrid: writing the MBR: %w", err)
	}
	return f.Sync()
}

// Package usb writes the installer's USB stick image: a GPT disk with one
// FAT32 EFI System Partition holding the unified kernel image at the UEFI
// removable-media path, so any UEFI firmware boots it with no boot loader.
package usb

import (
	"fmt"
	"os"
	"path/filepath"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/ftvs/ftvs/images/esp"
)

// Label is the ESP's volume label and GPT partition name.
const Label = "FTVS"

const (
	sector     = 512
	firstLBA   = 2048 // 1 MiB alignment
	tailMiB    = 1    // room for the backup GPT
	sectorsMiB = (1 << 20) / sector
)

// Options says what goes on the stick.
type Options struct {
	UKI    string // unified kernel image -> /EFI/BOOT/BOOTX64.EFI
	Config string // optional unattended config -> /ftvs/install.conf
	Out    string // image file; must not exist... it is replaced atomically
}

// Build writes the disk image. The image is assembled in a temporary file
// next to Out and renamed into place, so a failure leaves nothing behind.
func Build(o Options) error {
	files := []esp.File{{Path: esp.BootPath, Src: o.UKI}}
	if o.Config != "" {
		data, err := os.ReadFile(o.Config)
		if err != nil {
			return fmt.Errorf("usb: install config: %w", err)
		}
		files = append(files, esp.File{Path: esp.ConfigPath, Data: data})
	}
	payload, err := esp.PayloadSize(files)
	if err != nil {
		return fmt.Errorf("usb: %w", err)
	}
	espMiB := esp.SizeMiB(payload)
	total := int64(firstLBA*sector) + (espMiB+tailMiB)<<20

	tmp, err := os.MkdirTemp(filepath.Dir(o.Out), ".usb-")
	if err != nil {
		return fmt.Errorf("usb: %w", err)
	}
	defer os.RemoveAll(tmp)
	img := filepath.Join(tmp, "usb.img")
	d, err := diskfs.Create(img, total, diskfs.SectorSizeDefault)
	if err != nil {
		return fmt.Errorf("usb: creating %s: %w", img, err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	table := &gpt.Table{
		LogicalSectorSize:  sector,
		PhysicalSectorSize: sector,
		ProtectiveMBR:      true,
		Partitions: []*gpt.Partition{{
			Index: 1,
			Start: firstLBA,
			End:   firstLBA + uint64(espMiB)*sectorsMiB - 1,
			Type:  gpt.EFISystemPartition,
			Name:  "EFI System " + Label,
		}},
	}
	if err := d.Partition(table); err != nil {
		return fmt.Errorf("usb: writing GPT: %w", err)
	}
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 1, FSType: filesystem.TypeFat32, VolumeLabel: Label})
	if err != nil {
		return fmt.Errorf("usb: formatting ESP: %w", err)
	}
	if err := esp.Populate(fs, files); err != nil {
		return fmt.Errorf("usb: %w", err)
	}
	closed = true
	if err := d.Close(); err != nil {
		return fmt.Errorf("usb: %w", err)
	}
	if err := esp.FixDotDot(img, firstLBA*sector); err != nil {
		return fmt.Errorf("usb: %w", err)
	}
	if err := os.Rename(img, o.Out); err != nil {
		return fmt.Errorf("usb: %w", err)
	}
	return nil
}

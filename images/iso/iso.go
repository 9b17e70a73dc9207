// Package iso writes the installer ISO: ISO 9660 with Rock Ridge and two
// El Torito entries, BIOS (Debian's isolinux, booting vmlinuz + initrd with
// the command line) and UEFI (a FAT image holding the unified kernel image
// at /EFI/BOOT/BOOTX64.EFI). It is isohybrid (hybrid.go): the same file
// boots as a CD or virtual medium and, written to a USB stick with dd, as a
// disk under BIOS (the isolinux MBR) and UEFI (an EFI System Partition over
// the EFI image).
package iso

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"

	"github.com/ftvs/ftvs/images/esp"
)

// Debian's isolinux (package isolinux) and its core module (syslinux-common).
const (
	DefaultIsolinux = "/usr/lib/ISOLINUX/isolinux.bin"
	DefaultLdlinux  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
)

// Paths inside the ISO.
const (
	IsolinuxBin = "/isolinux/isolinux.bin"
	IsolinuxCfg = "/isolinux/isolinux.cfg"
	Ldlinux     = "/isolinux/ldlinux.c32"
	EFIImage    = "/boot/efiboot.img"
	Vmlinuz     = "/boot/vmlinuz"
	Initrd      = "/boot/initrd.img"
	ConfigPath  = esp.ConfigPath
	VolumeID    = "FTVS_INSTALLER"
)

// Options says what goes into the ISO.
type Options struct {
	UKI      string // unified kernel image for UEFI
	Vmlinuz  string // for BIOS (isolinux)
	Initrd   string
	Cmdline  string
	Config   string // optional unattended config -> /ftvs/install.conf
	Isolinux string // "" means DefaultIsolinux
	Ldlinux  string // "" means DefaultLdlinux
	// HybridMBR is the isohybrid MBR boot code; "" means DefaultHybridMBR.
	HybridMBR string
	Out       string
}

// IsolinuxConfig renders the BIOS boot menu: one entry, no prompt.
func IsolinuxConfig(cmdline string) string {
	return "DEFAULT ftvs\nPROMPT 0\nTIMEOUT 0\nLABEL ftvs\n  KERNEL " + Vmlinuz +
		"\n  APPEND initrd=" + Initrd + " " + strings.TrimSpace(cmdline) + "\n"
}

// Build writes the ISO to o.Out (assembled next to it, renamed into place).
func Build(o Options) error {
	isolinux, ldlinux := o.Isolinux, o.Ldlinux
	if isolinux == "" {
		isolinux = DefaultIsolinux
	}
	if ldlinux == "" {
		ldlinux = DefaultLdlinux
	}
	hybridMBR := o.HybridMBR
	if hybridMBR == "" {
		hybridMBR = DefaultHybridMBR
	}
	for _, p := range []struct{ what, path string }{
		{"unified kernel image", o.UKI}, {"kernel", o.Vmlinuz}, {"initramfs", o.Initrd},
		{"isolinux.bin (Debian package isolinux)", isolinux}, {"ldlinux.c32 (Debian package syslinux-common)", ldlinux},
		{"isohybrid MBR isohdpfx.bin (Debian package isolinux)", hybridMBR},
	} {
		if _, err := os.Stat(p.path); err != nil {
			return fmt.Errorf("iso: %s: %w", p.what, err)
		}
	}
	var config []byte
	if o.Config != "" {
		var err error
		if config, err = os.ReadFile(o.Config); err != nil {
			return fmt.Errorf("iso: install config: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(o.Out), ".iso-")
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	defer os.RemoveAll(tmp)

	efiImg := filepath.Join(tmp, "efiboot.img")
	if err := writeEFIImage(efiImg, o.UKI); err != nil {
		return err
	}
	files := []esp.File{
		{Path: IsolinuxBin, Src: isolinux},
		{Path: Ldlinux, Src: ldlinux},
		{Path: IsolinuxCfg, Data: []byte(IsolinuxConfig(o.Cmdline))},
		{Path: Vmlinuz, Src: o.Vmlinuz},
		{Path: Initrd, Src: o.Initrd},
		{Path: EFIImage, Src: efiImg},
	}
	if config != nil {
		files = append(files, esp.File{Path: ConfigPath, Data: config})
	}
	payload, err := esp.PayloadSize(files)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	out := filepath.Join(tmp, "ftvs.iso")
	if err := os.Mkdir(filepath.Join(tmp, "work"), 0o755); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	size := payload + 4<<20
	d, err := diskfs.Create(out, size, diskfs.SectorSizeDefault)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	d.LogicalBlocksize = 2048
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeISO9660, VolumeLabel: VolumeID, WorkDir: filepath.Join(tmp, "work")})
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := esp.Populate(fs, files); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	isofs, ok := fs.(*iso9660.FileSystem)
	if !ok {
		return fmt.Errorf("iso: go-diskfs returned %T, not an ISO 9660 file system", fs)
	}
	bios := &iso9660.ElToritoEntry{
		Platform:  iso9660.BIOS,
		Emulation: iso9660.NoEmulation,
		BootFile:  IsolinuxBin,
		BootTable: true,
	}
	bios.SetLoadSize(4)
	efi := &iso9660.ElToritoEntry{
		Platform:  iso9660.EFI,
		Emulation: iso9660.NoEmulation,
		BootFile:  EFIImage,
	}
	if err := isofs.Finalize(iso9660.FinalizeOptions{
		RockRidge:        true,
		VolumeIdentifier: VolumeID,
		ElTorito:         &iso9660.ElTorito{BootCatalog: "/isolinux/boot.cat", Entries: []*iso9660.ElToritoEntry{bios, efi}},
	}); err != nil {
		return fmt.Errorf("iso: finalizing: %w", err)
	}
	closed = true
	if err := d.Close(); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	efiSt, err := os.Stat(efiImg)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := makeHybrid(out, hybridMBR, efiSt.Size()); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	if err := os.Rename(out, o.Out); err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	return nil
}

// writeEFIImage writes a bare FAT32 image (no partition table, as El Torito
// EFI entries want) holding the UKI at the removable-media path.
func writeEFIImage(path, ukiPath string) error {
	files := []esp.File{{Path: esp.BootPath, Src: ukiPath}}
	payload, err := esp.PayloadSize(files)
	if err != nil {
		return fmt.Errorf("iso: %w", err)
	}
	d, err := diskfs.Create(path, esp.SizeMiB(payload)<<20, diskfs.SectorSizeDefault)
	if err != nil {
		return fmt.Errorf("iso: EFI image: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			d.Close()
		}
	}()
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{Partition: 0, FSType: filesystem.TypeFat32, VolumeLabel: "FTVS_EFI"})
	if err != nil {
		return fmt.Errorf("iso: EFI image: %w", err)
	}
	if err := esp.Populate(fs, files); err != nil {
		return fmt.Errorf("iso: EFI image: %w", err)
	}
	closed = true
	if err := d.Close(); err != nil {
		return fmt.Errorf("iso: EFI image: %w", err)
	}
	return esp.FixDotDot(path, 0)
}

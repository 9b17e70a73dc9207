// Package esp writes FAT32 EFI System Partitions with go-diskfs: the ESP
// of the USB image and the El Torito EFI boot image of the ISO. Both hold
// the unified kernel image as the removable-media path /EFI/BOOT/BOOTX64.EFI.
package esp

import (
	"fmt"
	"io"
	"os"
	"path"

	"github.com/diskfs/go-diskfs/filesystem"
)

// BootPath is the UEFI removable-media boot path for x86-64.
const BootPath = "/EFI/BOOT/BOOTX64.EFI"

// ConfigPath is where an unattended config is put on the medium, so an
// operator can edit it on the stick and boot with ftvs.config=media:/ftvs/install.conf.
const ConfigPath = "/ftvs/install.conf"

// MinMiB keeps the file system large enough that firmware sees FAT32
// (below ~34 MiB the cluster count says FAT16).
const MinMiB = 40

// SizeMiB returns a FAT32 size holding payload bytes with room to spare,
// skipping the sizes where go-diskfs v1.9.4 writes a FAT two entries short
// (64, 129, 259 MiB, 4 GiB: upstream issue #418; fsck.fat rejects them).
func SizeMiB(payload int64) int64 {
	mib := (payload*11/10)>>20 + 8
	if mib < MinMiB {
		mib = MinMiB
	}
	for bad(mib) {
		mib++
	}
	return mib
}

func bad(mib int64) bool {
	switch mib {
	case 64, 129, 259, 4096:
		return true
	}
	return false
}

// File is one file to put on the file system, from Src or Data.
type File struct {
	Path string // absolute path on the FAT file system
	Src  string // host file to copy, or
	Data []byte // literal contents
}

// Populate creates each file (and its directories) on fs.
func Populate(fs filesystem.FileSystem, files []File) error {
	made := map[string]bool{"/": true}
	for _, f := range files {
		dir := path.Dir(f.Path)
		if !made[dir] {
			if err := fs.Mkdir(dir); err != nil {
				return fmt.Errorf("esp: mkdir %s: %w", dir, err)
			}
			for d := dir; d != "/"; d = path.Dir(d) {
				made[d] = true
			}
		}
		if err := writeFile(fs, f); err != nil {
			return fmt.Errorf("esp: %s: %w", f.Path, err)
		}
	}
	return nil
}

func writeFile(fs filesystem.FileSystem, f File) error {
	out, err := fs.OpenFile(f.Path, os.O_CREATE|os.O_RDWR)
	if err != nil {
		return err
	}
	if f.Src != "" {
		in, err := os.Open(f.Src)
		if err != nil {
			out.Close()
			return err
		}
		defer in.Close()
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
	} else if _, err := out.Write(f.Data); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// PayloadSize sums the sizes of files.
func PayloadSize(files []File) (int64, error) {
	var n int64
	for _, f := range files {
		if f.Src == "" {
			n += int64(len(f.Data))
			continue
		}
		st, err := os.Stat(f.Src)
		if err != nil {
			return 0, fmt.Errorf("esp: %w", err)
		}
		n += st.Size()
	}
	return n, nil
}

package layout

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"
)

// Signature is something found on a disk that says it is in use.
type Signature struct {
	What   string
	Offset int64
}

// signatures are the magic numbers of partition tables and filesystems,
// at their byte offsets (as wipefs/blkid know them).
var signatures = []struct {
	what  string
	off   int64
	magic []byte
}{
	{"GPT partition table", 512, []byte("EFI PART")},
	{"GPT partition table (4K sectors)", 4096, []byte("EFI PART")},
	{"ext2/3/4 filesystem", 1080, []byte{0x53, 0xef}},
	{"XFS filesystem", 0, []byte("XFSB")},
	{"btrfs filesystem", 65600, []byte("_BHRfS_M")},
	{"LVM physical volume", 536, []byte("LVM2 001")},
	{"swap space", 4086, []byte("SWAPSPACE2")},
	{"swap space (old)", 4086, []byte("SWAP-SPACE")},
	{"ISO9660 filesystem", 32769, []byte("CD001")},
	{"LUKS encrypted volume", 0, []byte("LUKS\xba\xbe")},
	{"NTFS filesystem", 3, []byte("NTFS    ")},
	{"FAT32 filesystem", 82, []byte("FAT32   ")},
	{"FAT12/16 filesystem", 54, []byte("FAT1")},
	{"exFAT filesystem", 3, []byte("EXFAT   ")},
	{"Linux RAID member", 4096, []byte{0xfc, 0x4e, 0x2b, 0xa9}},
}

// Inspect reads (never writes) the start of a disk and reports every
// partition table and filesystem signature found. An empty result means
// the disk looks unused.
func Inspect(path string) ([]Signature, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, 128<<10)
	n, err := f.ReadAt(head, 0)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("inspect %s: %w", path, err)
	}
	head = head[:n]
	var found []Signature
	for _, s := range signatures {
		end := s.off + int64(len(s.magic))
		if end <= int64(len(head)) && bytes.Equal(head[s.off:end], s.magic) {
			found = append(found, Signature{s.what, s.off})
		}
	}
	// An MBR with a partition entry (and no FAT boot sector, which also
	// ends in 55AA) is a DOS partition table.
	if len(head) >= 512 && head[510] == 0x55 && head[511] == 0xaa && !hasFS(found) {
		for i := 0; i < 4; i++ {
			e := head[446+16*i:]
			if e[4] != 0 && binary.LittleEndian.Uint32(e[12:]) != 0 {
				found = append(found, Signature{"DOS (MBR) partition table", 446})
				break
			}
		}
	}
	return found, nil
}

func hasFS(s []Signature) bool {
	for _, x := range s {
		if strings.Contains(x.What, "FAT") || strings.Contains(x.What, "NTFS") {
			return true
		}
	}
	return false
}

// Describe lists signatures for an error message.
func Describe(s []Signature) string {
	var parts []string
	for _, x := range s {
		parts = append(parts, fmt.Sprintf("%s (at byte %d)", x.What, x.Offset))
	}
	return strings.Join(parts, ", ")
}

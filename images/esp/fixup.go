package esp

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
)

// FixDotDot rewrites the ".." entry of every directory in the root of the
// FAT32 file system at offset in the file at path to point at cluster 0,
// as the FAT specification requires for children of the root. go-diskfs
// v1.9.4 writes the root's cluster number (2) instead, which fsck.fat
// reports ("Invalid '..' entry") and repairs; firmware does not care, but
// the medium should pass fsck.fat -n.
func FixDotDot(path string, offset int64) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("esp: %w", err)
	}
	defer f.Close()
	if err := fixDotDot(f, offset); err != nil {
		return fmt.Errorf("%w (%s)", err, path)
	}
	return f.Close()
}

type readerWriterAt interface {
	io.ReaderAt
	io.WriterAt
}

func fixDotDot(f readerWriterAt, offset int64) error {
	var bs [512]byte
	if _, err := f.ReadAt(bs[:], offset); err != nil {
		return fmt.Errorf("esp: reading boot sector: %w", err)
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(binary.LittleEndian.Uint16(bs[14:]))
	nfats := int64(bs[16])
	fatSize := int64(binary.LittleEndian.Uint32(bs[36:]))
	rootCluster := int64(binary.LittleEndian.Uint32(bs[44:]))
	validBPS := bps == 512 || bps == 1024 || bps == 2048 || bps == 4096
	validSPC := spc != 0 && spc&(spc-1) == 0 && spc <= 128
	if !validBPS || !validSPC || bps*spc > 64<<10 || fatSize == 0 || rootCluster < 2 || string(bs[82:87]) != "FAT32" {
		return fmt.Errorf("esp: no FAT32 file system at offset %d", offset)
	}
	clusterBytes := bps * spc
	dataStart := offset + (reserved+nfats*fatSize)*bps
	clusterOff := func(c int64) int64 { return dataStart + (c-2)*clusterBytes }

	root := make([]byte, clusterBytes)
	if _, err := f.ReadAt(root, clusterOff(rootCluster)); err != nil {
		return fmt.Errorf("esp: reading root directory: %w", err)
	}
	for i := 0; i+32 <= len(root); i += 32 {
		e := root[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xE5 || e[11] == 0x0F || e[11]&0x10 == 0 || e[0] == '.' {
			continue
		}
		c := int64(binary.LittleEndian.Uint16(e[20:]))<<16 | int64(binary.LittleEndian.Uint16(e[26:]))
		if c < 2 {
			continue
		}
		var dotdot [32]byte
		at := clusterOff(c) + 32
		if _, err := f.ReadAt(dotdot[:], at); err != nil {
			return fmt.Errorf("esp: reading directory: %w", err)
		}
		if string(dotdot[:11]) != "..         " {
			continue
		}
		binary.LittleEndian.PutUint16(dotdot[20:], 0)
		binary.LittleEndian.PutUint16(dotdot[26:], 0)
		if _, err := f.WriteAt(dotdot[:], at); err != nil {
			return fmt.Errorf("esp: writing directory: %w", err)
		}
	}
	return nil
}

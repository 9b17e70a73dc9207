package layout

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/diskfs/go-diskfs/backend"
)

// fixFAT32 repairs two defects of the FAT32 go-diskfs v1.9.4 writes, which
// fsck.fat reports (and firmware or Linux may trip over):
//   - a directory in the root has ".." pointing at the root cluster; the
//     FAT spec says a ".." naming the root holds cluster 0;
//   - the FSInfo free-cluster count and next-free hint are left "unknown".
func fixFAT32(b backend.Storage, offset int64) error {
	w, err := b.Writable()
	if err != nil {
		return err
	}
	bs := make([]byte, 512)
	if _, err := b.ReadAt(bs, offset); err != nil {
		return fmt.Errorf("read boot sector: %w", err)
	}
	bps := int64(binary.LittleEndian.Uint16(bs[11:]))
	spc := int64(bs[13])
	reserved := int64(binary.LittleEndian.Uint16(bs[14:]))
	nFATs := int64(bs[16])
	totalSectors := int64(binary.LittleEndian.Uint32(bs[32:]))
	fatSectors := int64(binary.LittleEndian.Uint32(bs[36:]))
	rootCluster := binary.LittleEndian.Uint32(bs[44:])
	fsInfo := int64(binary.LittleEndian.Uint16(bs[48:]))
	backupBoot := int64(binary.LittleEndian.Uint16(bs[50:]))
	if bps != 512 && bps != 4096 || spc == 0 || nFATs == 0 || fatSectors == 0 {
		return fmt.Errorf("not a FAT32 boot sector")
	}
	fat := make([]byte, fatSectors*bps)
	if _, err := b.ReadAt(fat, offset+reserved*bps); err != nil && err != io.EOF {
		return fmt.Errorf("read FAT: %w", err)
	}
	dataStart := offset + (reserved+nFATs*fatSectors)*bps
	clusterBytes := spc * bps
	clusters := uint32((totalSectors - reserved - nFATs*fatSectors) / spc)
	entry := func(c uint32) uint32 { return binary.LittleEndian.Uint32(fat[4*c:]) & 0x0fffffff }
	clusterOff := func(c uint32) int64 { return dataStart + int64(c-2)*clusterBytes }

	// Root directory chain, bounded by the cluster count.
	var root []byte
	for c, n := rootCluster, uint32(0); c >= 2 && c < 0x0ffffff8 && n <= clusters; c, n = entry(c), n+1 {
		buf := make([]byte, clusterBytes)
		if _, err := b.ReadAt(buf, clusterOff(c)); err != nil {
			return fmt.Errorf("read root directory: %w", err)
		}
		root = append(root, buf...)
	}
	for i := 0; i+32 <= len(root); i += 32 {
		e := root[i : i+32]
		if e[0] == 0 {
			break
		}
		if e[0] == 0xe5 || e[11] == 0x0f || e[11]&0x10 == 0 || e[0] == '.' {
			continue
		}
		sub := uint32(binary.LittleEndian.Uint16(e[20:]))<<16 | uint32(binary.LittleEndian.Uint16(e[26:]))
		if sub < 2 || sub >= clusters+2 {
			continue
		}
		dot := make([]byte, 64)
		if _, err := b.ReadAt(dot, clusterOff(sub)); err != nil {
			return fmt.Errorf("read directory: %w", err)
		}
		dd := dot[32:64]
		if string(dd[:11]) != "..         " {
			continue
		}
		if binary.LittleEndian.Uint16(dd[20:]) == 0 && binary.LittleEndian.Uint16(dd[26:]) == 0 {
			continue
		}
		var zero [2]byte
		if _, err := w.WriteAt(zero[:], clusterOff(sub)+32+20); err != nil {
			return err
		}
		if _, err := w.WriteAt(zero[:], clusterOff(sub)+32+26); err != nil {
			return err
		}
	}

	free, next := uint32(0), uint32(0xffffffff)
	for c := uint32(2); c < clusters+2 && int(4*c+4) <= len(fat); c++ {
		if entry(c) == 0 {
			free++
			if next == 0xffffffff {
				next = c
			}
		}
	}
	var v [8]byte
	binary.LittleEndian.PutUint32(v[0:], free)
	binary.LittleEndian.PutUint32(v[4:], next)
	for _, s := range []int64{fsInfo, backupBoot + fsInfo} {
		if s == 0 || s >= reserved {
			continue
		}
		sig := make([]byte, 4)
		if _, err := b.ReadAt(sig, offset+s*bps); err != nil || string(sig) != "RRaA" {
			continue
		}
		if _, err := w.WriteAt(v[:], offset+s*bps+488); err != nil {
			return fmt.Errorf("write FSInfo: %w", err)
		}
	}
	return nil
}

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
//
// v is the volume as readFATVolume read it (with any FAT change since).
func fixFAT32(b backend.Storage, offset int64, v *fatVolume) error {
	w, err := b.Writable()
	if err != nil {
		return err
	}
	bps, reserved, fsInfo, backupBoot := v.bps, v.reserved, v.fsInfo, v.backupBoot
	rootCluster, clusters, clusterBytes, fat := v.rootCluster, v.clusters, v.clusterBytes, v.fat
	entry, clusterOff := v.entry, v.clusterOff

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
	var hint [8]byte
	binary.LittleEndian.PutUint32(hint[0:], free)
	binary.LittleEndian.PutUint32(hint[4:], next)
	for _, s := range []int64{fsInfo, backupBoot + fsInfo} {
		if s == 0 || s >= reserved {
			continue
		}
		sig := make([]byte, 4)
		if _, err := b.ReadAt(sig, offset+s*bps); err != nil || string(sig) != "RRaA" {
			continue
		}
		if _, err := w.WriteAt(hint[:], offset+s*bps+488); err != nil {
			return fmt.Errorf("write FSInfo: %w", err)
		}
	}
	return nil
}

// fatVolume is what fixFAT32 and stampFAT32 read of a FAT32: its geometry
// from the boot sector and the first FAT.
type fatVolume struct {
	bps, reserved, fsInfo, backupBoot int64
	rootCluster, clusters             uint32
	dataStart, clusterBytes           int64
	fatStart, nFATs                   int64 // offset of the first FAT, and how many
	fat                               []byte
}

func readFATVolume(b backend.Storage, offset int64) (*fatVolume, error) {
	bs := make([]byte, 512)
	if _, err := b.ReadAt(bs, offset); err != nil {
		return nil, fmt.Errorf("read boot sector: %w", err)
	}
	v := &fatVolume{
		bps:         int64(binary.LittleEndian.Uint16(bs[11:])),
		reserved:    int64(binary.LittleEndian.Uint16(bs[14:])),
		rootCluster: binary.LittleEndian.Uint32(bs[44:]),
		fsInfo:      int64(binary.LittleEndian.Uint16(bs[48:])),
		backupBoot:  int64(binary.LittleEndian.Uint16(bs[50:])),
	}
	spc := int64(bs[13])
	nFATs := int64(bs[16])
	totalSectors := int64(binary.LittleEndian.Uint32(bs[32:]))
	fatSectors := int64(binary.LittleEndian.Uint32(bs[36:]))
	if v.bps != 512 && v.bps != 4096 || spc == 0 || nFATs == 0 || fatSectors == 0 || totalSectors <= v.reserved+nFATs*fatSectors {
		return nil, fmt.Errorf("not a FAT32 boot sector")
	}
	v.fat = make([]byte, fatSectors*v.bps)
	if _, err := b.ReadAt(v.fat, offset+v.reserved*v.bps); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read FAT: %w", err)
	}
	v.fatStart, v.nFATs = offset+v.reserved*v.bps, nFATs
	v.dataStart = offset + (v.reserved+nFATs*fatSectors)*v.bps
	v.clusterBytes = spc * v.bps
	v.clusters = uint32((totalSectors - v.reserved - nFATs*fatSectors) / spc)
	return v, nil
}

// entry is cluster c's FAT entry; past the FAT's end it reads as an end
// of chain.
func (v *fatVolume) entry(c uint32) uint32 {
	if int64(c)*4+4 > int64(len(v.fat)) {
		return 0x0fffffff
	}
	return binary.LittleEndian.Uint32(v.fat[4*c:]) & 0x0fffffff
}

func (v *fatVolume) clusterOff(c uint32) int64 { return v.dataStart + int64(c-2)*v.clusterBytes }

// writeFATs writes the in-memory FAT over every FAT copy.
func (v *fatVolume) writeFATs(w io.WriterAt) error {
	for i := int64(0); i < v.nFATs; i++ {
		if _, err := w.WriteAt(v.fat, v.fatStart+i*int64(len(v.fat))); err != nil {
			return fmt.Errorf("write FAT %d: %w", i+1, err)
		}
	}
	return nil
}

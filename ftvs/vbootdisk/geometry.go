package vbootdisk

import (
	"encoding/binary"
	"fmt"
)

// FAT32 cluster values (the top 4 bits of an entry are reserved).
const (
	fatMask    = 0x0fffffff
	fatBad     = 0x0ffffff7
	fatEOC     = 0x0fffffff // what this store writes at a chain's end
	fatEOCMin  = 0x0ffffff8 // any value from here on ends a chain
	maxFATSize = 0xffffffff // largest file FAT32 can describe
)

// geometry is the layout a FAT32 boot sector describes, in bytes where it
// says so.
type geometry struct {
	bps          int64  // bytes per sector
	clusterSize  int64  // bytes per cluster
	reserved     int64  // reserved sectors
	nfats        int64  // FAT copies
	fatBytes     int64  // bytes per FAT copy
	fatStart     int64  // byte offset of the first FAT
	dataStart    int64  // byte offset of cluster 2
	totalSectors int64  // sectors of the volume
	clusters     uint32 // data clusters: 2 .. clusters+1 are valid
	rootCluster  uint32
	fsInfo       int64 // sector of the FSInfo sector, 0 when absent
	backupBoot   int64 // sector of the backup boot sector, 0 when absent
}

func (g *geometry) maxCluster() uint32 { return g.clusters + 1 }

func (g *geometry) clusterOffset(c uint32) int64 {
	return g.dataStart + int64(c-2)*g.clusterSize
}

// parseBootSector validates a FAT32 boot sector (its first 512 bytes) against
// a device of devSize bytes. Every refusal names the field and the value.
func parseBootSector(b []byte, devSize int64) (geometry, error) {
	var g geometry
	if len(b) < 512 {
		return g, fmt.Errorf("%w: boot sector is %d bytes, want 512", ErrCorrupt, len(b))
	}
	if b[510] != 0x55 || b[511] != 0xaa {
		return g, fmt.Errorf("%w: boot sector signature is %#02x%02x, want 0x55aa (not a FAT filesystem)", ErrCorrupt, b[510], b[511])
	}
	le16 := func(o int) int64 { return int64(binary.LittleEndian.Uint16(b[o:])) }
	le32 := func(o int) int64 { return int64(binary.LittleEndian.Uint32(b[o:])) }
	g.bps = le16(11)
	switch g.bps {
	case 512, 1024, 2048, 4096:
	default:
		return g, fmt.Errorf("%w: boot sector: bytes per sector %d, want 512, 1024, 2048 or 4096", ErrCorrupt, g.bps)
	}
	spc := int64(b[13])
	if spc == 0 || spc&(spc-1) != 0 {
		return g, fmt.Errorf("%w: boot sector: sectors per cluster %d is not a power of two", ErrCorrupt, spc)
	}
	g.clusterSize = spc * g.bps
	if g.clusterSize > 64<<10 {
		return g, fmt.Errorf("%w: boot sector: cluster size %d bytes exceeds 64 KiB", ErrCorrupt, g.clusterSize)
	}
	g.reserved = le16(14)
	if g.reserved == 0 {
		return g, fmt.Errorf("%w: boot sector: reserved sector count is 0", ErrCorrupt)
	}
	g.nfats = int64(b[16])
	if g.nfats == 0 || g.nfats > 4 {
		return g, fmt.Errorf("%w: boot sector: FAT count %d, want 1 to 4", ErrCorrupt, g.nfats)
	}
	if n := le16(17); n != 0 {
		return g, fmt.Errorf("%w: boot sector: root entry count %d: a FAT12/16 volume, not FAT32", ErrCorrupt, n)
	}
	if n := le16(22); n != 0 {
		return g, fmt.Errorf("%w: boot sector: 16-bit FAT size %d: a FAT12/16 volume, not FAT32", ErrCorrupt, n)
	}
	if n := le16(19); n != 0 {
		return g, fmt.Errorf("%w: boot sector: 16-bit total sectors %d set on a FAT32 volume", ErrCorrupt, n)
	}
	g.totalSectors = le32(32)
	fatSectors := le32(36)
	if fatSectors == 0 {
		return g, fmt.Errorf("%w: boot sector: FAT size is 0 sectors", ErrCorrupt)
	}
	if flags := le16(40); flags&0x80 != 0 {
		return g, fmt.Errorf("%w: boot sector: FAT mirroring is disabled (extended flags %#04x); not supported", ErrCorrupt, flags)
	}
	if v := le16(42); v != 0 {
		return g, fmt.Errorf("%w: boot sector: FAT32 version %#04x, want 0", ErrCorrupt, v)
	}
	if g.totalSectors*g.bps > devSize {
		return g, fmt.Errorf("%w: boot sector: volume of %d sectors (%d bytes) is larger than the %d-byte disk", ErrCorrupt, g.totalSectors, g.totalSectors*g.bps, devSize)
	}
	g.fatBytes = fatSectors * g.bps
	g.fatStart = g.reserved * g.bps
	meta := g.reserved + g.nfats*fatSectors
	if meta >= g.totalSectors {
		return g, fmt.Errorf("%w: boot sector: reserved sectors and FATs (%d sectors) fill the %d-sector volume", ErrCorrupt, meta, g.totalSectors)
	}
	g.dataStart = meta * g.bps
	clusters := (g.totalSectors - meta) / spc
	if clusters < 1 || clusters > fatBad-2 {
		return g, fmt.Errorf("%w: boot sector: %d data clusters, want 1 to %d", ErrCorrupt, clusters, fatBad-2)
	}
	g.clusters = uint32(clusters)
	if entries := g.fatBytes / 4; entries < clusters+2 {
		return g, fmt.Errorf("%w: FAT holds %d entries but the volume has %d clusters (+2): the FAT is too small"+
			" (go-diskfs v1.9.4 writes such FATs at 64, 129, 259 MiB and 4 GiB, issue #418)", ErrCorrupt, entries, clusters)
	}
	g.rootCluster = uint32(le32(44))
	if g.rootCluster < 2 || g.rootCluster > g.maxCluster() {
		return g, fmt.Errorf("%w: boot sector: root directory cluster %d outside 2..%d", ErrCorrupt, g.rootCluster, g.maxCluster())
	}
	if s := le16(48); s > 0 && s < g.reserved && s != 0xffff {
		g.fsInfo = s
	}
	if s := le16(50); s > 0 && s < g.reserved && s != 0xffff {
		g.backupBoot = s
	}
	return g, nil
}

package vbootdisk

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// FAT access goes through a small cache of FAT sectors. Changes are
// written back (to every FAT copy) when a sector is evicted and at the end of
// every store operation, so between operations the cache only mirrors the
// disk: a store opened afresh on the same bytes behaves the same.
const fatCacheSectors = 16

type fatSector struct {
	valid bool
	dirty bool
	index int64 // sector number within the FAT
	used  uint64
	data  []byte
}

// fatTable is the FAT with its derived facts: the number of free clusters
// and the lowest free cluster, both exact functions of the disk contents.
type fatTable struct {
	g         *geometry
	io        *diskIO
	cache     [fatCacheSectors]fatSector
	tick      uint64
	free      uint32 // free clusters
	lowFree   uint32 // lowest free cluster, 0 when none
	infoDirty bool   // free/lowFree changed since the FSInfo sector was written
}

func (t *fatTable) sector(idx int64) (*fatSector, error) {
	t.tick++
	victim := 0
	for i := range t.cache {
		s := &t.cache[i]
		if s.valid && s.index == idx {
			s.used = t.tick
			return s, nil
		}
		if !s.valid {
			victim = i
		} else if t.cache[victim].valid && s.used < t.cache[victim].used {
			victim = i
		}
	}
	s := &t.cache[victim]
	if s.valid && s.dirty {
		if err := t.writeSector(s); err != nil {
			return nil, err
		}
	}
	if s.data == nil {
		s.data = make([]byte, t.g.bps)
	}
	s.valid = false
	if err := t.io.readAt(s.data, t.g.fatStart+idx*t.g.bps); err != nil {
		return nil, fmt.Errorf("read FAT sector %d: %w", idx, err)
	}
	s.valid, s.dirty, s.index, s.used = true, false, idx, t.tick
	return s, nil
}

func (t *fatTable) writeSector(s *fatSector) error {
	for copyN := int64(0); copyN < t.g.nfats; copyN++ {
		off := t.g.fatStart + copyN*t.g.fatBytes + s.index*t.g.bps
		if err := t.io.writeAt(s.data, off); err != nil {
			return fmt.Errorf("write FAT %d sector %d: %w", copyN+1, s.index, err)
		}
	}
	s.dirty = false
	return nil
}

// get returns cluster c's FAT entry (28 bits).
func (t *fatTable) get(c uint32) (uint32, error) {
	pos := int64(c) * 4
	s, err := t.sector(pos / t.g.bps)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(s.data[pos%t.g.bps:]) & fatMask, nil
}

// set changes cluster c's entry, keeping the reserved top 4 bits, and keeps
// the free count and lowest free cluster exact.
func (t *fatTable) set(c, v uint32) error {
	pos := int64(c) * 4
	s, err := t.sector(pos / t.g.bps)
	if err != nil {
		return err
	}
	b := s.data[pos%t.g.bps:]
	old := binary.LittleEndian.Uint32(b)
	binary.LittleEndian.PutUint32(b, old&^fatMask|v&fatMask)
	s.dirty = true
	wasFree, isFree := old&fatMask == 0, v&fatMask == 0
	switch {
	case wasFree && !isFree:
		t.free--
		t.infoDirty = true
		if c == t.lowFree {
			if t.lowFree, err = t.findFree(c + 1); err != nil {
				return err
			}
		}
	case !wasFree && isFree:
		t.free++
		t.infoDirty = true
		if t.lowFree == 0 || c < t.lowFree {
			t.lowFree = c
		}
	}
	return nil
}

// findFree returns the lowest free cluster at or after from, 0 when none.
func (t *fatTable) findFree(from uint32) (uint32, error) {
	for c := from; c >= 2 && c <= t.g.maxCluster(); c++ {
		v, err := t.get(c)
		if err != nil {
			return 0, err
		}
		if v == 0 {
			return c, nil
		}
	}
	return 0, nil
}

// scan counts the free clusters and finds the lowest one, reading the FAT
// in bounded chunks.
func (t *fatTable) scan() error {
	buf := make([]byte, 64<<10)
	t.free, t.lowFree = 0, 0
	first, last := int64(2), int64(t.g.maxCluster())
	for c := first; c <= last; {
		n := (last - c + 1) * 4
		if n > int64(len(buf)) {
			n = int64(len(buf))
		}
		if err := t.io.readAt(buf[:n], t.g.fatStart+c*4); err != nil {
			return fmt.Errorf("read FAT: %w", err)
		}
		for i := int64(0); i < n; i += 4 {
			if binary.LittleEndian.Uint32(buf[i:])&fatMask == 0 {
				t.free++
				if t.lowFree == 0 {
					t.lowFree = uint32(c + i/4)
				}
			}
		}
		c += n / 4
	}
	return nil
}

// flush writes every changed FAT sector (in sector order) and, when the
// counts changed, the FSInfo sector.
func (t *fatTable) flush() error {
	idx := make([]int, 0, fatCacheSectors)
	for i := range t.cache {
		if t.cache[i].valid && t.cache[i].dirty {
			idx = append(idx, i)
		}
	}
	sort.Slice(idx, func(a, b int) bool { return t.cache[idx[a]].index < t.cache[idx[b]].index })
	for _, i := range idx {
		if err := t.writeSector(&t.cache[i]); err != nil {
			return err
		}
	}
	if !t.infoDirty {
		return nil
	}
	t.infoDirty = false
	return t.writeFSInfo()
}

// writeFSInfo records the free count and next-free hint in the FSInfo
// sector and its backup, when they carry the FSInfo signatures.
func (t *fatTable) writeFSInfo() error {
	if t.g.fsInfo == 0 {
		return nil
	}
	next := t.lowFree
	if next == 0 {
		next = 0xffffffff
	}
	var v [8]byte
	binary.LittleEndian.PutUint32(v[0:], t.free)
	binary.LittleEndian.PutUint32(v[4:], next)
	sig := make([]byte, 4)
	sectors := []int64{t.g.fsInfo}
	if t.g.backupBoot != 0 {
		sectors = append(sectors, t.g.backupBoot+t.g.fsInfo)
	}
	for _, s := range sectors {
		if s >= t.g.reserved {
			continue
		}
		if err := t.io.readAt(sig, s*t.g.bps); err != nil {
			return fmt.Errorf("read FSInfo sector %d: %w", s, err)
		}
		if string(sig) != "RRaA" {
			continue
		}
		if err := t.io.writeAt(v[:], s*t.g.bps+488); err != nil {
			return fmt.Errorf("write FSInfo sector %d: %w", s, err)
		}
	}
	return nil
}

// dropCache forgets every cached FAT sector (after a failed operation, so
// nothing half-changed lingers in memory; the disk is the truth).
func (t *fatTable) dropCache() {
	for i := range t.cache {
		t.cache[i].valid, t.cache[i].dirty = false, false
	}
}

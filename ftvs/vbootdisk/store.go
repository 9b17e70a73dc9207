package vbootdisk

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// Errors the store returns besides fsapi's (wrapped, with details).
var (
	ErrCorrupt  = errors.New("vbootdisk: corrupt FAT32 filesystem")
	ErrNoSpace  = errors.New("vbootdisk: no space left on the boot disk")
	ErrTooLarge = errors.New("vbootdisk: file larger than FAT32 allows (4 GiB - 1)")
	ErrDirFull  = errors.New("vbootdisk: directory full")
)

// Store is a FAT32 filesystem on a block device, served as an
// fsapi.WritableFileStore. It is not safe for concurrent use: the machine
// calls it from Step. Between calls it holds nothing the disk does not say.
type Store struct {
	dev  blockdev.Device
	g    geometry
	io   diskIO
	fat  fatTable
	ch   chains
	buf  []byte // one cluster, for directory scans
	zero []byte // zeros for filling gaps, allocated on first use
}

var _ fsapi.WritableFileStore = (*Store)(nil)

// Open reads the FAT32 filesystem on dev: the boot sector is validated, the
// FAT scanned once (free clusters) and the root directory's chain checked.
func Open(dev blockdev.Device) (*Store, error) {
	s := &Store{dev: dev, io: newDiskIO(dev)}
	bs := make([]byte, 512)
	if err := s.io.readAt(bs, 0); err != nil {
		return nil, fmt.Errorf("vbootdisk: read boot sector: %w", err)
	}
	g, err := parseBootSector(bs, dev.Size())
	if err != nil {
		return nil, err
	}
	s.g = g
	s.fat = fatTable{g: &s.g, io: &s.io}
	s.ch = chains{fat: &s.fat}
	s.buf = make([]byte, g.clusterSize)
	if err := s.fat.scan(); err != nil {
		return nil, fmt.Errorf("vbootdisk: %w", err)
	}
	if _, _, err := s.ch.tail(g.rootCluster); err != nil {
		return nil, fmt.Errorf("vbootdisk: root directory: %w", err)
	}
	return s, nil
}

// Reload forgets everything the store derived from the disk and reads it
// again, for when something else wrote the disk under it (a resync before
// a snapshot hand-over). It is the same as opening the disk afresh.
func (s *Store) Reload() error {
	fresh, err := Open(s.dev)
	if err != nil {
		return err
	}
	*s = Store{dev: fresh.dev, g: fresh.g, io: fresh.io, buf: fresh.buf}
	s.fat = fatTable{g: &s.g, io: &s.io, free: fresh.fat.free, lowFree: fresh.fat.lowFree}
	s.ch = chains{fat: &s.fat}
	return nil
}

// Sync makes every completed change durable (the device's Flush).
func (s *Store) Sync() error { return s.dev.Flush() }

// FreeBytes is the space left for file data.
func (s *Store) FreeBytes() int64 { return int64(s.fat.free) * s.g.clusterSize }

// ClusterSize is the allocation unit in bytes.
func (s *Store) ClusterSize() int64 { return s.g.clusterSize }

// done ends every operation: changed FAT sectors go to disk so that memory
// again mirrors the disk.
func (s *Store) done(err *error) {
	if ferr := s.fat.flush(); ferr != nil {
		s.fat.dropCache()
		if *err == nil {
			*err = fmt.Errorf("vbootdisk: %w", ferr)
		}
	}
}

// ---- paths and directories ----

func splitPath(p string) ([]string, error) {
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("%w: %q leaves the root", fsapi.ErrInvalid, p)
		}
		parts = append(parts, c)
	}
	return parts, nil
}

func (s *Store) rootEntry() entry {
	return entry{root: true, attr: attrDir, first: s.g.rootCluster}
}

// scanDir calls fn for each file and directory of the directory starting
// at cluster dir, in slot order, until fn returns true. fn must not do I/O.
func (s *Store) scanDir(dir uint32, fn func(e *entry) bool) error {
	var st lfnState
	per := uint32(s.g.clusterSize / slotSize)
	for ci := uint32(0); ci*per < maxDirSlots; ci++ {
		c, ok, err := s.ch.at(dir, ci)
		if err != nil {
			return dirError(dir, err)
		}
		if !ok {
			return nil
		}
		if err := s.io.readAt(s.buf, s.g.clusterOffset(c)); err != nil {
			return err
		}
		for i := uint32(0); i < per; i++ {
			var e entry
			switch decodeSlot(&st, s.buf[i*slotSize:(i+1)*slotSize], ci*per+i, &e) {
			case slotEnd:
				return nil
			case slotEntry:
				e.dir = dir
				if fn(&e) {
					return nil
				}
			}
		}
	}
	return nil
}

// find looks name up in directory d.
func (s *Store) find(d *entry, name string) (entry, bool, error) {
	var found entry
	ok := false
	err := s.scanDir(d.first, func(e *entry) bool {
		if e.matches(name) {
			found, ok = *e, true
		}
		return ok
	})
	return found, ok, err
}

// asDir checks that e can be read as a directory.
func (s *Store) asDir(e *entry, path string) error {
	if !e.isDir() {
		return fmt.Errorf("%w: %s", fsapi.ErrNotDir, path)
	}
	if !e.root && (e.first < 2 || e.first > s.g.maxCluster()) {
		return fmt.Errorf("%w: directory %s starts at cluster %d", ErrCorrupt, path, e.first)
	}
	return nil
}

// walk resolves parts from the root; it returns the entry and the first
// clusters of the directories passed through (root first).
func (s *Store) walk(path string, parts []string) (entry, []uint32, error) {
	cur := s.rootEntry()
	var dirs []uint32
	for i, name := range parts {
		if err := s.asDir(&cur, path); err != nil {
			return entry{}, nil, err
		}
		dirs = append(dirs, cur.first)
		next, ok, err := s.find(&cur, name)
		if err != nil {
			return entry{}, nil, err
		}
		if !ok {
			return entry{}, nil, fmt.Errorf("%w: %s (no %q in /%s)", fsapi.ErrNotExist, path, name, strings.Join(parts[:i], "/"))
		}
		cur = next
	}
	return cur, dirs, nil
}

func (s *Store) lookup(path string) (entry, error) {
	parts, err := splitPath(path)
	if err != nil {
		return entry{}, err
	}
	e, _, err := s.walk(path, parts)
	return e, err
}

// lookupParent resolves all but the last element, which it returns checked
// as a name, with the directories on the way (the parent last).
func (s *Store) lookupParent(path string) (entry, string, []uint32, error) {
	parts, err := splitPath(path)
	if err != nil {
		return entry{}, "", nil, err
	}
	if len(parts) == 0 {
		return entry{}, "", nil, fmt.Errorf("%w: the root itself cannot be changed", fsapi.ErrInvalid)
	}
	base := parts[len(parts)-1]
	if err := checkName(base); err != nil {
		return entry{}, "", nil, err
	}
	parent, dirs, err := s.walk(path, parts[:len(parts)-1])
	if err != nil {
		return entry{}, "", nil, err
	}
	if err := s.asDir(&parent, path); err != nil {
		return entry{}, "", nil, err
	}
	return parent, base, append(dirs, parent.first), nil
}

// slotPos is the disk offset of a directory slot.
func (s *Store) slotPos(dir, slot uint32) (int64, error) {
	byteOff := int64(slot) * slotSize
	c, ok, err := s.ch.at(dir, uint32(byteOff/s.g.clusterSize))
	if err != nil {
		return 0, dirError(dir, err)
	}
	if !ok {
		return 0, dirError(dir, fmt.Errorf("%w: slot %d beyond the directory's clusters", ErrCorrupt, slot))
	}
	return s.g.clusterOffset(c) + byteOff%s.g.clusterSize, nil
}

// writeSlots writes consecutive 32-byte slots from slot on.
func (s *Store) writeSlots(dir, slot uint32, b []byte) error {
	for len(b) > 0 {
		pos, err := s.slotPos(dir, slot)
		if err != nil {
			return err
		}
		n := int(s.g.clusterSize - (int64(slot)*slotSize)%s.g.clusterSize)
		if n > len(b) {
			n = len(b)
		}
		if err := s.io.writeAt(b[:n], pos); err != nil {
			return err
		}
		b, slot = b[n:], slot+uint32(n/slotSize)
	}
	return nil
}

// saveEntry rewrites e's short entry (size, cluster, times, attributes).
func (s *Store) saveEntry(e *entry) error {
	if e.root {
		return nil
	}
	var b [slotSize]byte
	e.encodeShort(b[:])
	return s.writeSlots(e.dir, e.slot+e.slots-1, b[:])
}

// deleteEntry marks e's slots free.
func (s *Store) deleteEntry(e *entry) error {
	for i := uint32(0); i < e.slots; i++ {
		pos, err := s.slotPos(e.dir, e.slot+i)
		if err != nil {
			return err
		}
		if err := s.io.writeAt([]byte{0xe5}, pos); err != nil {
			return err
		}
	}
	return nil
}

// findSlots finds k consecutive free slots in directory dir, growing it by
// zeroed clusters when needed. It returns the first slot and whether the
// run lies past the directory's end marker.
func (s *Store) findSlots(dir uint32, k uint32) (uint32, bool, error) {
	per := uint32(s.g.clusterSize / slotSize)
	runStart, runLen, ended := uint32(0), uint32(0), false
	ci := uint32(0)
	for ; ci*per < maxDirSlots; ci++ {
		c, ok, err := s.ch.at(dir, ci)
		if err != nil {
			return 0, false, dirError(dir, err)
		}
		if !ok {
			break
		}
		if !ended {
			if err := s.io.readAt(s.buf, s.g.clusterOffset(c)); err != nil {
				return 0, false, err
			}
		}
		for i := uint32(0); i < per; i++ {
			b0 := s.buf[i*slotSize]
			ended = ended || b0 == 0
			if ended || b0 == 0xe5 {
				if runLen == 0 {
					runStart = ci*per + i
				}
				runLen++
				if runLen == k {
					return runStart, ended, nil
				}
			} else {
				runLen = 0
			}
		}
	}
	have := ci * per
	if runLen == 0 {
		runStart = have
	}
	more := k - runLen
	add := (more + per - 1) / per
	if have+add*per > maxDirSlots {
		return 0, false, fmt.Errorf("%w: directory at cluster %d holds its maximum of %d slots", ErrDirFull, dir, maxDirSlots)
	}
	last, _, err := s.ch.tail(dir)
	if err != nil {
		return 0, false, dirError(dir, err)
	}
	if _, err := s.ch.extend(last, add); err != nil {
		return 0, false, err
	}
	for i := uint32(0); i < add; i++ {
		c, _, err := s.ch.at(dir, ci+i)
		if err != nil {
			return 0, false, dirError(dir, err)
		}
		if err := s.zeroCluster(c); err != nil {
			return 0, false, err
		}
	}
	return runStart, true, nil
}

func (s *Store) zeros() []byte {
	if s.zero == nil {
		s.zero = make([]byte, 64<<10)
	}
	return s.zero
}

func (s *Store) zeroCluster(c uint32) error {
	z := s.zeros()
	for off := int64(0); off < s.g.clusterSize; off += int64(len(z)) {
		n := min(int64(len(z)), s.g.clusterSize-off)
		if err := s.io.writeAt(z[:n], s.g.clusterOffset(c)+off); err != nil {
			return err
		}
	}
	return nil
}

// addEntry gives e the name in directory parent and writes it (with a long
// name when the name is not a plain 8.3 one).
func (s *Store) addEntry(parent *entry, name string, e *entry) error {
	short, ntres, plain := plainShort(name)
	base, ext := shortBasis(name)
	used := map[int]bool{}
	clash := false
	err := s.scanDir(parent.first, func(x *entry) bool {
		if x.short == short {
			clash = true
		}
		if n, ok := tailOf(x.short, base, ext); ok {
			used[n] = true
		}
		return false
	})
	if err != nil {
		return err
	}
	long := !plain || clash
	if long {
		n := 1
		for used[n] {
			n++
		}
		if n > 999999 {
			return fmt.Errorf("%w: no free short name for %q", ErrDirFull, name)
		}
		short, ntres = tailedShort(base, ext, n), 0
	}
	e.short, e.ntres, e.name = short, ntres, name
	lfn := uint32(0)
	if long {
		lfn = uint32((len(utf16Units(name)) + lfnChars - 1) / lfnChars)
	}
	k := lfn + 1
	slot, ended, err := s.findSlots(parent.first, k)
	if err != nil {
		return err
	}
	b := make([]byte, k*slotSize)
	if long {
		encodeLFN(b, name, lfnChecksum(short))
	}
	e.encodeShort(b[lfn*slotSize:])
	if err := s.writeSlots(parent.first, slot, b); err != nil {
		return err
	}
	e.dir, e.slot, e.slots, e.root = parent.first, slot, k, false
	if ended {
		// Keep an end marker after the new entry: slots beyond the old
		// marker were never cleared and must stay hidden.
		if pos, err := s.slotPos(parent.first, slot+k); err == nil {
			if err := s.io.writeAt(make([]byte, slotSize), pos); err != nil {
				return err
			}
		}
	}
	return nil
}

package vbootdisk

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

const (
	slotSize    = 32
	attrRO      = 0x01
	attrVolume  = 0x08
	attrDir     = 0x10
	attrArchive = 0x20
	attrLFN     = 0x0f
	maxDirSlots = 65536 // FAT's limit on a directory's entries
	maxLFNSlots = 20    // 255 UTF-16 units
)

// entry is one file or directory as a directory lists it, with where its
// slots are.
type entry struct {
	name     string
	short    [11]byte
	ntres    byte
	attr     byte
	first    uint32
	size     uint32
	crtTenth byte
	crtTime  uint16
	crtDate  uint16
	accDate  uint16
	wrtTime  uint16
	wrtDate  uint16

	root  bool   // the root directory (no slots)
	dir   uint32 // first cluster of the directory holding it
	slot  uint32 // its first slot (the long name's, if any)
	slots uint32 // slots it uses, the short entry included
}

func (e *entry) isDir() bool { return e.attr&attrDir != 0 }

func (e *entry) modTime() int64 {
	if e.root {
		return 0
	}
	return fromFATTime(e.wrtDate, e.wrtTime)
}

func (e *entry) touch(mtime int64) {
	e.wrtDate, e.wrtTime = toFATTime(mtime)
	e.accDate = e.wrtDate
}

// encodeShort writes the 32-byte short entry.
func (e *entry) encodeShort(b []byte) {
	copy(b[0:11], e.short[:])
	b[11] = e.attr
	b[12] = e.ntres
	b[13] = e.crtTenth
	binary.LittleEndian.PutUint16(b[14:], e.crtTime)
	binary.LittleEndian.PutUint16(b[16:], e.crtDate)
	binary.LittleEndian.PutUint16(b[18:], e.accDate)
	binary.LittleEndian.PutUint16(b[20:], uint16(e.first>>16))
	binary.LittleEndian.PutUint16(b[22:], e.wrtTime)
	binary.LittleEndian.PutUint16(b[24:], e.wrtDate)
	binary.LittleEndian.PutUint16(b[26:], uint16(e.first))
	binary.LittleEndian.PutUint32(b[28:], e.size)
}

// encodeLFN fills n long-name slots for name (in on-disk order: the last
// part first) for a short entry whose checksum is sum.
func encodeLFN(dst []byte, name string, sum byte) int {
	u := utf16.Encode([]rune(name))
	n := (len(u) + lfnChars - 1) / lfnChars
	pos := [lfnChars]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
	for i := 0; i < n; i++ {
		ord := n - i // slot i on disk holds part ord
		b := dst[i*slotSize : (i+1)*slotSize]
		for j := range b {
			b[j] = 0
		}
		b[0] = byte(ord)
		if i == 0 {
			b[0] |= 0x40
		}
		b[11], b[13] = attrLFN, sum
		for k := 0; k < lfnChars; k++ {
			idx := (ord-1)*lfnChars + k
			var v uint16
			switch {
			case idx < len(u):
				v = u[idx]
			case idx == len(u):
				v = 0
			default:
				v = 0xffff
			}
			binary.LittleEndian.PutUint16(b[pos[k]:], v)
		}
	}
	return n
}

// lfnState collects a long name across slots.
type lfnState struct {
	units [maxLFNSlots * lfnChars]uint16
	count int    // slots the name announced; 0 when none pending
	next  int    // part expected next (count-1 .. 0)
	sum   byte   // checksum every part carries
	start uint32 // slot of the first part
}

type slotKind int

const (
	slotEnd   slotKind = iota // 0x00: this and every later slot are free
	slotFree                  // deleted (0xe5)
	slotPart                  // a long-name part
	slotOther                 // volume label, "." or ".."
	slotEntry                 // a file or directory
)

// decodeSlot interprets one 32-byte slot at index slot. For slotEntry it
// fills e (name, fields and slot range).
func decodeSlot(st *lfnState, b []byte, slot uint32, e *entry) slotKind {
	switch b[0] {
	case 0x00:
		st.count = 0
		return slotEnd
	case 0xe5:
		st.count = 0
		return slotFree
	}
	attr := b[11]
	if attr&0x3f == attrLFN {
		ord := int(b[0])
		switch {
		case ord&0x40 != 0:
			n := ord & 0x1f
			if n == 0 || n > maxLFNSlots {
				st.count = 0
				return slotPart
			}
			st.count, st.next, st.sum, st.start = n, n-1, b[13], slot
		case st.count > 0 && st.next > 0 && ord == st.next && b[13] == st.sum:
			st.next--
		default:
			st.count = 0
			return slotPart
		}
		pos := [lfnChars]int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30}
		part := ord&0x1f - 1
		for k := 0; k < lfnChars; k++ {
			st.units[part*lfnChars+k] = binary.LittleEndian.Uint16(b[pos[k]:])
		}
		return slotPart
	}
	var short [11]byte
	copy(short[:], b[:11])
	if attr&attrVolume != 0 || short[0] == '.' {
		st.count = 0
		return slotOther
	}
	*e = entry{
		short:    short,
		attr:     attr,
		ntres:    b[12],
		crtTenth: b[13],
		crtTime:  binary.LittleEndian.Uint16(b[14:]),
		crtDate:  binary.LittleEndian.Uint16(b[16:]),
		accDate:  binary.LittleEndian.Uint16(b[18:]),
		first:    uint32(binary.LittleEndian.Uint16(b[20:]))<<16 | uint32(binary.LittleEndian.Uint16(b[26:])),
		wrtTime:  binary.LittleEndian.Uint16(b[22:]),
		wrtDate:  binary.LittleEndian.Uint16(b[24:]),
		size:     binary.LittleEndian.Uint32(b[28:]),
		slot:     slot,
		slots:    1,
	}
	if st.count > 0 && st.next == 0 && st.sum == lfnChecksum(short) && st.start+uint32(st.count) == slot {
		u := st.units[:st.count*lfnChars]
		for i, v := range u {
			if v == 0 {
				u = u[:i]
				break
			}
		}
		if name := string(utf16.Decode(u)); checkName(name) == nil {
			e.name, e.slot, e.slots = name, st.start, uint32(st.count)+1
		}
	}
	st.count = 0
	if e.name == "" {
		e.name = shortDisplay(short, e.ntres)
		if checkName(e.name) != nil {
			// Blank or impossible short names (control characters, '/')
			// are damage, not files: leave them for fsck.
			return slotOther
		}
	}
	return slotEntry
}

// matches reports whether the entry answers to name (long or short).
func (e *entry) matches(name string) bool {
	return sameName(e.name, name) || sameName(shortDisplay(e.short, 0), name)
}

// dotEntry is "." or ".." of a new directory.
func dotEntry(b []byte, name string, cluster uint32, mtime int64) {
	e := entry{attr: attrDir, first: cluster}
	for i := range e.short {
		e.short[i] = ' '
	}
	copy(e.short[:], name)
	e.touch(mtime)
	e.crtDate, e.crtTime = e.wrtDate, e.wrtTime
	e.encodeShort(b)
}

// dirError names the directory in a corruption error.
func dirError(dir uint32, err error) error {
	return fmt.Errorf("directory at cluster %d: %w", dir, err)
}

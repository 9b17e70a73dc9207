package vdisk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Format constants (see the package doc for the table).
const (
	Magic         = "FTVSVDSK"
	FormatVersion = 1
	SlotSize      = 4096
	BitmapOffset  = 2 * SlotSize
	DataAlign     = 1 << 20
	// FineGranularity is the in-RAM bitmap's bytes per bit.
	FineGranularity = 4096
	// DefaultGranularity is the on-disk bitmap's bytes per bit.
	DefaultGranularity = 4 << 20
	crcOffset          = SlotSize - 4
	fieldsEnd          = 136
)

// JustCreated is the current generation of a copy that never held data
// (DRBD's UUID_JUST_CREATED); no random generation ever equals it.
const JustCreated uint64 = 4

// State is a copy's disk state.
type State uint8

const (
	UpToDate     State = 1
	Outdated     State = 2
	Inconsistent State = 3
	Diskless     State = 4
)

func (s State) String() string {
	switch s {
	case UpToDate:
		return "UpToDate"
	case Outdated:
		return "Outdated"
	case Inconsistent:
		return "Inconsistent"
	case Diskless:
		return "Diskless"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, error) {
	for st := UpToDate; st <= Diskless; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown disk state %q", s)
}

// Flags in the metadata.
const (
	FlagCrashedPrimary uint16 = 1 << 0
	FlagDiscardMyData  uint16 = 1 << 1
	knownFlags                = FlagCrashedPrimary | FlagDiscardMyData
)

// Gens are the generation identifiers (DRBD's UUIDs).
type Gens struct {
	Current uint64
	Bitmap  uint64
	History [2]uint64
}

// Metadata is the decoded content of a metadata slot.
type Metadata struct {
	Seq          uint64
	UUID         [16]byte
	Node         uint8
	State        State
	Flags        uint16
	SectorSize   uint32
	DeviceSize   int64
	DataOffset   int64
	DataSize     int64
	Gens         Gens
	BitmapOffset int64
	BitmapBytes  int64
	Granularity  int64
	ResyncCursor int64
}

// Crashed reports the crashed-primary flag.
func (m Metadata) Crashed() bool { return m.Flags&FlagCrashedPrimary != 0 }

// Discard reports the discard-my-data (split-brain victim) flag.
func (m Metadata) Discard() bool { return m.Flags&FlagDiscardMyData != 0 }

// Regions is the number of on-disk bitmap bits in use.
func (m Metadata) Regions() int64 { return ceilDiv(m.DataSize, m.Granularity) }

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

func roundUp(a, b int64) int64 { return ceilDiv(a, b) * b }

// Layout computes the metadata of a new copy holding dataSize bytes with
// the given on-disk granularity: where the bitmap and the data go, and the
// device size needed.
func Layout(dataSize int64, sector uint32, granularity int64) (Metadata, error) {
	m := Metadata{SectorSize: sector, DataSize: dataSize, Granularity: granularity, BitmapOffset: BitmapOffset}
	if sector != 512 && sector != 4096 {
		return m, fmt.Errorf("sector size %d, want 512 or 4096", sector)
	}
	if granularity < FineGranularity || granularity&(granularity-1) != 0 || granularity > 1<<30 {
		return m, fmt.Errorf("bitmap granularity %d: want a power of two from 4 KiB to 1 GiB", granularity)
	}
	if dataSize <= 0 || dataSize%FineGranularity != 0 {
		return m, fmt.Errorf("data size %d: want a positive multiple of 4096", dataSize)
	}
	if dataSize > 1<<56 {
		return m, fmt.Errorf("data size %d: too large", dataSize)
	}
	m.BitmapBytes = roundUp(ceilDiv(m.Regions(), 8), SlotSize)
	m.DataOffset = roundUp(m.BitmapOffset+m.BitmapBytes, DataAlign)
	m.DeviceSize = m.DataOffset + m.DataSize
	return m, nil
}

// Encode returns the 4096-byte slot image of m, checksum included.
func (m *Metadata) Encode() []byte {
	b := make([]byte, SlotSize)
	le := binary.LittleEndian
	copy(b[0:8], Magic)
	le.PutUint32(b[8:], FormatVersion)
	le.PutUint32(b[12:], SlotSize)
	le.PutUint64(b[16:], m.Seq)
	copy(b[24:40], m.UUID[:])
	b[40] = m.Node
	b[41] = uint8(m.State)
	le.PutUint16(b[42:], m.Flags)
	le.PutUint32(b[44:], m.SectorSize)
	le.PutUint64(b[48:], uint64(m.DeviceSize))
	le.PutUint64(b[56:], uint64(m.DataOffset))
	le.PutUint64(b[64:], uint64(m.DataSize))
	le.PutUint64(b[72:], m.Gens.Current)
	le.PutUint64(b[80:], m.Gens.Bitmap)
	le.PutUint64(b[88:], m.Gens.History[0])
	le.PutUint64(b[96:], m.Gens.History[1])
	le.PutUint64(b[104:], uint64(m.BitmapOffset))
	le.PutUint64(b[112:], uint64(m.BitmapBytes))
	le.PutUint64(b[120:], uint64(m.Granularity))
	le.PutUint64(b[128:], uint64(m.ResyncCursor))
	le.PutUint32(b[crcOffset:], crc32.Checksum(b[:crcOffset], castagnoli))
	return b
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrNotVdisk means the slot does not start with the magic: not a vdisk (or
// never written), as opposed to a corrupt one.
var ErrNotVdisk = errors.New("no vdisk magic")

// FieldError names the metadata field that is wrong.
type FieldError struct {
	Field  string
	Offset int
	Reason string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("metadata field %s (offset %d): %s", e.Field, e.Offset, e.Reason)
}

func fieldErr(field string, off int, format string, a ...any) error {
	return &FieldError{Field: field, Offset: off, Reason: fmt.Sprintf(format, a...)}
}

// Decode parses and validates one slot image. Every rejection names the
// field. The checksum is checked before anything else is trusted.
func Decode(b []byte) (Metadata, error) {
	var m Metadata
	if len(b) != SlotSize {
		return m, fmt.Errorf("metadata slot is %d bytes, want %d", len(b), SlotSize)
	}
	if string(b[0:8]) != Magic {
		return m, fmt.Errorf("metadata field magic (offset 0): %q: %w", b[0:8], ErrNotVdisk)
	}
	le := binary.LittleEndian
	if got, want := le.Uint32(b[crcOffset:]), crc32.Checksum(b[:crcOffset], castagnoli); got != want {
		return m, fieldErr("crc32c", crcOffset, "stored %#08x, computed %#08x (torn or corrupt slot)", got, want)
	}
	if v := le.Uint32(b[8:]); v != FormatVersion {
		return m, fieldErr("version", 8, "format version %d, this ftvs reads version %d", v, FormatVersion)
	}
	if v := le.Uint32(b[12:]); v != SlotSize {
		return m, fieldErr("slot_size", 12, "%d, want %d", v, SlotSize)
	}
	m.Seq = le.Uint64(b[16:])
	copy(m.UUID[:], b[24:40])
	m.Node = b[40]
	m.State = State(b[41])
	m.Flags = le.Uint16(b[42:])
	m.SectorSize = le.Uint32(b[44:])
	m.DeviceSize = int64(le.Uint64(b[48:]))
	m.DataOffset = int64(le.Uint64(b[56:]))
	m.DataSize = int64(le.Uint64(b[64:]))
	m.Gens.Current = le.Uint64(b[72:])
	m.Gens.Bitmap = le.Uint64(b[80:])
	m.Gens.History[0] = le.Uint64(b[88:])
	m.Gens.History[1] = le.Uint64(b[96:])
	m.BitmapOffset = int64(le.Uint64(b[104:]))
	m.BitmapBytes = int64(le.Uint64(b[112:]))
	m.Granularity = int64(le.Uint64(b[120:]))
	m.ResyncCursor = int64(le.Uint64(b[128:]))
	for i := fieldsEnd; i < crcOffset; i++ {
		if b[i] != 0 {
			return m, fieldErr("reserved", i, "byte is %#02x, want 0", b[i])
		}
	}
	return m, m.Validate()
}

// Validate checks the fields' values and their consistency with each other.
func (m *Metadata) Validate() error {
	if m.UUID == [16]byte{} {
		return fieldErr("uuid", 24, "all zero")
	}
	if m.Node != 1 && m.Node != 2 {
		return fieldErr("node", 40, "%d, want 1 or 2", m.Node)
	}
	if m.State < UpToDate || m.State > Diskless {
		return fieldErr("state", 41, "%d is not a disk state", uint8(m.State))
	}
	if m.Flags&^knownFlags != 0 {
		return fieldErr("flags", 42, "unknown bits %#04x", m.Flags&^knownFlags)
	}
	if m.SectorSize != 512 && m.SectorSize != 4096 {
		return fieldErr("sector_size", 44, "%d, want 512 or 4096", m.SectorSize)
	}
	if m.Gens.Current == 0 {
		return fieldErr("gen_current", 72, "zero")
	}
	if g := m.Granularity; g < FineGranularity || g&(g-1) != 0 || g > 1<<30 {
		return fieldErr("bitmap_granularity", 120, "%d: want a power of two from 4 KiB to 1 GiB", g)
	}
	if m.DataSize <= 0 || m.DataSize%FineGranularity != 0 || m.DataSize > 1<<56 {
		return fieldErr("data_size", 64, "%d: want a positive multiple of 4096 below 2^56", m.DataSize)
	}
	want, _ := Layout(m.DataSize, m.SectorSize, m.Granularity)
	if m.BitmapOffset != want.BitmapOffset {
		return fieldErr("bitmap_offset", 104, "%d, want %d", m.BitmapOffset, want.BitmapOffset)
	}
	if m.BitmapBytes != want.BitmapBytes {
		return fieldErr("bitmap_bytes", 112, "%d, want %d for %d regions", m.BitmapBytes, want.BitmapBytes, m.Regions())
	}
	if m.DataOffset != want.DataOffset {
		return fieldErr("data_offset", 56, "%d, want %d", m.DataOffset, want.DataOffset)
	}
	if m.DeviceSize < m.DataOffset+m.DataSize {
		return fieldErr("device_size", 48, "%d is smaller than data offset %d + data size %d", m.DeviceSize, m.DataOffset, m.DataSize)
	}
	if m.ResyncCursor < 0 || m.ResyncCursor > m.DataSize {
		return fieldErr("resync_cursor", 128, "%d outside data size %d", m.ResyncCursor, m.DataSize)
	}
	return nil
}

// SlotStatus says what Open found in one metadata slot.
type SlotStatus struct {
	Valid bool
	Seq   uint64
	Err   error
}

// PickSlot chooses the newest valid slot of the two images. It fails only
// if neither is valid, naming both problems.
func PickSlot(s0, s1 []byte) (Metadata, int, [2]SlotStatus, error) {
	var st [2]SlotStatus
	var md [2]Metadata
	for i, b := range [][]byte{s0, s1} {
		m, err := Decode(b)
		md[i] = m
		st[i] = SlotStatus{Valid: err == nil, Seq: m.Seq, Err: err}
	}
	switch {
	case st[0].Valid && st[1].Valid:
		if md[0].UUID != md[1].UUID || md[0].Node != md[1].Node || md[0].DataSize != md[1].DataSize {
			return Metadata{}, -1, st, fmt.Errorf("metadata slots disagree on identity: slot 0 is uuid %x node %d size %d, slot 1 is uuid %x node %d size %d",
				md[0].UUID, md[0].Node, md[0].DataSize, md[1].UUID, md[1].Node, md[1].DataSize)
		}
		if md[1].Seq > md[0].Seq {
			return md[1], 1, st, nil
		}
		return md[0], 0, st, nil
	case st[0].Valid:
		return md[0], 0, st, nil
	case st[1].Valid:
		return md[1], 1, st, nil
	}
	if errors.Is(st[0].Err, ErrNotVdisk) && errors.Is(st[1].Err, ErrNotVdisk) {
		return Metadata{}, -1, st, ErrNotVdisk
	}
	return Metadata{}, -1, st, fmt.Errorf("no valid metadata slot: slot 0: %v; slot 1: %v", st[0].Err, st[1].Err)
}

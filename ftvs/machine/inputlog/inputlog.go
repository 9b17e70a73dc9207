// Package inputlog reads and writes recorded machine sessions: the machine's
// configuration, a description of the file store it served, and every Input
// in order. Replaying a log into fresh machines must give identical outputs
// and state hashes (the determinism tests do this with testdata/machine/*.log).
//
// Format (all integers little-endian):
//
//	magic   "FTVS-INPUTLOG\n" (14 bytes), u16 version (3; 1 and 2 are read too)
//	records, each a u8 type then:
//	  'C' config:   u32 len, machine.EncodeConfig bytes (exactly one, first)
//	  'D' dir:      u32 len, path; i64 modTime
//	  'F' file:     u32 len, path; i64 modTime; u32 len, content
//	  'S' synthetic:u32 len, path; i64 modTime; i64 size; u64 seed (content memfs.Fill)
//	  'K' disk:     i64 size; u32 sector size (a zero-filled disk: the next
//	                NBD export, in order; version 2)
//	  'B' boot disk:i64 size; u32 sector size; extents, each i64 offset,
//	                u32 len, bytes; ended by offset -1 (the VS boot disk's
//	                image at the start: its non-zero sectors; the files
//	                are then served from it through ftvs/vbootdisk instead
//	                of file records; version 3)
//	  'I' input:    u64 seq; i64 now; u8 kind; u32 len, payload
//
// File and disk records come before the first input.
package inputlog

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
)

const (
	magic   = "FTVS-INPUTLOG\n"
	version = 3
	// maxDisk bounds a disk's size on reading (replays hold it in memory).
	maxDisk = 1 << 30
	// Bounds applied when reading, so a corrupt log cannot exhaust memory.
	maxPath    = 4096
	maxFile    = 64 << 20
	maxPayload = 1 << 20
	maxConfig  = 1 << 16
)

// Writer appends a session to w.
type Writer struct {
	w      *bufio.Writer
	err    error
	inputs int
}

// NewWriter writes the header and the configuration.
func NewWriter(w io.Writer, cfg machine.Config) *Writer {
	lw := &Writer{w: bufio.NewWriterSize(w, 1<<16)}
	lw.bytes([]byte(magic))
	lw.u16(version)
	lw.u8('C')
	lw.blob(machine.EncodeConfig(cfg))
	return lw
}

func (l *Writer) bytes(b []byte) {
	if l.err == nil {
		_, l.err = l.w.Write(b)
	}
}
func (l *Writer) u8(v uint8)   { l.bytes([]byte{v}) }
func (l *Writer) u16(v uint16) { l.bytes(binary.LittleEndian.AppendUint16(nil, v)) }
func (l *Writer) u64(v uint64) { l.bytes(binary.LittleEndian.AppendUint64(nil, v)) }
func (l *Writer) blob(b []byte) {
	l.bytes(binary.LittleEndian.AppendUint32(nil, uint32(len(b))))
	l.bytes(b)
}

func (l *Writer) fileRecord(kind byte) {
	if l.inputs > 0 && l.err == nil {
		l.err = errors.New("inputlog: file records must come before the first input")
	}
	l.u8(kind)
}

// Dir records a directory of the file store.
func (l *Writer) Dir(path string, modTime int64) {
	l.fileRecord('D')
	l.blob([]byte(path))
	l.u64(uint64(modTime))
}

// File records a file and its content.
func (l *Writer) File(path string, modTime int64, content []byte) {
	l.fileRecord('F')
	l.blob([]byte(path))
	l.u64(uint64(modTime))
	l.blob(content)
}

// Synthetic records a memfs synthetic file.
func (l *Writer) Synthetic(path string, modTime, size int64, seed uint64) {
	l.fileRecord('S')
	l.blob([]byte(path))
	l.u64(uint64(modTime))
	l.u64(uint64(size))
	l.u64(seed)
}

// Disk records a zero-filled disk backing the next NBD export.
func (l *Writer) Disk(size int64, sector int) {
	l.fileRecord('K')
	l.u64(uint64(size))
	l.bytes(binary.LittleEndian.AppendUint32(nil, uint32(sector)))
}

// maxExtent bounds one boot disk extent.
const maxExtent = 1 << 20

// BootDisk records the boot disk dev at the start of the session: its size,
// sector size and every non-zero sector (a fresh FAT32 is mostly zeros).
func (l *Writer) BootDisk(dev blockdev.Device) {
	l.fileRecord('B')
	l.u64(uint64(dev.Size()))
	l.bytes(binary.LittleEndian.AppendUint32(nil, uint32(dev.SectorSize())))
	sec := int64(dev.SectorSize())
	buf := make([]byte, maxExtent)
	for off := int64(0); off < dev.Size() && l.err == nil; off += maxExtent {
		b := buf[:min(maxExtent, dev.Size()-off)]
		if _, err := dev.ReadAt(b, off); err != nil {
			l.err = fmt.Errorf("inputlog: read the boot disk at %d: %w", off, err)
			return
		}
		// Runs of non-zero sectors within this chunk, one extent each.
		for i := int64(0); i < int64(len(b)); {
			if isZero(b[i : i+sec]) {
				i += sec
				continue
			}
			j := i + sec
			for j < int64(len(b)) && !isZero(b[j:j+sec]) {
				j += sec
			}
			l.u64(uint64(off + i))
			l.blob(b[i:j])
			i = j
		}
	}
	l.u64(^uint64(0))
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// Input records one input.
func (l *Writer) Input(in machine.Input) {
	l.inputs++
	l.u8('I')
	l.u64(in.Seq)
	l.u64(uint64(in.Now))
	l.u8(uint8(in.Kind))
	l.blob(in.Payload)
}

// Close flushes; it reports the first error met.
func (l *Writer) Close() error {
	if l.err == nil {
		l.err = l.w.Flush()
	}
	return l.err
}

// Log is a session read back.
type Log struct {
	Config machine.Config
	Files  *memfs.FS
	Disks  []DiskSpec
	// BootDisk, when the session served a VS boot disk, is its image at
	// the start; Files is then empty.
	BootDisk *BootDiskImage
	Inputs   []machine.Input
}

// BootDiskImage is a boot disk: zeros but for the extents.
type BootDiskImage struct {
	Size    int64
	Sector  int
	Extents []Extent
}

// Extent is bytes at an offset.
type Extent struct {
	Off  int64
	Data []byte
}

// DiskSpec is a zero-filled disk at the start of the session.
type DiskSpec struct {
	Size   int64
	Sector int
}

// Env builds what one replica replays with: its own writable copy of the
// files and its own fresh disks, so replicas that upload or write do not
// share state.
func (lg *Log) Env() (machine.Env, error) {
	env := machine.Env{Files: memfs.Writable{FS: lg.Files.Clone()}}
	if b := lg.BootDisk; b != nil {
		m, err := blockdev.NewMem(b.Size, b.Sector)
		if err != nil {
			return env, fmt.Errorf("input log: boot disk: %w", err)
		}
		for _, e := range b.Extents {
			copy(m.Bytes()[e.Off:], e.Data)
		}
		st, err := vbootdisk.Open(m)
		if err != nil {
			return env, fmt.Errorf("input log: boot disk: %w", err)
		}
		env.Files = st
	}
	for i, d := range lg.Disks {
		m, err := blockdev.NewMem(d.Size, d.Sector)
		if err != nil {
			return env, fmt.Errorf("input log: disk %d: %w", i, err)
		}
		env.Disks = append(env.Disks, m)
	}
	return env, nil
}

// Read reads a whole log. name is used in error messages.
func Read(r io.Reader, name string) (*Log, error) {
	br := bufio.NewReader(r)
	off := int64(0)
	fail := func(what string, err error) (*Log, error) {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("input log %s: at byte %d: %s: %w", name, off, what, err)
	}
	read := func(n int) ([]byte, error) {
		b := make([]byte, n)
		_, err := io.ReadFull(br, b)
		off += int64(n)
		return b, err
	}
	u64 := func() (uint64, error) {
		b, err := read(8)
		if err != nil {
			return 0, err
		}
		return binary.LittleEndian.Uint64(b), nil
	}
	blob := func(max int) ([]byte, error) {
		b, err := read(4)
		if err != nil {
			return nil, err
		}
		n := binary.LittleEndian.Uint32(b)
		if int64(n) > int64(max) {
			return nil, fmt.Errorf("length %d exceeds %d", n, max)
		}
		return read(int(n))
	}
	head, err := read(len(magic) + 2)
	if err != nil || string(head[:len(magic)]) != magic {
		return fail("header", errors.New("not an ftvs input log"))
	}
	v := binary.LittleEndian.Uint16(head[len(magic):])
	if v < 1 || v > version {
		return fail("header", fmt.Errorf("version %d, this build reads 1..%d", v, version))
	}
	lg := &Log{Files: memfs.New()}
	haveConfig, haveFiles := false, false
	for {
		t, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		off++
		if err != nil {
			return fail("record type", err)
		}
		if t != 'C' && !haveConfig {
			return fail("record", errors.New("first record is not the config"))
		}
		if t != 'I' && t != 'C' && len(lg.Inputs) > 0 {
			return fail("record", fmt.Errorf("file record %q after inputs", t))
		}
		switch t {
		case 'C':
			if haveConfig {
				return fail("config", errors.New("second config record"))
			}
			b, err := blob(maxConfig)
			if err != nil {
				return fail("config", err)
			}
			if lg.Config, err = machine.DecodeConfig(b); err != nil {
				return fail("config", err)
			}
			haveConfig = true
		case 'D', 'F', 'S':
			haveFiles = true
			p, err := blob(maxPath)
			if err != nil {
				return fail("file path", err)
			}
			mt, err := u64()
			if err != nil {
				return fail("file time", err)
			}
			switch t {
			case 'D':
				lg.Files.Mkdir(string(p), int64(mt))
			case 'F':
				data, err := blob(maxFile)
				if err != nil {
					return fail("file content", err)
				}
				lg.Files.Add(string(p), data, int64(mt))
			case 'S':
				size, err := u64()
				if err != nil {
					return fail("file size", err)
				}
				seed, err := u64()
				if err != nil {
					return fail("file seed", err)
				}
				if int64(size) < 0 {
					return fail("file size", fmt.Errorf("size %d", int64(size)))
				}
				lg.Files.AddSynthetic(string(p), int64(size), seed, int64(mt))
			}
		case 'K':
			if v < 2 {
				return fail("record", errors.New("disk record in a version 1 log"))
			}
			size, err := u64()
			if err != nil {
				return fail("disk size", err)
			}
			sb, err := read(4)
			if err != nil {
				return fail("disk sector size", err)
			}
			sector := int(binary.LittleEndian.Uint32(sb))
			if size > maxDisk || (sector != 512 && sector != 4096) || int64(size)%int64(sector) != 0 {
				return fail("disk", fmt.Errorf("size %d sector %d: want a multiple of 512 or 4096 up to %d", size, sector, maxDisk))
			}
			lg.Disks = append(lg.Disks, DiskSpec{Size: int64(size), Sector: sector})
		case 'B':
			if v < 3 {
				return fail("record", errors.New("boot disk record in a version 1 or 2 log"))
			}
			if lg.BootDisk != nil {
				return fail("boot disk", errors.New("second boot disk record"))
			}
			size, err := u64()
			if err != nil {
				return fail("boot disk size", err)
			}
			sb, err := read(4)
			if err != nil {
				return fail("boot disk sector size", err)
			}
			sector := int(binary.LittleEndian.Uint32(sb))
			if size > maxDisk || (sector != 512 && sector != 4096) || int64(size)%int64(sector) != 0 {
				return fail("boot disk", fmt.Errorf("size %d sector %d: want a multiple of 512 or 4096 up to %d", size, sector, maxDisk))
			}
			b := &BootDiskImage{Size: int64(size), Sector: sector}
			next := int64(0) // extents in increasing order, not overlapping
			for {
				eo, err := u64()
				if err != nil {
					return fail("boot disk extent offset", err)
				}
				if eo == ^uint64(0) {
					break
				}
				if int64(eo) < next || eo >= size {
					return fail("boot disk extent", fmt.Errorf("offset %d out of order or past the disk's %d bytes", int64(eo), size))
				}
				data, err := blob(maxExtent)
				if err != nil {
					return fail("boot disk extent", err)
				}
				if int64(eo)+int64(len(data)) > int64(size) {
					return fail("boot disk extent", fmt.Errorf("%d bytes at %d run past the disk's %d bytes", len(data), eo, size))
				}
				b.Extents = append(b.Extents, Extent{Off: int64(eo), Data: data})
				next = int64(eo) + int64(len(data))
			}
			lg.BootDisk = b
		case 'I':
			seq, err := u64()
			if err != nil {
				return fail("input seq", err)
			}
			now, err := u64()
			if err != nil {
				return fail("input time", err)
			}
			k, err := br.ReadByte()
			off++
			if err != nil {
				return fail("input kind", err)
			}
			p, err := blob(maxPayload)
			if err != nil {
				return fail("input payload", err)
			}
			lg.Inputs = append(lg.Inputs, machine.Input{Seq: seq, Now: int64(now), Kind: machine.InputKind(k), Payload: p})
		default:
			return fail("record", fmt.Errorf("unknown record type %q", t))
		}
	}
	if !haveConfig {
		return fail("record", errors.New("log holds no config"))
	}
	if lg.BootDisk != nil && haveFiles {
		return fail("record", errors.New("both a boot disk and file records: the files come from one or the other"))
	}
	return lg, nil
}

package lockstep

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ftvs/ftvs/ftvs/machine"
)

// Message types on the link (link.Session message type byte).
const (
	msgBatch     uint8 = 1 // firstSeq u64 | count u32 | count × (now i64 | kind u8 | len u32 | payload)
	msgAck       uint8 = 2 // gen u64 | applied u64 | output hash u64
	msgSnapBegin uint8 = 3 // gen u64 | seq u64 | now i64 | output hash u64 | size u64
	msgSnapChunk uint8 = 4 // gen u64 | offset u64 | bytes
	msgSynced    uint8 = 5 // gen u64 | seq u64: outputs from seq on wait for this peer's acks
	msgJoin      uint8 = 6 // empty: send me a snapshot
	msgHello     uint8 = 7 // role u8 | applied u64
	msgDrop      uint8 = 8 // gen u64: you were dropped (too far behind); ask to join again
	msgSnapEnd   uint8 = 9 // gen u64 | CRC-64 of the snapshot bytes
	// msgHandOver: the primary stopped at seq (every output of it and
	// before released, the peer's ack in) and gives the peer its role.
	msgHandOver uint8 = 10 // gen u64 | seq u64 | output hash u64
	// msgTookOver: the secondary's answer, sent before it stamps anything.
	msgTookOver uint8 = 11 // seq u64 | 1 took over, 0 refused (u64)
)

const (
	entryHeader = 8 + 1 + 4
	batchHeader = 8 + 4
	// maxSnapshot bounds what a secondary buffers for one snapshot.
	maxSnapshot = 1 << 30
)

var errShort = errors.New("truncated")

func appendEntry(b []byte, in *machine.Input) []byte {
	b = binary.LittleEndian.AppendUint64(b, uint64(in.Now))
	b = append(b, byte(in.Kind))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(in.Payload)))
	return append(b, in.Payload...)
}

// decodeBatch parses a batch message. Payloads alias b.
func decodeBatch(b []byte) ([]machine.Input, error) {
	if len(b) < batchHeader {
		return nil, fmt.Errorf("batch: %d bytes, header needs %d", len(b), batchHeader)
	}
	first := binary.LittleEndian.Uint64(b)
	n := binary.LittleEndian.Uint32(b[8:])
	if first == 0 {
		return nil, errors.New("batch: first sequence 0 is reserved")
	}
	if uint64(n) > uint64(len(b)-batchHeader)/entryHeader {
		return nil, fmt.Errorf("batch: %d entries cannot fit in %d bytes", n, len(b))
	}
	ins := make([]machine.Input, 0, n)
	off := batchHeader
	for i := range n {
		if len(b)-off < entryHeader {
			return nil, fmt.Errorf("batch entry %d (seq %d): header at offset %d: %w", i, first+uint64(i), off, errShort)
		}
		now := int64(binary.LittleEndian.Uint64(b[off:]))
		kind := machine.InputKind(b[off+8])
		l := binary.LittleEndian.Uint32(b[off+9:])
		off += entryHeader
		if uint64(l) > uint64(len(b)-off) {
			return nil, fmt.Errorf("batch entry %d (seq %d): payload length %d beyond the message end (%d left)", i, first+uint64(i), l, len(b)-off)
		}
		if kind < machine.InFrame || kind > machine.InCommand {
			return nil, fmt.Errorf("batch entry %d (seq %d): unknown input kind %d", i, first+uint64(i), kind)
		}
		ins = append(ins, machine.Input{Seq: first + uint64(i), Now: now, Kind: kind, Payload: b[off : off+int(l) : off+int(l)]})
		off += int(l)
	}
	if off != len(b) {
		return nil, fmt.Errorf("batch: %d trailing bytes after %d entries", len(b)-off, n)
	}
	return ins, nil
}

// u64s decodes a message made of exactly n little-endian u64 fields
// followed by rest (rest may be required to be empty).
func u64s(name string, b []byte, n int, restOK bool) ([]uint64, []byte, error) {
	if len(b) < 8*n || (!restOK && len(b) != 8*n) {
		return nil, nil, fmt.Errorf("%s: %d bytes, want %d", name, len(b), 8*n)
	}
	v := make([]uint64, n)
	for i := range v {
		v[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return v, b[8*n:], nil
}

func encU64s(vs ...uint64) []byte {
	b := make([]byte, 0, 8*len(vs))
	for _, v := range vs {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	return b
}

type ackMsg struct{ gen, applied, hash uint64 }

func decodeAck(b []byte) (ackMsg, error) {
	v, _, err := u64s("ack", b, 3, false)
	if err != nil {
		return ackMsg{}, err
	}
	return ackMsg{v[0], v[1], v[2]}, nil
}

type snapBegin struct {
	gen, seq uint64
	now      int64
	hash     uint64
	size     uint64
}

func (s snapBegin) encode() []byte {
	return encU64s(s.gen, s.seq, uint64(s.now), s.hash, s.size)
}

func decodeSnapBegin(b []byte) (snapBegin, error) {
	v, _, err := u64s("snapshot header", b, 5, false)
	if err != nil {
		return snapBegin{}, err
	}
	s := snapBegin{v[0], v[1], int64(v[2]), v[3], v[4]}
	if s.size > maxSnapshot {
		return s, fmt.Errorf("snapshot header: size %d exceeds %d", s.size, maxSnapshot)
	}
	return s, nil
}

type snapChunk struct {
	gen, offset uint64
	data        []byte
}

func decodeSnapChunk(b []byte) (snapChunk, error) {
	v, rest, err := u64s("snapshot chunk", b, 2, true)
	if err != nil {
		return snapChunk{}, err
	}
	return snapChunk{v[0], v[1], rest}, nil
}

type helloMsg struct {
	role    Role
	applied uint64
}

func decodeHello(b []byte) (helloMsg, error) {
	if len(b) != 9 {
		return helloMsg{}, fmt.Errorf("hello: %d bytes, want 9", len(b))
	}
	r := Role(b[0])
	if r < RoleJoining || r > RolePrimary {
		return helloMsg{}, fmt.Errorf("hello: unknown role %d", b[0])
	}
	return helloMsg{r, binary.LittleEndian.Uint64(b[1:])}, nil
}

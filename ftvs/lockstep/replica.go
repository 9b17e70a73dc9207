package lockstep

import (
	"encoding/binary"
	"hash/crc64"

	"github.com/ftvs/ftvs/ftvs/machine"
)

// Replica is the deterministic machine as the lockstep core drives it;
// *machine.Machine implements it.
type Replica interface {
	Step(in machine.Input) []machine.Output
	NextDeadline() int64
	Snapshot() []byte
	Restore([]byte) error
	StateHash() uint64
}

var crcTable = crc64.MakeTable(crc64.ECMA)

// hashOutputs folds one step's outputs into the running output hash. Both
// replicas compute it over the same fields in the same order, so equal
// hashes at sequence N mean equal outputs up to N.
func hashOutputs(h uint64, outs []machine.Output) uint64 {
	var hdr [8 + 1 + 2 + 4]byte
	for i := range outs {
		o := &outs[i]
		binary.LittleEndian.PutUint64(hdr[0:], o.Seq)
		hdr[8] = byte(o.Kind)
		binary.LittleEndian.PutUint16(hdr[9:], o.GSO)
		binary.LittleEndian.PutUint32(hdr[11:], uint32(len(o.Payload)))
		h = crc64.Update(h, crcTable, hdr[:])
		h = crc64.Update(h, crcTable, o.Payload)
	}
	return h
}

// snapshotSum is the checksum a joiner verifies twice: the bytes it
// received, and the snapshot its replica takes right after Restore (which
// must come out byte-identical, or the replicas do not hold the same state).
func snapshotSum(img []byte) uint64 { return crc64.Checksum(img, crcTable) }

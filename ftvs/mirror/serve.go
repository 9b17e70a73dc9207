package mirror

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// maxSumsRegion bounds the checksum region a peer may request.
const maxSumsRegion = 16 << 20

// serve answers one peer request against the local copy.
func (m *Mirror) serve(r Request) Reply {
	m.count(func(s *Stats) { s.ServedRequests++ })
	data, err := m.serveOp(r)
	if err != nil {
		return Reply{Err: err.Error()}
	}
	return Reply{Data: data}
}

func (m *Mirror) serveOp(r Request) ([]byte, error) {
	size := m.Size()
	checkRange := func(n int64) error {
		if r.Off > size || n > size-r.Off || r.Off%int64(m.SectorSize()) != 0 || n%int64(m.SectorSize()) != 0 {
			return fmt.Errorf("%s [%d, %d) is not sector-aligned within data size %d", r.Op, r.Off, r.Off+n, size)
		}
		return nil
	}
	if m.Detached() && r.Op != OpGoSolo {
		return nil, fmt.Errorf("node %d: copy is detached", m.node)
	}
	switch r.Op {
	case OpRead:
		if err := checkRange(int64(r.Count)); err != nil {
			return nil, err
		}
		return m.readAtCount(r.Wait, r.Off, int64(r.Count))
	case OpWrite, OpResyncWrite:
		if err := checkRange(int64(len(r.Data))); err != nil {
			return nil, err
		}
		_, err := m.disk.WriteAt(r.Data, r.Off)
		return nil, err
	case OpFlush, OpResyncFlush:
		return nil, m.disk.Flush()
	case OpSums:
		// vdisk's ReaderSummer allocates a whole region: cap what a peer
		// may ask for (verify and skip-equal resync use 1 MiB).
		if q, err := vdisk.ParseSumsRequest(r.Data); err == nil && q.Region > maxSumsRegion {
			return nil, fmt.Errorf("sums request: region %d bytes, at most %d", q.Region, maxSumsRegion)
		}
		rep := vdisk.ServeSums(context.Background(), vdisk.ReaderSummer{R: m.disk}, size, r.Data)
		return rep, nil
	case OpGetMeta:
		md := m.disk.Metadata()
		return append(md.Encode(), m.disk.OnDiskMarks().Bytes()...), nil
	case OpSetMeta:
		if r.Count == divergedMark {
			m.mu.Lock()
			m.divTarget = m.lockstep // ResyncDiverged's BeginResync
			m.mu.Unlock()
		}
		return nil, m.setMetaFromPeer(r.Data)
	case OpClearMarks:
		return nil, m.disk.ClearAllMarks()
	case OpGoSolo:
		return nil, m.peerDetached(r.Off, int64(r.Count))
	case OpFlushed:
		return nil, m.peerFlushed(r.Count)
	case OpResyncState:
		m.mu.Lock()
		st := m.bulk
		m.mu.Unlock()
		return []byte{byte(st)}, nil
	case OpBulkDone:
		m.mu.Lock()
		if m.bulkResult == nil {
			msg := string(r.Data)
			m.bulkResult = &msg
			close(m.bulkSig)
		}
		m.mu.Unlock()
		return nil, nil
	}
	return nil, fmt.Errorf("op %s not served", r.Op)
}

// readAtCount serves a peer's read: this node's write count, then the
// data, with no machine write in between. A lockstep reader (want > 0)
// rebuilds the data at its own count from its history when this node is
// behind; when this node is ahead, a later write of ours that overlaps the
// range is refused (the reader would see the future).
func (m *Mirror) readAtCount(want uint64, off, n int64) ([]byte, error) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.Lock()
	have := m.writes
	if want > 0 && have > want {
		if have-want >= uint64(len(m.hist)) {
			m.mu.Unlock()
			return nil, fmt.Errorf("read at %d: this node is %d writes ahead, beyond the %d-write history", off, have-want, len(m.hist))
		}
		for _, h := range m.hist {
			if h.count > want && h.count <= have && h.off < off+n && off < h.off+h.n {
				m.mu.Unlock()
				return nil, fmt.Errorf("read [%d, %d) at write %d: overwritten by write %d on this node", off, off+n, want, h.count)
			}
		}
	}
	m.mu.Unlock()
	b := make([]byte, 8+n)
	binary.LittleEndian.PutUint64(b, have)
	if _, err := m.disk.ReadAt(b[8:], off); err != nil {
		return nil, err
	}
	return b, nil
}

// setMetaFromPeer persists the generation, state and flag fields the resync
// source decided (BeginResync, EndResync); identity and layout stay ours.
func (m *Mirror) setMetaFromPeer(slot []byte) error {
	md, err := vdisk.Decode(slot)
	if err != nil {
		return fmt.Errorf("set-meta: %w", err)
	}
	cur := m.disk.Metadata()
	if md.UUID != cur.UUID || md.Node != cur.Node {
		return fmt.Errorf("set-meta for disk %x node %d, this is disk %x node %d", md.UUID, md.Node, cur.UUID, cur.Node)
	}
	if md.State == vdisk.Inconsistent {
		m.disk.SetMarking(false) // the source's marks say what to copy here
		m.mu.Lock()
		if m.bulkResult != nil { // a new resync round: forget the last one's result
			m.bulkResult, m.bulkSig = nil, make(chan struct{})
		}
		m.mu.Unlock()
	}
	err = m.disk.Update(func(x *vdisk.Metadata) {
		x.Gens, x.State, x.Flags, x.ResyncCursor = md.Gens, md.State, md.Flags, md.ResyncCursor
	})
	if err != nil {
		return err
	}
	if md.State == vdisk.UpToDate && cur.State == vdisk.Inconsistent {
		m.mu.Lock()
		m.blocked = ""
		if m.targetDone != nil {
			close(m.targetDone)
			m.targetDone = nil
		}
		m.mu.Unlock()
		m.event(EventResyncDone, "target: took the source's generations, UpToDate")
	}
	return nil
}

// peerDetached: the peer's copy failed; ours is now the only good one.
func (m *Mirror) peerDetached(off, n int64) error {
	if err := m.disk.GoSolo(m.cfg.NewGen()); err != nil {
		return err
	}
	if n > 0 {
		if err := m.disk.MarkRanges([][2]int64{{off, n}}); err != nil {
			return err
		}
	}
	m.event(EventSolo, fmt.Sprintf("peer's copy detached; marking (failed range [%d, %d))", off, off+n))
	return nil
}

package mirror

import (
	"context"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/ftvs/vdisk"
)

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
		if err := m.waitWrites(r.Wait, r.Off, int64(r.Count)); err != nil {
			return nil, err
		}
		b := make([]byte, r.Count)
		if _, err := m.disk.ReadAt(b, r.Off); err != nil {
			return nil, err
		}
		return b, nil
	case OpWrite, OpResyncWrite:
		if err := checkRange(int64(len(r.Data))); err != nil {
			return nil, err
		}
		_, err := m.disk.WriteAt(r.Data, r.Off)
		return nil, err
	case OpFlush, OpResyncFlush:
		return nil, m.disk.Flush()
	case OpSums:
		rep := vdisk.ServeSums(context.Background(), vdisk.ReaderSummer{R: m.disk}, size, r.Data)
		return rep, nil
	case OpGetMeta:
		md := m.disk.Metadata()
		return append(md.Encode(), m.disk.OnDiskMarks().Bytes()...), nil
	case OpSetMeta:
		return nil, m.setMetaFromPeer(r.Data)
	case OpClearMarks:
		return nil, m.disk.ClearAllMarks()
	case OpGoSolo:
		return nil, m.peerDetached(r.Off, int64(r.Count))
	case OpFlushed:
		return nil, m.peerFlushed(r.Count)
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

// waitWrites holds a lockstep read from the peer until this node's machine
// has applied as many writes as the peer's had, and refuses it if a later
// write of ours has since overwritten the range (the peer would read the
// future).
func (m *Mirror) waitWrites(want uint64, off, n int64) error {
	if want == 0 {
		return nil
	}
	expired := false // set under mu by the timer: no lost wake-up
	stop := time.AfterFunc(m.cfg.CallTimeout, func() {
		m.mu.Lock()
		expired = true
		m.cond.Broadcast()
		m.mu.Unlock()
	})
	defer stop.Stop()
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.writes < want {
		if expired {
			return fmt.Errorf("read at %d: this node applied %d writes, the reader %d: timed out", off, m.writes, want)
		}
		m.cond.Wait()
	}
	if m.writes-want >= uint64(len(m.hist)) {
		return fmt.Errorf("read at %d: this node is %d writes ahead, beyond the %d-write history", off, m.writes-want, len(m.hist))
	}
	for _, h := range m.hist {
		if h.count > want && h.count <= m.writes && h.off < off+n && off < h.off+h.n {
			return fmt.Errorf("read [%d, %d) at write %d: overwritten by write %d on this node", off, off+n, want, h.count)
		}
	}
	return nil
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

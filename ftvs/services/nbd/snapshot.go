package nbd

import (
	"fmt"

	"github.com/ftvs/ftvs/ftvs/services/svcutil"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Version 2 added the WRITE_ZEROES in progress.
const snapVersion = 2

// Snapshot encodes the listener, counters and every connection in SockID
// order. READ replies are stored as (offset, length): the data comes from
// the device again after a restore.
func (s *Service) Snapshot() []byte {
	w := snap.NewWriter(256 + 128*len(s.conns))
	w.Section("nbd", snapVersion, func(w *snap.Writer) {
		s.lis.Encode(w)
		svcutil.EncodeCounters(w, s.ctr.fields())
		ids := svcutil.SortedIDs(s.conns)
		w.U32(uint32(len(ids)))
		for _, id := range ids {
			c := s.conns[id]
			w.U32(uint32(c.sock))
			w.U8(c.phase)
			w.Bool(c.noZeroes)
			w.Int(c.export)
			w.Blob(c.in)
			w.U32(uint32(len(c.replies)))
			for _, r := range c.replies {
				w.Blob(r.head)
				w.I64(r.off)
				w.I64(r.left)
			}
			w.Bool(c.closeAfter)
			w.Bool(c.peerEOF)
			w.I64(c.lastActive)
			w.Bool(c.wActive)
			w.U64(c.wCookie)
			w.U16(c.wFlags)
			w.I64(c.wOff)
			w.I64(c.wLeft)
			w.U32(c.wErr)
			w.Bool(c.zActive)
			w.U64(c.zCookie)
			w.U16(c.zFlags)
			w.I64(c.zOff)
			w.I64(c.zLeft)
		}
	})
	return w.Bytes()
}

// Restore replaces the state with a snapshot's; on error nothing changes.
func (s *Service) Restore(b []byte) error {
	r := snap.NewReader(b)
	var (
		lis   svcutil.Listener
		ctr   Counters
		conns = map[sockapi.SockID]*conn{}
	)
	r.Section("nbd", snapVersion, func(r *snap.Reader, version uint16) {
		lis = svcutil.DecodeListener(r)
		svcutil.DecodeCounters(r, ctr.fields())
		n, ok := svcutil.DecodeConnCount(r, s.cfg.MaxConns)
		if !ok {
			return
		}
		for i := 0; i < n && r.Err() == nil; i++ {
			c := &conn{sock: sockapi.SockID(r.U32())}
			c.phase = r.U8()
			c.noZeroes = r.Bool()
			c.export = r.Int()
			c.in = r.Blob(requestLen + writeChunk + 16 + maxOptionLen)
			k := int(r.U32())
			if r.Err() == nil && k > s.cfg.MaxInFlight+len(s.cfg.Exports)+2 {
				r.Fail(fmt.Errorf("connection %d has %d replies queued, more than MaxInFlight", c.sock, k))
				return
			}
			for j := 0; j < k && r.Err() == nil; j++ {
				rp := reply{head: r.Blob(20 + 8*maxOptionLen)}
				rp.off = r.I64()
				rp.left = r.I64()
				if rp.off < 0 || rp.left < 0 || rp.left > MaxPayload {
					r.Fail(fmt.Errorf("connection %d: reply %d has offset %d length %d", c.sock, j, rp.off, rp.left))
					return
				}
				c.replies = append(c.replies, rp)
			}
			c.closeAfter = r.Bool()
			c.peerEOF = r.Bool()
			c.lastActive = r.I64()
			c.wActive = r.Bool()
			c.wCookie = r.U64()
			c.wFlags = r.U16()
			c.wOff = r.I64()
			c.wLeft = r.I64()
			c.wErr = r.U32()
			if version >= 2 {
				c.zActive = r.Bool()
				c.zCookie = r.U64()
				c.zFlags = r.U16()
				c.zOff = r.I64()
				c.zLeft = r.I64()
			}
			if r.Err() != nil {
				return
			}
			if c.zOff < 0 || c.zLeft < 0 || (c.zActive && c.zLeft == 0) ||
				(c.export >= 0 && c.export < len(s.devs) && (c.zOff > s.devs[c.export].Size() || c.zLeft > s.devs[c.export].Size()-c.zOff)) {
				r.Fail(fmt.Errorf("connection %d: zeroing %d+%d out of range", c.sock, c.zOff, c.zLeft))
				return
			}
			if c.phase > phaseTransmit || c.export < 0 || c.export >= len(s.cfg.Exports) ||
				c.wOff < 0 || c.wLeft < 0 || c.wLeft > MaxPayload {
				r.Fail(fmt.Errorf("connection %d: phase %d export %d write %d+%d out of range",
					c.sock, c.phase, c.export, c.wOff, c.wLeft))
				return
			}
			if _, dup := conns[c.sock]; dup {
				r.Fail(fmt.Errorf("connection %d appears twice", c.sock))
				return
			}
			if len(c.in) == 0 {
				c.in = nil
			}
			conns[c.sock] = c
		}
	})
	if r.Err() == nil && r.Remaining() != 0 {
		r.Fail(fmt.Errorf("%d bytes after the nbd section", r.Remaining()))
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("nbd: restore: %w", err)
	}
	s.lis, s.ctr, s.conns = lis, ctr, conns
	return nil
}

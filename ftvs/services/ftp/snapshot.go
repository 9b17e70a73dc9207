package ftp

import (
	"fmt"

	"github.com/ftvs/ftvs/ftvs/services/svcutil"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Version 2 added the PORT/EPRT target and the dialed data sockets,
// version 3 the EPSV ALL flag.
const snapVersion = 3

// maxSnapBlob bounds a buffer on restore (a listing of MaxListing entries).
const maxSnapBlob = 64 << 20

// Snapshot encodes the listeners, counters and every control connection
// with its transfer, in SockID order.
func (s *Service) Snapshot() []byte {
	w := snap.NewWriter(256 + 256*len(s.ctls))
	w.Section("ftp", snapVersion, func(w *snap.Writer) {
		s.lis.Encode(w)
		w.U16(s.nextPasv)
		svcutil.EncodeCounters(w, s.ctr.fields())
		ids := svcutil.SortedIDs(s.ctls)
		w.U32(uint32(len(ids)))
		for _, id := range ids {
			c := s.ctls[id]
			w.U32(uint32(c.sock))
			w.Blob(c.in)
			w.Blob(c.out)
			w.String(c.user)
			w.Bool(c.authed)
			w.Bool(c.canWrite)
			w.Int(c.failures)
			w.String(c.cwd)
			w.Bool(c.binary)
			w.I64(c.rest)
			w.String(c.renameFrom)
			w.U32(uint32(c.pasvL))
			w.U32(uint32(c.data))
			w.U32(uint32(c.dataL))
			w.U8(c.x.kind)
			w.String(c.x.path)
			w.I64(c.x.off)
			w.I64(c.x.left)
			w.Blob(c.x.buf)
			w.Bool(c.closeAfter)
			w.Bool(c.peerEOF)
			w.I64(c.lastActive)
			w.Blob(c.active.IP[:])
			w.U16(c.active.Port)
			w.Bool(c.epsvAll)
		}
		ls := svcutil.SortedIDs(s.owner)
		w.U32(uint32(len(ls)))
		for _, l := range ls {
			w.U32(uint32(l))
			w.U32(uint32(s.owner[l]))
		}
		ds := svcutil.SortedIDs(s.dialed)
		w.U32(uint32(len(ds)))
		for _, d := range ds {
			w.U32(uint32(d))
			w.U32(uint32(s.dialed[d]))
		}
	})
	return w.Bytes()
}

// Restore replaces the state with a snapshot's; on error nothing changes.
func (s *Service) Restore(b []byte) error {
	r := snap.NewReader(b)
	var (
		lis      svcutil.Listener
		nextPasv uint16
		ctr      Counters
		ctls     = map[sockapi.SockID]*ctl{}
		owner    = map[sockapi.SockID]sockapi.SockID{}
		dialed   = map[sockapi.SockID]sockapi.SockID{}
	)
	r.Section("ftp", snapVersion, func(r *snap.Reader, version uint16) {
		lis = svcutil.DecodeListener(r)
		nextPasv = r.U16()
		svcutil.DecodeCounters(r, ctr.fields())
		n, ok := svcutil.DecodeConnCount(r, s.cfg.MaxConns)
		if !ok {
			return
		}
		for i := 0; i < n && r.Err() == nil; i++ {
			c := &ctl{sock: sockapi.SockID(r.U32())}
			c.in = r.Blob(maxLine + 1)
			c.out = r.Blob(maxSnapBlob)
			c.user = r.String(4096)
			c.authed = r.Bool()
			c.canWrite = r.Bool()
			c.failures = r.Int()
			c.cwd = r.String(maxLine)
			c.binary = r.Bool()
			c.rest = r.I64()
			c.renameFrom = r.String(maxLine)
			c.pasvL = sockapi.SockID(r.U32())
			c.data = sockapi.SockID(r.U32())
			c.dataL = sockapi.SockID(r.U32())
			c.x.kind = r.U8()
			c.x.path = r.String(maxLine)
			c.x.off = r.I64()
			c.x.left = r.I64()
			c.x.buf = r.Blob(maxSnapBlob)
			c.closeAfter = r.Bool()
			c.peerEOF = r.Bool()
			c.lastActive = r.I64()
			if version >= 2 {
				ip := r.Blob(4)
				if r.Err() == nil && len(ip) != 4 {
					r.Fail(fmt.Errorf("connection %d: PORT address of %d bytes", c.sock, len(ip)))
					return
				}
				copy(c.active.IP[:], ip)
				c.active.Port = r.U16()
			}
			if version >= 3 {
				c.epsvAll = r.Bool()
			}
			if r.Err() != nil {
				return
			}
			if c.x.kind > xStor || c.x.off < 0 || c.x.left < 0 || c.rest < 0 || c.cwd == "" || c.cwd[0] != '/' {
				r.Fail(fmt.Errorf("connection %d: transfer %d at %d+%d, cwd %q out of range", c.sock, c.x.kind, c.x.off, c.x.left, c.cwd))
				return
			}
			if _, dup := ctls[c.sock]; dup {
				r.Fail(fmt.Errorf("connection %d appears twice", c.sock))
				return
			}
			for _, p := range []*[]byte{&c.in, &c.out, &c.x.buf} {
				if len(*p) == 0 {
					*p = nil
				}
			}
			ctls[c.sock] = c
		}
		k := int(r.U32())
		if r.Err() == nil && k > 2*s.cfg.MaxConns {
			r.Fail(fmt.Errorf("%d passive listeners for at most %d connections", k, s.cfg.MaxConns))
			return
		}
		for i := 0; i < k && r.Err() == nil; i++ {
			l, o := sockapi.SockID(r.U32()), sockapi.SockID(r.U32())
			if r.Err() == nil && ctls[o] == nil {
				r.Fail(fmt.Errorf("passive listener %d belongs to unknown connection %d", l, o))
				return
			}
			owner[l] = o
		}
		if version < 2 {
			return
		}
		k = int(r.U32())
		if r.Err() == nil && k > s.cfg.MaxConns {
			r.Fail(fmt.Errorf("%d dialed data sockets for at most %d connections", k, s.cfg.MaxConns))
			return
		}
		for i := 0; i < k && r.Err() == nil; i++ {
			d, o := sockapi.SockID(r.U32()), sockapi.SockID(r.U32())
			if r.Err() == nil && ctls[o] == nil {
				r.Fail(fmt.Errorf("data socket %d belongs to unknown connection %d", d, o))
				return
			}
			dialed[d] = o
		}
	})
	if r.Err() == nil && r.Remaining() != 0 {
		r.Fail(fmt.Errorf("%d bytes after the ftp section", r.Remaining()))
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("ftp: restore: %w", err)
	}
	s.lis, s.nextPasv, s.ctr, s.ctls, s.owner, s.dialed = lis, nextPasv, ctr, ctls, owner, dialed
	return nil
}

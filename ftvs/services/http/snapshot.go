package http

import (
	"fmt"

	"github.com/ftvs/ftvs/ftvs/services/svcutil"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Version 2 added headSince, version 3 uploads (PUT) and their counters.
const snapVersion = 3

// maxSnapBlob bounds a connection's buffers on restore.
const maxSnapBlob = 64 << 20

// Snapshot encodes the listener, counters and every connection (in SockID
// order, so the bytes never depend on map iteration).
func (s *Service) Snapshot() []byte {
	w := snap.NewWriter(256 + 128*len(s.conns))
	w.Section("http", snapVersion, func(w *snap.Writer) {
		s.lis.Encode(w)
		svcutil.EncodeCounters(w, s.ctr.fields())
		ids := svcutil.SortedIDs(s.conns)
		w.U32(uint32(len(ids)))
		for _, id := range ids {
			c := s.conns[id]
			w.U32(uint32(c.sock))
			w.Blob(c.in)
			w.Blob(c.out)
			w.String(c.filePath)
			w.I64(c.fileOff)
			w.I64(c.fileLeft)
			w.I64(c.skipBody)
			w.Bool(c.closeAfter)
			w.Bool(c.peerEOF)
			w.I64(c.lastActive)
			w.I64(c.headSince)
			w.Bool(c.upload != nil)
			if u := c.upload; u != nil {
				w.String(u.path)
				w.I64(u.off)
				w.I64(u.left)
				w.Bool(u.created)
			}
		}
		w.U64(s.up.Uploads)
		w.U64(s.up.UploadBytes)
		w.U64(s.up.UploadErrors)
	})
	return w.Bytes()
}

// Restore replaces the service's state with a snapshot's; on error the
// service is unchanged.
func (s *Service) Restore(b []byte) error {
	r := snap.NewReader(b)
	var (
		lis   svcutil.Listener
		ctr   Counters
		up    UploadCounters
		conns = map[sockapi.SockID]*conn{}
	)
	r.Section("http", snapVersion, func(r *snap.Reader, version uint16) {
		lis = svcutil.DecodeListener(r)
		svcutil.DecodeCounters(r, ctr.fields())
		n, ok := svcutil.DecodeConnCount(r, s.cfg.MaxConns)
		if !ok {
			return
		}
		for i := 0; i < n && r.Err() == nil; i++ {
			c := &conn{sock: sockapi.SockID(r.U32())}
			c.in = r.Blob(maxSnapBlob)
			c.out = r.Blob(maxSnapBlob)
			c.filePath = r.String(4096)
			c.fileOff = r.I64()
			c.fileLeft = r.I64()
			c.skipBody = r.I64()
			c.closeAfter = r.Bool()
			c.peerEOF = r.Bool()
			c.lastActive = r.I64()
			if version >= 2 {
				c.headSince = r.I64()
			}
			if version >= 3 && r.Bool() {
				c.upload = &upload{path: r.String(4096), off: r.I64(), left: r.I64(), created: r.Bool()}
				if r.Err() == nil && (c.upload.off < 0 || c.upload.left < 0 || c.upload.path == "") {
					r.Fail(fmt.Errorf("connection %d has a bad upload (path %q, offset %d, left %d)", c.sock, c.upload.path, c.upload.off, c.upload.left))
					return
				}
			}
			if r.Err() != nil {
				return
			}
			if c.fileOff < 0 || c.fileLeft < 0 || c.skipBody < 0 {
				r.Fail(fmt.Errorf("connection %d has a negative offset or length", c.sock))
				return
			}
			if _, dup := conns[c.sock]; dup {
				r.Fail(fmt.Errorf("connection %d appears twice", c.sock))
				return
			}
			if len(c.in) == 0 {
				c.in = nil
			}
			if len(c.out) == 0 {
				c.out = nil
			}
			conns[c.sock] = c
		}
		if version >= 3 {
			up = UploadCounters{Uploads: r.U64(), UploadBytes: r.U64(), UploadErrors: r.U64()}
		}
	})
	if r.Err() == nil && r.Remaining() != 0 {
		r.Fail(fmt.Errorf("%d bytes after the http section", r.Remaining()))
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("http: restore: %w", err)
	}
	s.lis, s.ctr, s.up, s.conns = lis, ctr, up, conns
	return nil
}

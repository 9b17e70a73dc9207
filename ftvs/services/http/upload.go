package http

import (
	"errors"
	"strings"

	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// PUT (upload) is served only when Config.UploadPrefix is set and the file
// store is writable: a PUT under the prefix writes the body into the file
// (201 Created for a new file, 204 No Content for a replaced one), a PUT
// elsewhere gets 403, a PUT without Content-Length 411 and one larger than
// MaxUploadBytes 413. The body goes to the store as it arrives, at most
// MaxBuffered bytes at a time, never whole in memory. The parent directory
// must exist (409 otherwise). A replaced file is truncated when its upload
// starts; an upload cut off midway leaves the bytes that arrived (the
// client got no 2xx).

// upload is a PUT whose body is still arriving. Part of the snapshot.
type upload struct {
	path    string // store path being written
	off     int64  // bytes written so far
	left    int64  // body bytes still to come
	created bool   // the file did not exist before (201, else 204)
}

// UploadCounters count PUTs.
type UploadCounters struct {
	Uploads      uint64 // completed PUTs
	UploadBytes  uint64 // body bytes written to the store
	UploadErrors uint64 // store failures mid-upload (answered 500)
}

// UploadCounters reports the PUT counters.
func (s *Service) UploadCounters() UploadCounters { return s.up }

// uploadsOn says whether PUT is served at all.
func (s *Service) uploadsOn() bool {
	_, ok := s.files.(fsapi.WritableFileStore)
	return ok && s.cfg.UploadPrefix != ""
}

// allowHeader names the methods served (RFC 9110 15.5.6: a 405 lists them).
func (s *Service) allowHeader() string {
	if s.uploadsOn() {
		return "Allow: GET, HEAD, PUT\r\n"
	}
	return "Allow: GET, HEAD\r\n"
}

// underUploadPrefix says whether the cleaned request path lies under the
// prefix (a path equal to the prefix's directory itself is not a file).
func (s *Service) underUploadPrefix(p string) bool {
	pre := "/" + strings.Trim(s.cfg.UploadPrefix, "/") + "/"
	if pre == "//" {
		pre = "/"
	}
	return strings.HasPrefix(p, pre) && len(p) > len(pre) && !strings.HasSuffix(p, "/")
}

// startPut answers or starts a PUT. The caller has handled Transfer-Encoding
// and set closeAfter from the request; skipBody is not set for a PUT.
func (s *Service) startPut(c *conn, req *Request, now int64) {
	if !s.uploadsOn() {
		s.skipOrClose(c, req)
		s.errorResponse(c, 405, false, s.allowHeader())
		return
	}
	if !s.underUploadPrefix(req.Path) {
		s.skipOrClose(c, req)
		s.errorResponse(c, 403, false, "")
		return
	}
	if req.ContentLength < 0 {
		c.closeAfter = true
		s.errorResponse(c, 411, false, "")
		return
	}
	if req.ContentLength > s.cfg.MaxUploadBytes {
		c.closeAfter = true
		s.errorResponse(c, 413, false, "")
		return
	}
	w := s.files.(fsapi.WritableFileStore)
	name := strings.Trim(req.Path, "/")
	created := false
	fi, err := w.Stat(name)
	switch {
	case err == nil && fi.Dir:
		s.skipOrClose(c, req)
		s.errorResponse(c, 409, false, "")
		return
	case err == nil:
	case errors.Is(err, fsapi.ErrNotExist):
		created = true
	default:
		s.skipOrClose(c, req)
		s.errorResponse(c, 500, false, "")
		return
	}
	if err := w.Create(name, now/1e9); err != nil {
		s.skipOrClose(c, req)
		switch {
		case errors.Is(err, fsapi.ErrNotExist), errors.Is(err, fsapi.ErrNotDir), errors.Is(err, fsapi.ErrIsDir):
			s.errorResponse(c, 409, false, "") // no such parent directory
		case errors.Is(err, fsapi.ErrInvalid):
			s.errorResponse(c, 400, false, "")
		default:
			s.errorResponse(c, 500, false, "")
		}
		return
	}
	c.upload = &upload{path: name, left: req.ContentLength, created: created}
	if req.Expect100 && req.ContentLength > 0 {
		c.out = append(c.out, "HTTP/1.1 100 Continue\r\n\r\n"...)
	}
	if req.ContentLength == 0 {
		s.finishPut(c)
	}
}

// skipOrClose arranges for a refused request's body: discarded when it is
// on its way, or the connection closed when the client holds it back for a
// 100 Continue that will not come.
func (s *Service) skipOrClose(c *conn, req *Request) {
	switch {
	case req.ContentLength <= 0:
	case req.Expect100:
		c.closeAfter = true
	default:
		c.skipBody = req.ContentLength
	}
}

// putBody writes buffered body bytes of c's upload to the store. It
// reports whether it consumed anything.
func (s *Service) putBody(c *conn, now int64) bool {
	u := c.upload
	k := int64(len(c.in))
	if k > u.left {
		k = u.left
	}
	if k == 0 {
		return false
	}
	// A restored upload meets a store that may not be writable.
	w, ok := s.files.(fsapi.WritableFileStore)
	n, err := 0, fsapi.ErrInvalid
	if ok {
		n, err = w.WriteAt(u.path, c.in[:k], u.off, now/1e9)
	}
	if err != nil || int64(n) != k {
		// The store is full or failed: answer 500 and drop the rest of
		// the body with the connection.
		s.up.UploadErrors++
		c.upload = nil
		c.in = nil
		c.closeAfter = true
		s.errorResponse(c, 500, false, "")
		return true
	}
	c.consume(int(k))
	u.off += k
	u.left -= k
	s.up.UploadBytes += uint64(k)
	if u.left == 0 {
		s.finishPut(c)
	}
	return true
}

// finishPut answers a complete upload, once it is durable (a 2xx tells
// the client its file is safe).
func (s *Service) finishPut(c *conn) {
	u := c.upload
	c.upload = nil
	if err := fsapi.Sync(s.files); err != nil {
		s.up.UploadErrors++
		c.closeAfter = true
		s.errorResponse(c, 500, false, "")
		return
	}
	s.up.Uploads++
	if u.created {
		body := "201 Created\n"
		h := s.head(c, 201, "text/plain; charset=utf-8", int64(len(body)), "Location: "+escapePath("/"+u.path)+"\r\n")
		c.out = append(append(c.out, h...), body...)
		return
	}
	// 204 carries neither content nor Content-Length (RFC 9110 8.6).
	s.ctr.Responses2xx++
	c.out = append(c.out, "HTTP/1.1 204 No Content\r\nServer: ftvs\r\n"...)
	c.out = append(c.out, connHeader(c)...)
}

// pumpUpload moves an upload forward inside pump: body bytes to the store,
// and a client that stopped sending closes the connection. It reports
// progress; gone means the connection was closed.
func (s *Service) pumpUpload(sk sockapi.Sockets, c *conn, now int64) (progress, gone bool) {
	if c.upload == nil {
		return false, false
	}
	if len(c.in) > 0 {
		progress = s.putBody(c, now)
	}
	if c.upload != nil && c.peerEOF && len(c.in) == 0 && len(c.out) == 0 {
		// The rest of the body will never come.
		c.upload = nil
		s.closeConn(sk, c)
		return true, true
	}
	return progress, false
}

package http

import (
	"errors"
	"strconv"
	"strings"

	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/services/svcutil"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Counters count the service's work and every refusal.
type Counters struct {
	Accepted      uint64
	RefusedConns  uint64 // reset on accept: MaxConns reached
	Requests      uint64
	Responses2xx  uint64
	Responses3xx  uint64
	Responses4xx  uint64
	Responses5xx  uint64
	BodyBytes     uint64 // response body bytes handed to the stack
	IdleClosed    uint64 // idle keep-alive connections closed
	StalledAborts uint64 // idle timeout hit mid-response: reset
	FileErrors    uint64 // file store failed or shrank mid-stream: reset
	Resets        uint64 // connections reset or closed under us
}

func (c *Counters) fields() []*uint64 {
	return []*uint64{&c.Accepted, &c.RefusedConns, &c.Requests, &c.Responses2xx, &c.Responses3xx,
		&c.Responses4xx, &c.Responses5xx, &c.BodyBytes, &c.IdleClosed, &c.StalledAborts, &c.FileErrors, &c.Resets}
}

// conn is one client connection. Everything in it is part of the snapshot.
type conn struct {
	sock       sockapi.SockID
	in         []byte // received bytes not yet parsed (pipelined requests)
	out        []byte // response head and in-memory body not yet written
	filePath   string // file being streamed after out, when fileLeft > 0
	fileOff    int64
	fileLeft   int64
	skipBody   int64   // request body bytes still to discard
	closeAfter bool    // close once the current response is written
	peerEOF    bool    // the client shut its sending side
	lastActive int64   // virtual time of the last progress
	headSince  int64   // when the first byte of an unfinished request head came (0: none)
	upload     *upload // a PUT whose body is arriving (upload.go)
}

// deadline is when the connection times out: IdleTimeout after the last
// progress, or RequestTimeout after a request head started arriving.
func (c *conn) deadline(cfg *Config) int64 {
	d := c.lastActive + int64(cfg.IdleTimeout)
	if c.headSince != 0 {
		d = min(d, c.headSince+int64(cfg.RequestTimeout))
	}
	return d
}

func (c *conn) busy() bool { return len(c.out) > 0 || c.fileLeft > 0 || c.upload != nil }

// Service is the HTTP file server. Create it with New.
type Service struct {
	cfg   Config
	files fsapi.FileStore
	lis   svcutil.Listener
	conns map[sockapi.SockID]*conn
	ctr   Counters
	up    UploadCounters

	scratch []byte // read and file buffer; empty between calls, not state
}

// scratchSize is how much is read from the socket or the file store at once.
const scratchSize = 128 << 10

// New makes a service serving files; Start opens its listener.
func New(cfg Config, files fsapi.FileStore) *Service {
	return &Service{cfg: cfg.WithDefaults(), files: files, conns: map[sockapi.SockID]*conn{}}
}

// Name is the snapshot tag.
func (s *Service) Name() string { return "http" }

// Counters reports the service's counters.
func (s *Service) Counters() Counters { return s.ctr }

// Conns is how many connections are open.
func (s *Service) Conns() int { return len(s.conns) }

// Start opens the listener.
func (s *Service) Start(sk sockapi.Sockets) error {
	return s.lis.Open(sk, "http", s.cfg.Port, s.cfg.Backlog)
}

// Owns reports whether l is the service's listener.
func (s *Service) Owns(l sockapi.SockID) bool { return s.lis.Is(l) }

// Handle reacts to one socket event.
func (s *Service) Handle(sk sockapi.Sockets, ev sockapi.Event, now int64) {
	svcutil.Dispatch(ev, func() { s.accept(sk, now) }, func(id sockapi.SockID) {
		if c := s.conns[id]; c != nil {
			s.pump(sk, c, now)
		}
	}, func(id sockapi.SockID) {
		if _, ok := s.conns[id]; ok {
			s.ctr.Resets++
			delete(s.conns, id)
		}
	})
}

func (s *Service) accept(sk sockapi.Sockets, now int64) {
	svcutil.AcceptAll(sk, s.lis.ID, func(id sockapi.SockID) {
		if len(s.conns) >= s.cfg.MaxConns {
			s.ctr.RefusedConns++
			sk.Abort(id)
			return
		}
		s.ctr.Accepted++
		c := &conn{sock: id, lastActive: now}
		s.conns[id] = c
		s.pump(sk, c, now)
	})
}

// NextDeadline is the earliest idle timeout, 0 with no connections.
func (s *Service) NextDeadline() int64 {
	return svcutil.EarliestDeadline(s.conns, func(c *conn) int64 { return c.deadline(&s.cfg) })
}

// Timer closes connections idle for IdleTimeout or slow to send a request
// head (RequestTimeout): gracefully when waiting for a request, with a reset
// when stuck in a response.
func (s *Service) Timer(sk sockapi.Sockets, now int64) {
	due := svcutil.DueIDs(s.conns, func(c *conn) bool { return c.deadline(&s.cfg) <= now })
	for _, id := range due {
		c := s.conns[id]
		delete(s.conns, id)
		if c.busy() {
			s.ctr.StalledAborts++
			sk.Abort(id)
		} else {
			s.ctr.IdleClosed++
			_ = sk.Close(id)
		}
	}
}

func (s *Service) buf() []byte {
	if s.scratch == nil {
		s.scratch = make([]byte, scratchSize)
	}
	return s.scratch
}

// forget drops a connection whose socket is gone.
func (s *Service) forget(c *conn) {
	s.ctr.Resets++
	delete(s.conns, c.sock)
}

// closeConn closes gracefully and forgets the connection.
func (s *Service) closeConn(sk sockapi.Sockets, c *conn) {
	delete(s.conns, c.sock)
	_ = sk.Close(c.sock)
}

// pump moves a connection forward as far as it can: read what fits, answer
// complete requests in order, write what the socket takes.
func (s *Service) pump(sk sockapi.Sockets, c *conn, now int64) {
	for {
		progress := false
		// Read ahead, bounded: beyond MaxBuffered the data stays in the
		// stack and TCP flow control holds the client back.
		if !c.peerEOF && len(c.in) < s.cfg.MaxBuffered {
			p := s.buf()
			if room := s.cfg.MaxBuffered - len(c.in); room < len(p) {
				p = p[:room]
			}
			n, err := sk.Read(c.sock, p)
			if n > 0 {
				c.in = append(c.in, p[:n]...)
				c.lastActive = now
				progress = true
			}
			switch {
			case err == nil, errors.Is(err, sockapi.ErrWouldBlock):
			case errors.Is(err, sockapi.ErrEOF):
				c.peerEOF = true
				progress = true
			default:
				s.forget(c)
				return
			}
		}
		if p, gone := s.pumpUpload(sk, c, now); gone {
			return
		} else if p {
			progress = true
		}
		if c.skipBody > 0 && len(c.in) > 0 {
			k := int64(len(c.in))
			if k > c.skipBody {
				k = c.skipBody
			}
			c.consume(int(k))
			c.skipBody -= k
			progress = true
		}
		if c.peerEOF && c.skipBody > 0 && len(c.in) == 0 && !c.busy() {
			// The body we were skipping will never arrive.
			s.closeConn(sk, c)
			return
		}
		if !c.busy() && c.skipBody == 0 {
			if c.closeAfter {
				s.closeConn(sk, c)
				return
			}
			req, n, perr := ParseRequest(c.in, s.cfg)
			switch {
			case perr != nil:
				s.ctr.Requests++
				c.in = nil
				c.closeAfter = true
				s.errorResponse(c, perr.Status, false, "")
				progress = true
			case n > 0:
				c.consume(n)
				c.headSince = 0
				s.respond(c, &req, now)
				progress = true
			case c.peerEOF:
				// Nothing more will come: an incomplete head is dropped.
				s.closeConn(sk, c)
				return
			case len(c.in) > 0 && c.headSince == 0:
				c.headSince = now
			}
		}
		if c.busy() {
			wrote, ok := s.write(sk, c)
			if !ok {
				return
			}
			if wrote {
				c.lastActive = now
				progress = true
			}
		}
		if !progress {
			return
		}
	}
}

func (c *conn) consume(n int) {
	c.in = append(c.in[:0], c.in[n:]...)
}

// write hands the pending response to the socket: first out, then the file
// from the store, as much as the send space takes. ok is false when the
// connection is gone.
func (s *Service) write(sk sockapi.Sockets, c *conn) (wrote, ok bool) {
	for len(c.out) > 0 {
		n, err := sk.Write(c.sock, c.out)
		if err != nil {
			s.forget(c)
			return wrote, false
		}
		if n == 0 {
			return wrote, true
		}
		c.out = c.out[n:]
		wrote = true
	}
	c.out = nil
	for c.fileLeft > 0 {
		p := s.buf()
		p = svcutil.SendChunk(sk, c.sock, p)
		if int64(len(p)) > c.fileLeft {
			p = p[:c.fileLeft]
		}
		n, err := s.files.ReadAt(c.filePath, p, c.fileOff)
		if n < len(p) {
			// The store failed or the file shrank under a promised
			// Content-Length: the only honest end is a reset.
			_ = err
			s.ctr.FileErrors++
			delete(s.conns, c.sock)
			sk.Abort(c.sock)
			return wrote, false
		}
		w, werr := sk.Write(c.sock, p)
		if werr != nil {
			s.forget(c)
			return wrote, false
		}
		c.fileOff += int64(w)
		c.fileLeft -= int64(w)
		s.ctr.BodyBytes += uint64(w)
		if w > 0 {
			wrote = true
		}
		if w < len(p) {
			return wrote, true
		}
	}
	return wrote, true
}

// respond builds the response to one request into c.
func (s *Service) respond(c *conn, req *Request, now int64) {
	s.ctr.Requests++
	head := req.Method == "HEAD"
	keep := req.KeepAlive
	if req.Chunked {
		c.closeAfter = true
		s.errorResponse(c, 501, head, "")
		return
	}
	if req.Method == "PUT" {
		c.closeAfter = !keep
		s.startPut(c, req, now)
		return
	}
	if req.ContentLength > s.cfg.MaxBodyBytes {
		c.closeAfter = true
		s.errorResponse(c, 413, head, "")
		return
	}
	c.closeAfter = !keep
	if req.ContentLength > 0 {
		if req.Expect100 {
			// The client holds the body back until a 100 Continue that
			// never comes (no method here takes a body): answer, and
			// close rather than mistake a later body for a request.
			c.closeAfter = true
		} else {
			c.skipBody = req.ContentLength
		}
	}
	if req.Method != "GET" && !head {
		s.errorResponse(c, 405, false, s.allowHeader())
		return
	}
	name := strings.Trim(req.Path, "/")
	fi, err := s.files.Stat(name)
	if err != nil {
		if errors.Is(err, fsapi.ErrNotExist) || errors.Is(err, fsapi.ErrInvalid) {
			s.errorResponse(c, 404, head, "")
		} else {
			s.errorResponse(c, 500, head, "")
		}
		return
	}
	dirURL := strings.HasSuffix(req.Path, "/")
	if fi.Dir {
		if !dirURL {
			s.errorResponse(c, 301, head, "Location: "+escapePath(req.Path+"/")+"\r\n")
			return
		}
		// A directory with an index.html is served by it.
		index := strings.TrimPrefix(name+"/index.html", "/")
		if ifi, err := s.files.Stat(index); err == nil && !ifi.Dir {
			s.serveFile(c, req, index, ifi, head)
			return
		}
		entries, err := s.files.ReadDir(name)
		if err != nil {
			s.errorResponse(c, 500, head, "")
			return
		}
		body := listing(req.Path, entries, s.cfg.MaxListing)
		h := s.head(c, 200, "text/html; charset=utf-8", int64(len(body)), "")
		if !head {
			h = append(h, body...)
			s.ctr.BodyBytes += uint64(len(body))
		}
		c.out = h
		return
	}
	if dirURL {
		s.errorResponse(c, 404, head, "")
		return
	}
	s.serveFile(c, req, name, fi, head)
}

// serveFile answers a GET or HEAD of a regular file: 200, 206, 304 or 416.
func (s *Service) serveFile(c *conn, req *Request, name string, fi fsapi.FileInfo, head bool) {
	lastMod := httpDate(fi.ModTime)
	if notModified(req, fi.ModTime) {
		s.ctr.Responses3xx++
		b := append([]byte("HTTP/1.1 304 Not Modified\r\nServer: ftvs\r\nLast-Modified: "), lastMod...)
		b = append(b, "\r\n"...)
		c.out = append(b, connHeader(c)...)
		return
	}
	extra := "Last-Modified: " + lastMod + "\r\nAccept-Ranges: bytes\r\n"
	first, last, res := int64(0), fi.Size-1, rangeIgnore
	if req.Range != "" && (req.IfRange == "" || req.IfRange == lastMod) {
		first, last, res = parseRange(req.Range, fi.Size)
	}
	status := 200
	switch res {
	case rangeUnsatisfiable:
		s.errorResponse(c, 416, head, "Content-Range: bytes */"+strconv.FormatInt(fi.Size, 10)+"\r\n")
		return
	case rangeOK:
		status = 206
		extra += "Content-Range: bytes " + strconv.FormatInt(first, 10) + "-" + strconv.FormatInt(last, 10) +
			"/" + strconv.FormatInt(fi.Size, 10) + "\r\n"
	default:
		first, last = 0, fi.Size-1
	}
	c.out = s.head(c, status, contentType(name), last-first+1, extra)
	if !head {
		c.filePath, c.fileOff, c.fileLeft = name, first, last-first+1
	}
}

// head renders a status line and header fields, and counts the status.
func (s *Service) head(c *conn, status int, ctype string, length int64, extra string) []byte {
	switch {
	case status < 300:
		s.ctr.Responses2xx++
	case status < 400:
		s.ctr.Responses3xx++
	case status < 500:
		s.ctr.Responses4xx++
	default:
		s.ctr.Responses5xx++
	}
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, statusText(status)...)
	b = append(b, "\r\nServer: ftvs\r\nContent-Type: "...)
	b = append(b, ctype...)
	b = append(b, "\r\nContent-Length: "...)
	b = strconv.AppendInt(b, length, 10)
	b = append(b, "\r\n"...)
	b = append(b, extra...)
	return append(b, connHeader(c)...)
}

// connHeader ends a response head with the connection's fate.
func connHeader(c *conn) string {
	if c.closeAfter {
		return "Connection: close\r\n\r\n"
	}
	return "Connection: keep-alive\r\n\r\n"
}

// notModified evaluates If-None-Match and If-Modified-Since (RFC 9110
// 13.2.2). The service makes no entity tags, so only "*" matches.
func notModified(req *Request, modTime int64) bool {
	if req.IfNoneMatch != "" {
		return strings.TrimSpace(req.IfNoneMatch) == "*"
	}
	if req.IfModSince == "" {
		return false
	}
	t, ok := parseHTTPDate(req.IfModSince)
	return ok && modTime <= t
}

// errorResponse answers with a small text body naming the status.
func (s *Service) errorResponse(c *conn, status int, head bool, extra string) {
	body := strconv.Itoa(status) + " " + statusText(status) + "\n"
	h := s.head(c, status, "text/plain; charset=utf-8", int64(len(body)), extra)
	if !head {
		h = append(h, body...)
	}
	c.out = h
}

func statusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 201:
		return "Created"
	case 204:
		return "No Content"
	case 206:
		return "Partial Content"
	case 301:
		return "Moved Permanently"
	case 304:
		return "Not Modified"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 403:
		return "Forbidden"
	case 405:
		return "Method Not Allowed"
	case 409:
		return "Conflict"
	case 411:
		return "Length Required"
	case 413:
		return "Content Too Large"
	case 414:
		return "URI Too Long"
	case 416:
		return "Range Not Satisfiable"
	case 431:
		return "Request Header Fields Too Large"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Status " + strconv.Itoa(code)
}

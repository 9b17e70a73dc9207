package http

import (
	"bytes"
	"path"
	"strings"
)

// Request is one parsed request head.
type Request struct {
	Method string
	Target string // as sent
	// Path is the percent-decoded, cleaned path; it starts with "/" and keeps
	// a trailing slash if the target had one. "*" for "OPTIONS *".
	Path          string
	Major, Minor  int
	Host          string
	KeepAlive     bool   // after the version's default and Connection tokens
	Range         string // raw Range value; "" when absent or sent twice
	IfRange       string
	IfModSince    string // raw If-Modified-Since
	IfNoneMatch   string // raw If-None-Match
	ContentLength int64  // -1 when absent
	Chunked       bool   // Transfer-Encoding was present (the service refuses it)
	Expect100     bool   // Expect: 100-continue: the body waits for a go-ahead
}

// ParseError is a malformed request and the status it earns.
type ParseError struct {
	Status int
	Reason string
}

func (e *ParseError) Error() string { return statusText(e.Status) + ": " + e.Reason }

func perr(status int, reason string) *ParseError { return &ParseError{Status: status, Reason: reason} }

// ParseRequest parses one request head (request line and header fields, per
// RFC 9112 sections 2-5) from the start of b. It returns the request and how
// many bytes of b the head took; n == 0 with a nil error means b does not
// hold a whole head yet. Limits come from cfg (MaxURIBytes, MaxHeaderBytes,
// MaxHeaderFields); cfg must have its defaults filled in.
func ParseRequest(b []byte, cfg Config) (req Request, n int, e *ParseError) {
	// RFC 9112 2.2: ignore empty lines before the request line.
	start := 0
	for start < len(b) && start < 8 && (b[start] == '\r' || b[start] == '\n') {
		start++
	}
	b0 := b
	b = b[start:]
	lineEnd := bytes.IndexByte(b, '\n')
	lineLimit := cfg.MaxURIBytes + 64 // method, spaces, version
	if lineEnd < 0 {
		if len(b) > lineLimit {
			return req, 0, tooLongLine(b)
		}
		if len(b0) > cfg.MaxHeaderBytes {
			return req, 0, perr(431, "request head too large")
		}
		return req, 0, nil
	}
	if lineEnd > lineLimit {
		return req, 0, tooLongLine(b)
	}
	// The head ends at the first empty line.
	end := -1
	for i := lineEnd; i < len(b); {
		j := bytes.IndexByte(b[i+1:], '\n')
		if j < 0 {
			break
		}
		line := b[i+1 : i+1+j]
		if len(line) == 0 || (len(line) == 1 && line[0] == '\r') {
			end = i + 1 + j + 1
			break
		}
		i = i + 1 + j
		if i+1 > cfg.MaxHeaderBytes {
			break
		}
	}
	if end < 0 {
		if len(b) > cfg.MaxHeaderBytes {
			return req, 0, perr(431, "request head too large")
		}
		return req, 0, nil
	}
	if end > cfg.MaxHeaderBytes {
		return req, 0, perr(431, "request head too large")
	}
	req, e = parseHead(b[:end], lineEnd, cfg)
	if e != nil {
		return req, 0, e
	}
	return req, start + end, nil
}

func tooLongLine(b []byte) *ParseError {
	if sp := bytes.IndexByte(b, ' '); sp > 0 && sp < 32 {
		return perr(414, "request target too long")
	}
	return perr(400, "request line too long or malformed")
}

func trimCR(line []byte) ([]byte, bool) {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, bytes.IndexByte(line, '\r') < 0
}

func parseHead(head []byte, lineEnd int, cfg Config) (Request, *ParseError) {
	req := Request{ContentLength: -1}
	line, ok := trimCR(head[:lineEnd])
	if !ok {
		return req, perr(400, "bare CR in request line")
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return req, perr(400, "request line has no method")
	}
	rest := line[sp1+1:]
	sp2 := bytes.LastIndexByte(rest, ' ')
	if sp2 < 0 {
		return req, perr(400, "request line has no HTTP version")
	}
	method, target, version := line[:sp1], rest[:sp2], rest[sp2+1:]
	if !isToken(method) {
		return req, perr(400, "method is not a token")
	}
	if len(target) == 0 {
		return req, perr(400, "empty request target")
	}
	if len(target) > cfg.MaxURIBytes {
		return req, perr(414, "request target too long")
	}
	for _, c := range target {
		if c <= ' ' || c == 0x7f {
			return req, perr(400, "request target holds a space or control byte")
		}
	}
	if len(version) != 8 || string(version[:5]) != "HTTP/" || !isDigit(version[5]) || version[6] != '.' || !isDigit(version[7]) {
		return req, perr(400, "malformed HTTP version")
	}
	req.Method, req.Target = string(method), string(target)
	req.Major, req.Minor = int(version[5]-'0'), int(version[7]-'0')
	if req.Major != 1 {
		return req, perr(505, "only HTTP/1.x is served")
	}
	req.KeepAlive = req.Minor >= 1

	hosts, ranges, fields := 0, 0, 0
	connClose, connKeep := false, false
	for i := lineEnd + 1; i < len(head); {
		j := bytes.IndexByte(head[i:], '\n')
		raw := head[i : i+j]
		i += j + 1
		field, ok := trimCR(raw)
		if !ok {
			return req, perr(400, "bare CR in a header field")
		}
		if len(field) == 0 {
			break
		}
		fields++
		if fields > cfg.MaxHeaderFields {
			return req, perr(431, "too many header fields")
		}
		if field[0] == ' ' || field[0] == '\t' {
			return req, perr(400, "obsolete line folding")
		}
		colon := bytes.IndexByte(field, ':')
		if colon <= 0 || !isToken(field[:colon]) {
			return req, perr(400, "malformed header field name")
		}
		value := bytes.Trim(field[colon+1:], " \t")
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return req, perr(400, "control byte in a header field value")
			}
		}
		switch name := string(field[:colon]); {
		case strings.EqualFold(name, "Host"):
			hosts++
			req.Host = string(value)
		case strings.EqualFold(name, "Connection"):
			for _, tok := range strings.Split(string(value), ",") {
				tok = strings.TrimSpace(tok)
				connClose = connClose || strings.EqualFold(tok, "close")
				connKeep = connKeep || strings.EqualFold(tok, "keep-alive")
			}
		case strings.EqualFold(name, "Content-Length"):
			v, ok := parseDecimal(value)
			if !ok {
				return req, perr(400, "malformed Content-Length")
			}
			if req.ContentLength >= 0 && req.ContentLength != v {
				return req, perr(400, "conflicting Content-Length fields")
			}
			req.ContentLength = v
		case strings.EqualFold(name, "Transfer-Encoding"):
			req.Chunked = true
		case strings.EqualFold(name, "Range"):
			ranges++
			req.Range = string(value)
		case strings.EqualFold(name, "If-Range"):
			req.IfRange = string(value)
		case strings.EqualFold(name, "If-Modified-Since"):
			req.IfModSince = string(value)
		case strings.EqualFold(name, "Expect"):
			req.Expect100 = strings.EqualFold(string(value), "100-continue")
		case strings.EqualFold(name, "If-None-Match"):
			req.IfNoneMatch = string(value)
		}
	}
	if ranges > 1 {
		req.Range = ""
	}
	if hosts > 1 {
		return req, perr(400, "more than one Host field")
	}
	if req.Minor >= 1 && hosts == 0 {
		return req, perr(400, "HTTP/1.1 request without Host")
	}
	if req.Chunked && req.ContentLength >= 0 {
		return req, perr(400, "both Transfer-Encoding and Content-Length")
	}
	if connClose {
		req.KeepAlive = false
	} else if connKeep {
		req.KeepAlive = true
	}
	p, e := targetPath(req.Method, req.Target)
	if e != nil {
		return req, e
	}
	req.Path = p
	return req, nil
}

// targetPath turns a request target (origin or absolute form) into a clean
// rooted path.
func targetPath(method, target string) (string, *ParseError) {
	if target == "*" {
		if method == "OPTIONS" {
			return "*", nil
		}
		return "", perr(400, "asterisk target outside OPTIONS")
	}
	if target[0] != '/' {
		lower := strings.ToLower(target)
		var rest string
		switch {
		case strings.HasPrefix(lower, "http://"):
			rest = target[len("http://"):]
		case strings.HasPrefix(lower, "https://"):
			rest = target[len("https://"):]
		default:
			return "", perr(400, "request target is neither a path nor an absolute URI")
		}
		slash := strings.IndexAny(rest, "/?#")
		if slash < 0 || rest[slash] != '/' {
			target = "/"
			if slash >= 0 {
				target += rest[slash:]
			}
		} else {
			target = rest[slash:]
		}
	}
	if i := strings.IndexAny(target, "?#"); i >= 0 {
		target = target[:i]
	}
	p, ok := percentDecode(target)
	if !ok {
		return "", perr(400, "malformed percent-encoding in the path")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", perr(400, "NUL byte in the path")
	}
	dir := strings.HasSuffix(p, "/")
	p = path.Clean("/" + p)
	if dir && p != "/" {
		p += "/"
	}
	return p, nil
}

func percentDecode(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 {
		return s, true
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		out = append(out, hi<<4|lo)
		i += 2
	}
	return string(out), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// parseDecimal reads a non-negative decimal that fits in int64 (at most 18
// digits, so no overflow check is needed).
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// isToken reports whether b is an RFC 9110 token (tchar+).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

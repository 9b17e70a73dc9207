package ftp

import (
	"errors"
	"path"
	"strconv"
	"strings"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Command is one parsed control line.
type Command struct {
	Verb string // upper case
	Arg  string // everything after the first space, untrimmed but for CRLF
}

var (
	errLineTooLong = errors.New("command line too long")
	errBadCommand  = errors.New("syntax error in command")
)

// ParseCommand reads one line from in: n bytes consumed, 0 while no line
// end has arrived. Telnet IAC sequences (the ABOR "synch") are dropped.
// A line longer than maxLine is an error after which the caller drops
// the connection's buffered input.
func ParseCommand(in []byte) (cmd Command, n int, err error) {
	i := indexLF(in)
	if i < 0 {
		if len(in) > maxLine {
			return cmd, 0, errLineTooLong
		}
		return cmd, 0, nil
	}
	n = i + 1
	if i > maxLine {
		return cmd, n, errLineTooLong
	}
	line := in[:i]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	clean := make([]byte, 0, len(line))
	for j := 0; j < len(line); j++ {
		c := line[j]
		if c == 0xff { // IAC: drop it and the byte it escapes or commands
			if j+1 < len(line) && line[j+1] == 0xff {
				clean = append(clean, 0xff)
			}
			j++
			continue
		}
		if c == 0 {
			return cmd, n, errBadCommand
		}
		clean = append(clean, c)
	}
	s := strings.TrimLeft(string(clean), " ")
	verb, arg, _ := strings.Cut(s, " ")
	if verb == "" || len(verb) > 4 {
		return cmd, n, errBadCommand
	}
	for _, r := range verb {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z') {
			return cmd, n, errBadCommand
		}
	}
	return Command{Verb: strings.ToUpper(verb), Arg: arg}, n, nil
}

func indexLF(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// resolve turns a client path, relative to cwd (absolute, "/..."), into an
// absolute clean path; nothing can climb above "/".
func resolve(cwd, arg string) string {
	if strings.HasPrefix(arg, "/") {
		return path.Clean(arg)
	}
	return path.Clean(path.Join(cwd, arg))
}

// storePath is an absolute FTP path as a FileStore path.
func storePath(abs string) string { return strings.TrimPrefix(abs, "/") }

// quote doubles the quotes of a path in a 257 reply (RFC 959 appendix II).
func quote(p string) string { return `"` + strings.ReplaceAll(p, `"`, `""`) + `"` }

// listArg drops ls-style options ("-la") from a LIST/NLST argument.
func listArg(arg string) string {
	for {
		arg = strings.TrimLeft(arg, " ")
		if !strings.HasPrefix(arg, "-") {
			return arg
		}
		_, rest, _ := strings.Cut(arg, " ")
		arg = rest
	}
}

// parsePORT reads RFC 959's "h1,h2,h3,h4,p1,p2".
func parsePORT(arg string) (sockapi.Addr, bool) {
	var a sockapi.Addr
	parts := strings.Split(strings.TrimSpace(arg), ",")
	if len(parts) != 6 {
		return a, false
	}
	var v [6]byte
	for i, p := range parts {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 8)
		if err != nil {
			return a, false
		}
		v[i] = byte(n)
	}
	copy(a.IP[:], v[:4])
	a.Port = uint16(v[4])<<8 | uint16(v[5])
	return a, true
}

// parseEPRT reads RFC 2428's "<d>1<d>ip<d>port<d>" (IPv4 only: ok is false
// for another protocol or a malformed argument).
func parseEPRT(arg string) (sockapi.Addr, bool) {
	var a sockapi.Addr
	arg = strings.TrimSpace(arg)
	if len(arg) < 2 {
		return a, false
	}
	d := arg[:1]
	if d[0] < 33 || d[0] > 126 {
		return a, false
	}
	parts := strings.Split(arg, d)
	if len(parts) != 5 || parts[0] != "" || parts[4] != "" || parts[1] != "1" {
		return a, false
	}
	ip := strings.Split(parts[2], ".")
	if len(ip) != 4 {
		return a, false
	}
	for i, p := range ip {
		n, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return a, false
		}
		a.IP[i] = byte(n)
	}
	port, err := strconv.ParseUint(parts[3], 10, 16)
	if err != nil || port == 0 {
		return a, false
	}
	a.Port = uint16(port)
	return a, true
}

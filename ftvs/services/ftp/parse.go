package ftp

import (
	"errors"
	"path"
	"strings"
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

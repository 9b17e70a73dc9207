// Package bootcfg finds the installer's unattended config at boot: the
// kernel command line's ftvs.config= names a URL (http, tftp: fetched
// after DHCP), a file on the boot medium (media:/path), a file in the
// initramfs (/path), or nothing, in which case the config embedded with
// `ftvs image --config` is used when present.
package bootcfg

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"strings"
)

// EmbeddedPath is where `ftvs image --config` puts the config inside the
// initramfs; used when the command line has no ftvs.config=.
const EmbeddedPath = "/etc/ftvs/install.conf"

// Param is the kernel command line parameter naming the config.
const Param = "ftvs.config"

// MaxConfigSize bounds a fetched config: it is a small text file, and a
// wrong URL must not fill the installer's RAM.
const MaxConfigSize = 1 << 20

// Kind says where a config comes from.
type Kind int

const (
	None     Kind = iota // no ftvs.config= and nothing embedded
	Embedded             // the file built into the initramfs
	Local                // a path inside the initramfs
	Media                // a path on the boot medium's file system
	Network              // http:// or tftp:// after DHCP
)

func (k Kind) String() string {
	switch k {
	case Embedded:
		return "embedded"
	case Local:
		return "initramfs file"
	case Media:
		return "boot medium"
	case Network:
		return "network"
	}
	return "none"
}

// Source is a parsed ftvs.config= value.
type Source struct {
	Kind Kind
	Path string   // Local, Media, Embedded: absolute slash path
	URL  *url.URL // Network
	Raw  string   // the value as written
}

func (s Source) String() string {
	switch s.Kind {
	case Network:
		return s.URL.String()
	case Media:
		return "media:" + s.Path
	case None:
		return "none"
	}
	return s.Path
}

// SplitCmdline splits a kernel command line into parameters the way the
// kernel does: on white space, with double quotes grouping (and removed).
func SplitCmdline(cmdline string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range cmdline {
		switch {
		case r == '"':
			inQuote = !inQuote
			have = true
		case !inQuote && (r == ' ' || r == '\t' || r == '\n'):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// FromCmdline finds ftvs.config= in a kernel command line (the last one
// wins, as for the kernel's own parameters) and parses it. ok is false
// when the parameter is absent.
func FromCmdline(cmdline string) (src Source, ok bool, err error) {
	val := ""
	for _, p := range SplitCmdline(cmdline) {
		if k, v, found := strings.Cut(p, "="); found && k == Param {
			val, ok = v, true
		}
	}
	if !ok {
		return Source{}, false, nil
	}
	src, err = Parse(val)
	return src, true, err
}

// Parse parses one ftvs.config= value.
func Parse(val string) (Source, error) {
	if val == "" {
		return Source{}, fmt.Errorf("%s= is empty: give a URL (http://, tftp://), media:/path or /path", Param)
	}
	if strings.HasPrefix(val, "media:") {
		p := strings.TrimPrefix(val, "media:")
		if !strings.HasPrefix(p, "/") {
			return Source{}, fmt.Errorf("%s=%s: media path must be absolute (media:/ftvs/install.conf)", Param, val)
		}
		return Source{Kind: Media, Path: path.Clean(p), Raw: val}, nil
	}
	if strings.HasPrefix(val, "/") {
		return Source{Kind: Local, Path: path.Clean(val), Raw: val}, nil
	}
	u, err := url.Parse(val)
	if err != nil {
		return Source{}, fmt.Errorf("%s=%s: %w", Param, val, err)
	}
	switch u.Scheme {
	case "http", "tftp":
		if u.Host == "" {
			return Source{}, fmt.Errorf("%s=%s: URL has no host", Param, val)
		}
		if u.Path == "" || u.Path == "/" {
			return Source{}, fmt.Errorf("%s=%s: URL names no file", Param, val)
		}
		return Source{Kind: Network, URL: u, Raw: val}, nil
	case "file":
		if !strings.HasPrefix(u.Path, "/") {
			return Source{}, fmt.Errorf("%s=%s: file URL needs an absolute path", Param, val)
		}
		return Source{Kind: Local, Path: path.Clean(u.Path), Raw: val}, nil
	case "https":
		return Source{}, fmt.Errorf("%s=%s: https is not supported (the installer carries no CA roots); use http on the management network or tftp", Param, val)
	}
	return Source{}, fmt.Errorf("%s=%s: unknown scheme %q (want http, tftp, media:/path or /path)", Param, val, u.Scheme)
}

// Digest is the hex SHA-256 the boot command prints, so an operator (and
// the boot tests) can tell which config the installer got.
func Digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

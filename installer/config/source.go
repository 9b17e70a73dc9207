package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"path"
	"sort"
	"strings"
)

// CmdlineKey is the kernel command-line parameter naming where the installer
// fetches its config at boot: ftvs.config=<source>.
const CmdlineKey = "ftvs.config"

// Source is where a config is fetched from at boot.
type Source struct {
	Scheme string // "file", "http", "https" or "tftp"
	Path   string // file: path on the boot medium; tftp/http: path on the server
	Host   string // host[:port] for http and tftp
	URL    string // the full value as given
}

// ParseSource reads a ftvs.config= value: "file:/ftvs/install.yaml" (or a
// bare absolute path) for a file on the boot medium, "http://host/path",
// "https://host/path" or "tftp://host[:port]/path".
func ParseSource(s string) (Source, error) {
	if s == "" {
		return Source{}, fmt.Errorf("empty config source")
	}
	if strings.HasPrefix(s, "/") {
		s = "file:" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return Source{}, fmt.Errorf("config source %q: %v", s, err)
	}
	src := Source{Scheme: u.Scheme, URL: s}
	switch u.Scheme {
	case "file":
		p := u.Opaque
		if p == "" {
			p = u.Path
		}
		if !strings.HasPrefix(p, "/") || u.Host != "" {
			return Source{}, fmt.Errorf("config source %q: want file:/absolute/path on the boot medium", s)
		}
		src.Path = path.Clean(p)
	case "http", "https", "tftp":
		if u.Host == "" || u.Path == "" || u.Path == "/" {
			return Source{}, fmt.Errorf("config source %q: want %s://host/path/to/config.yaml", s, u.Scheme)
		}
		if u.User != nil {
			return Source{}, fmt.Errorf("config source %q: credentials in the URL are not supported", s)
		}
		src.Host, src.Path = u.Host, u.Path
	default:
		return Source{}, fmt.Errorf("config source %q: scheme must be file, http, https or tftp", s)
	}
	return src, nil
}

// SourceFromCmdline finds ftvs.config= in a kernel command line
// (/proc/cmdline). ok is false when it is absent.
func SourceFromCmdline(cmdline string) (src Source, ok bool, err error) {
	for _, f := range strings.Fields(cmdline) {
		k, v, found := strings.Cut(f, "=")
		if !found || k != CmdlineKey {
			continue
		}
		src, err = ParseSource(strings.Trim(v, `"`))
		return src, err == nil, err
	}
	return Source{}, false, nil
}

// PairKeyLen is the minimum length of the pair key (HMAC-SHA256).
const PairKeyLen = 32

// ParsePairKey reads a pair key written as hex (64+ digits) or base64 (of
// 32+ bytes).
func ParsePairKey(s string) ([]byte, error) {
	if k, err := hex.DecodeString(s); err == nil {
		if len(k) < PairKeyLen {
			return nil, fmt.Errorf("pair key is %d bytes; want at least %d (%d hex digits)", len(k), PairKeyLen, 2*PairKeyLen)
		}
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil {
		if len(k) < PairKeyLen {
			return nil, fmt.Errorf("pair key is %d bytes; want at least %d", len(k), PairKeyLen)
		}
		return k, nil
	}
	return nil, fmt.Errorf("pair key must be hex or base64")
}

func sortStrings(s []string) { sort.Strings(s) }

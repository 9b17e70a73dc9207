package machine

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	ftpsvc "github.com/ftvs/ftvs/ftvs/services/ftp"
	httpsvc "github.com/ftvs/ftvs/ftvs/services/http"
	nbdsvc "github.com/ftvs/ftvs/ftvs/services/nbd"
	"github.com/ftvs/ftvs/ftvs/snap"
)

// Config is everything that defines a fresh machine. It is part of the
// snapshot: Restore brings back the configuration the snapshot was taken with.
type Config struct {
	MAC       [6]byte
	IP        [4]byte
	PrefixLen int     // 1..32
	Gateway   [4]byte // 0.0.0.0: no gateway (on-link peers only)
	MTU       int     // IP MTU of the port; 0 means 1500
	TSOMax    int     // largest GSO super-segment the shell can cut (0: none)
	ISNKey    [16]byte
	// ChecksumOffload: TCP frames leave with only the pseudo-header sum in
	// their checksum field (CHECKSUM_PARTIAL, csum_start 34, csum_offset 16);
	// the shell must complete it (a TAP with IFF_VNET_HDR does).
	ChecksumOffload bool
	// Stack limits; zero takes the netstack defaults.
	MaxSockets int
	SendBuf    int
	RecvBuf    int
	HTTP       HTTPConfig
	FTP        FTPConfig
	NBD        NBDConfig
	// MaxRounds bounds the poll/dispatch rounds of one Step (0: 16), so a
	// service that keeps producing events cannot stall the machine.
	MaxRounds int
}

// HTTPConfig turns the HTTP service on and bounds it.
type HTTPConfig struct {
	Enabled bool
	httpsvc.Config
}

// FTPConfig turns the FTP service on. It serves the machine's file store,
// and may change it when the store is an fsapi.WritableFileStore.
type FTPConfig struct {
	Enabled bool
	ftpsvc.Config
}

// NBDConfig turns the NBD service on: Exports[i] is served from the i-th
// disk handed to the machine (Env.Disks).
type NBDConfig struct {
	Enabled bool
	nbdsvc.Config
}

// Validate says what is wrong with a configuration, naming the field.
func (c Config) Validate() error {
	if c.MAC[0]&1 != 0 {
		return fmt.Errorf("machine config: MAC %s is a multicast address", FormatMAC(c.MAC))
	}
	if c.MAC == [6]byte{} {
		return errors.New("machine config: MAC is all zero")
	}
	if c.IP == [4]byte{} {
		return errors.New("machine config: IP is 0.0.0.0")
	}
	if c.PrefixLen < 1 || c.PrefixLen > 32 {
		return fmt.Errorf("machine config: prefix length %d is outside 1..32", c.PrefixLen)
	}
	if c.MTU != 0 && (c.MTU < 576 || c.MTU > 9216) {
		return fmt.Errorf("machine config: MTU %d is outside 576..9216", c.MTU)
	}
	if c.TSOMax < 0 || c.TSOMax > 65535 {
		return fmt.Errorf("machine config: TSOMax %d is outside 0..65535", c.TSOMax)
	}
	if c.MaxSockets < 0 || c.SendBuf < 0 || c.RecvBuf < 0 {
		return errors.New("machine config: MaxSockets, SendBuf and RecvBuf must not be negative")
	}
	if c.MaxRounds < 0 || c.MaxRounds > 1024 {
		return fmt.Errorf("machine config: MaxRounds %d is outside 0..1024", c.MaxRounds)
	}
	if c.FTP.Enabled {
		if err := c.FTP.Config.Validate(); err != nil {
			return fmt.Errorf("machine config: %w", err)
		}
	}
	if c.NBD.Enabled {
		if err := c.NBD.Config.Validate(); err != nil {
			return fmt.Errorf("machine config: %w", err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MTU == 0 {
		c.MTU = 1500
	}
	if c.MaxRounds == 0 {
		c.MaxRounds = 16
	}
	if c.HTTP.Enabled {
		c.HTTP.Config = c.HTTP.Config.WithDefaults()
	}
	if c.FTP.Enabled {
		c.FTP.Config = c.FTP.Config.WithDefaults()
	}
	if c.NBD.Enabled {
		c.NBD.Config = c.NBD.Config.WithDefaults()
	}
	return c
}

// Version 2 added HTTP.RequestTimeout, version 3 FTP and NBD, version 4
// HTTP.UploadPrefix and MaxUploadBytes (PUT).
const configVersion = 4

func (c *Config) encode(w *snap.Writer) {
	w.Section("config", configVersion, func(w *snap.Writer) {
		w.Blob(c.MAC[:])
		w.Blob(c.IP[:])
		w.Int(c.PrefixLen)
		w.Blob(c.Gateway[:])
		w.Int(c.MTU)
		w.Int(c.TSOMax)
		w.Blob(c.ISNKey[:])
		w.Int(c.MaxRounds)
		w.Bool(c.ChecksumOffload)
		w.Int(c.MaxSockets)
		w.Int(c.SendBuf)
		w.Int(c.RecvBuf)
		h := &c.HTTP
		w.Bool(h.Enabled)
		w.U16(h.Port)
		w.Int(h.Backlog)
		w.Int(h.MaxConns)
		w.Int(h.MaxURIBytes)
		w.Int(h.MaxHeaderBytes)
		w.Int(h.MaxHeaderFields)
		w.I64(h.MaxBodyBytes)
		w.Int(h.MaxBuffered)
		w.Int(h.MaxListing)
		w.I64(int64(h.IdleTimeout))
		w.I64(int64(h.RequestTimeout))
		f := &c.FTP
		w.Bool(f.Enabled)
		w.U16(f.Port)
		w.Int(f.Backlog)
		w.Int(f.MaxConns)
		w.U16(f.PasvMin)
		w.U16(f.PasvMax)
		w.Bool(f.Anonymous)
		w.Bool(f.AnonymousWrite)
		w.U32(uint32(len(f.Users)))
		for _, u := range f.Users {
			w.String(u.Name)
			w.String(u.PasswordSHA256)
			w.Bool(u.Write)
		}
		w.Int(f.MaxListing)
		w.I64(int64(f.IdleTimeout))
		w.I64(int64(f.DataTimeout))
		n := &c.NBD
		w.Bool(n.Enabled)
		w.U16(n.Port)
		w.Int(n.Backlog)
		w.Int(n.MaxConns)
		w.Int(n.MaxInFlight)
		w.I64(int64(n.HandshakeTimeout))
		w.I64(int64(n.StallTimeout))
		w.U32(uint32(len(n.Exports)))
		for _, e := range n.Exports {
			w.String(e.Name)
			w.String(e.Description)
			w.Bool(e.ReadOnly)
		}
		w.String(h.UploadPrefix)
		w.I64(h.MaxUploadBytes)
	})
}

func decodeConfig(r *snap.Reader) Config {
	var c Config
	r.Section("config", configVersion, func(r *snap.Reader, version uint16) {
		fixed(r, c.MAC[:], "MAC")
		fixed(r, c.IP[:], "IP")
		c.PrefixLen = r.Int()
		fixed(r, c.Gateway[:], "Gateway")
		c.MTU = r.Int()
		c.TSOMax = r.Int()
		fixed(r, c.ISNKey[:], "ISNKey")
		c.MaxRounds = r.Int()
		c.ChecksumOffload = r.Bool()
		c.MaxSockets = r.Int()
		c.SendBuf = r.Int()
		c.RecvBuf = r.Int()
		h := &c.HTTP
		h.Enabled = r.Bool()
		h.Port = r.U16()
		h.Backlog = r.Int()
		h.MaxConns = r.Int()
		h.MaxURIBytes = r.Int()
		h.MaxHeaderBytes = r.Int()
		h.MaxHeaderFields = r.Int()
		h.MaxBodyBytes = r.I64()
		h.MaxBuffered = r.Int()
		h.MaxListing = r.Int()
		h.IdleTimeout = durationNS(r.I64())
		if version >= 2 {
			h.RequestTimeout = durationNS(r.I64())
		}
		if version >= 3 {
			decodeFTPNBD(r, &c)
		}
		if version >= 4 {
			h.UploadPrefix = r.String(4096)
			h.MaxUploadBytes = r.I64()
		}
	})
	return c
}

// maxUsers and maxExports bound the lists on decoding.
const maxUsers, maxExports = 1024, 256

func decodeFTPNBD(r *snap.Reader, c *Config) {
	f := &c.FTP
	f.Enabled = r.Bool()
	f.Port = r.U16()
	f.Backlog = r.Int()
	f.MaxConns = r.Int()
	f.PasvMin = r.U16()
	f.PasvMax = r.U16()
	f.Anonymous = r.Bool()
	f.AnonymousWrite = r.Bool()
	k := int(r.U32())
	if r.Err() == nil && k > maxUsers {
		r.Fail(fmt.Errorf("FTP has %d users, at most %d", k, maxUsers))
		return
	}
	for i := 0; i < k && r.Err() == nil; i++ {
		f.Users = append(f.Users, ftpsvc.User{Name: r.String(64), PasswordSHA256: r.String(64), Write: r.Bool()})
	}
	f.MaxListing = r.Int()
	f.IdleTimeout = durationNS(r.I64())
	f.DataTimeout = durationNS(r.I64())
	n := &c.NBD
	n.Enabled = r.Bool()
	n.Port = r.U16()
	n.Backlog = r.Int()
	n.MaxConns = r.Int()
	n.MaxInFlight = r.Int()
	n.HandshakeTimeout = durationNS(r.I64())
	n.StallTimeout = durationNS(r.I64())
	k = int(r.U32())
	if r.Err() == nil && k > maxExports {
		r.Fail(fmt.Errorf("NBD has %d exports, at most %d", k, maxExports))
		return
	}
	for i := 0; i < k && r.Err() == nil; i++ {
		n.Exports = append(n.Exports, nbdsvc.Export{Name: r.String(4096), Description: r.String(4096), ReadOnly: r.Bool()})
	}
}

func fixed(r *snap.Reader, dst []byte, field string) {
	b := r.Blob(len(dst))
	if r.Err() == nil && len(b) != len(dst) {
		r.Fail(fmt.Errorf("%s has %d bytes, want %d", field, len(b), len(dst)))
	}
	copy(dst, b)
}

// ParseMAC reads "aa:bb:cc:dd:ee:ff" (or with dashes).
func ParseMAC(s string) ([6]byte, error) {
	var mac [6]byte
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == '-' })
	if len(parts) != 6 {
		return mac, fmt.Errorf("MAC %q: want 6 hex bytes separated by ':'", s)
	}
	for i, p := range parts {
		if len(p) != 2 {
			return mac, fmt.Errorf("MAC %q: byte %d (%q) is not 2 hex digits", s, i+1, p)
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return mac, fmt.Errorf("MAC %q: byte %d (%q) is not hex", s, i+1, p)
		}
		mac[i] = byte(v)
	}
	return mac, nil
}

// FormatMAC writes a MAC as "aa:bb:cc:dd:ee:ff".
func FormatMAC(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// ParseIPv4 reads a dotted-quad IPv4 address.
func ParseIPv4(s string) ([4]byte, error) {
	var ip [4]byte
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return ip, fmt.Errorf("IPv4 address %q: want 4 dot-separated numbers", s)
	}
	for i, p := range parts {
		if p == "" || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
			return ip, fmt.Errorf("IPv4 address %q: part %d (%q) is not a decimal byte", s, i+1, p)
		}
		v, err := strconv.ParseUint(p, 10, 8)
		if err != nil {
			return ip, fmt.Errorf("IPv4 address %q: part %d (%q) is not a decimal byte", s, i+1, p)
		}
		ip[i] = byte(v)
	}
	return ip, nil
}

// ParseIPv4Prefix reads "10.0.0.2/24".
func ParseIPv4Prefix(s string) ([4]byte, int, error) {
	addr, bits, ok := strings.Cut(s, "/")
	if !ok {
		return [4]byte{}, 0, fmt.Errorf("address %q: want ADDR/PREFIX, e.g. 10.0.0.2/24", s)
	}
	ip, err := ParseIPv4(addr)
	if err != nil {
		return ip, 0, err
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n < 1 || n > 32 {
		return ip, 0, fmt.Errorf("address %q: prefix length %q is not in 1..32", s, bits)
	}
	return ip, n, nil
}

// FormatIPv4 writes a dotted quad.
func FormatIPv4(ip [4]byte) string {
	return fmt.Sprintf("%d.%d.%d.%d", ip[0], ip[1], ip[2], ip[3])
}

// EncodeConfig is the configuration's versioned encoding (the same bytes
// the snapshot holds), for input logs and the CoServer handshake.
func EncodeConfig(c Config) []byte {
	w := snap.NewWriter(256)
	c.encode(w)
	return w.Bytes()
}

// DecodeConfig reads EncodeConfig's output and validates it.
func DecodeConfig(b []byte) (Config, error) {
	r := snap.NewReader(b)
	c := decodeConfig(r)
	if r.Err() == nil && r.Remaining() != 0 {
		r.Fail(fmt.Errorf("%d bytes after the config", r.Remaining()))
	}
	if err := r.Err(); err != nil {
		return c, fmt.Errorf("machine config: %w", err)
	}
	return c, c.Validate()
}

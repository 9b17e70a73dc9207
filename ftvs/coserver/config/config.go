// Package config reads the CoServer daemon's configuration file
// (`ftvs coserver --config FILE`). Every error names the file, the line and the
// field; nothing starts on a bad config. Defaults are filled in by Load so the
// rest of the daemon never sees a zero timeout.
package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ftvs/ftvs/ftvs/manager"
	"github.com/ftvs/ftvs/internal/yamlconf"
)

// Config is one CoServer's configuration. Both nodes of a pair carry the same
// pair key and VS section; they differ in node number and local addresses.
type Config struct {
	Node        int        `yaml:"node"`          // 1 or 2
	PairKey     string     `yaml:"pair_key"`      // hex, at least 32 bytes; or use pair_key_file
	PairKeyFile string     `yaml:"pair_key_file"` // file holding the hex key
	Links       []Link     `yaml:"links"`         // one or two CoServer links
	Redirected  Redirected `yaml:"redirected"`
	Management  Management `yaml:"management"`
	Witness     string     `yaml:"witness"` // host:port of an `ftvs witness`, optional
	VS          VS         `yaml:"vs"`
	Timeouts    Timeouts   `yaml:"timeouts"`
	StateDir    string     `yaml:"state_dir"` // logs, status socket, disk copies' metadata
	ColdStart   ColdStart  `yaml:"cold_start"`
	// The manager (HTTPS API, web page, metrics) and the alert channels;
	// both optional: no manager.listen, no manager.
	manager.Sections `yaml:",inline"`

	key []byte
}

// Link is one direct CoServer cable.
type Link struct {
	Interface string `yaml:"interface"`
	Local     string `yaml:"local"` // this node's ip:port on the link
	Peer      string `yaml:"peer"`  // the other node's ip:port on the link
}

// Redirected is the NIC that carries the VS's traffic on the production LAN.
type Redirected struct {
	Interface string `yaml:"interface"`
	Port      string `yaml:"port"` // afpacket (default) or tap
}

// Management is where status and control are served, and how the peer is
// reached when every CoServer link is down (split-brain check).
type Management struct {
	Listen string `yaml:"listen"` // ip:port
	Peer   string `yaml:"peer"`   // the peer's management ip:port
}

// VS describes the virtual server both nodes execute.
type VS struct {
	MAC      string   `yaml:"mac"`
	IP       string   `yaml:"ip"` // address/prefix
	Gateway  string   `yaml:"gateway"`
	MTU      int      `yaml:"mtu"`
	Services Services `yaml:"services"`
	// Content is a directory each node serves on its own (labs): not
	// mirrored, so nothing may write it in a pair. The product serves the
	// boot disk instead (a vs.disks entry with boot: true); give one.
	Content string `yaml:"content"`
	Disks   []Disk `yaml:"disks"` // mirrored virtual disks (services.go)
}

// Services turns the VS's services on.
type Services struct {
	HTTP *HTTPService `yaml:"http"` // see services.go
	FTP  *FTPService  `yaml:"ftp"`  // see services.go
	NBD  *Service     `yaml:"nbd"`  // exports the vs.disks that name an export
}

// Service is one listening service.
type Service struct {
	Port int `yaml:"port"`
}

// ColdStart says what a node does when it starts and hears no peer.
type ColdStart struct {
	// SoloAfter: 0 (the default) waits for the peer forever; a duration
	// starts the VS alone after that long, once the split-brain checks
	// (management probe, LAN probe, witness lease) find no live VS.
	SoloAfter time.Duration `yaml:"solo_after"`
}

// Timeouts of the runtime, as Go durations ("50ms").
type Timeouts struct {
	Heartbeat   time.Duration `yaml:"heartbeat"`   // interval between heartbeats on each link
	PeerDead    time.Duration `yaml:"peer_dead"`   // silence after which the peer is declared gone
	LinkDead    time.Duration `yaml:"link_dead"`   // silence after which one link is declared gone
	SplitBrain  time.Duration `yaml:"split_brain"` // how long to watch the LAN for the VS MAC before going live
	Reintegrate time.Duration `yaml:"reintegrate"` // longest a snapshot hand-over may take
	Management  time.Duration `yaml:"management"`  // timeout of a management-network probe of the peer
}

// Defaults chosen so a failover stall stays well under the 300 ms p99 goal
// while one lost heartbeat never triggers one: five heartbeats fit in PeerDead.
var defaultTimeouts = Timeouts{
	Heartbeat:   20 * time.Millisecond,
	PeerDead:    120 * time.Millisecond,
	LinkDead:    120 * time.Millisecond,
	SplitBrain:  60 * time.Millisecond,
	Reintegrate: 30 * time.Second,
	Management:  150 * time.Millisecond, // runs alongside the LAN probe
}

// Key returns the decoded pair key.
func (c *Config) Key() []byte { return c.key }

// Load reads and validates a config file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("coserver config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates config bytes; file names the source in errors.
func Parse(file string, data []byte) (*Config, error) {
	var c Config
	doc, err := yamlconf.Load(file, data, &c)
	if err != nil {
		return nil, err
	}
	if err := c.validate(doc); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) validate(d *yamlconf.Doc) error {
	if c.Node != 1 && c.Node != 2 {
		return d.Errorf("node", "is %d; must be 1 or 2", c.Node)
	}
	if err := c.loadKey(d); err != nil {
		return err
	}
	if len(c.Links) < 1 || len(c.Links) > 2 {
		return d.Errorf("links", "has %d entries; a pair has one or two CoServer links", len(c.Links))
	}
	seen := map[string]string{}
	for i, l := range c.Links {
		f := fmt.Sprintf("links[%d]", i)
		if l.Interface == "" {
			return d.Errorf(f+".interface", "is missing")
		}
		if err := claim(d, seen, l.Interface, f+".interface"); err != nil {
			return err
		}
		if err := checkAddrPort(d, f+".local", l.Local); err != nil {
			return err
		}
		if err := checkAddrPort(d, f+".peer", l.Peer); err != nil {
			return err
		}
	}
	if c.Redirected.Interface == "" {
		return d.Errorf("redirected.interface", "is missing")
	}
	if err := claim(d, seen, c.Redirected.Interface, "redirected.interface"); err != nil {
		return err
	}
	switch c.Redirected.Port {
	case "":
		c.Redirected.Port = "afpacket"
	case "afpacket", "tap":
	default:
		return d.Errorf("redirected.port", "is %q; must be afpacket or tap", c.Redirected.Port)
	}
	if err := checkAddrPort(d, "management.listen", c.Management.Listen); err != nil {
		return err
	}
	if c.Management.Peer != "" {
		if err := checkAddrPort(d, "management.peer", c.Management.Peer); err != nil {
			return err
		}
	}
	if c.Witness != "" {
		if _, _, err := net.SplitHostPort(c.Witness); err != nil {
			return d.Errorf("witness", "%q is not host:port", c.Witness)
		}
	}
	if err := c.validateVS(d); err != nil {
		return err
	}
	c.fillTimeouts()
	if c.Timeouts.PeerDead < 3*c.Timeouts.Heartbeat {
		return d.Errorf("timeouts.peer_dead", "is %s; must be at least three heartbeats (%s)",
			c.Timeouts.PeerDead, 3*c.Timeouts.Heartbeat)
	}
	if c.ColdStart.SoloAfter < 0 {
		return d.Errorf("cold_start.solo_after", "is %s; must not be negative", c.ColdStart.SoloAfter)
	}
	if c.StateDir == "" {
		c.StateDir = "/var/lib/ftvs"
	}
	if c.Manager.Listen != "" {
		if c.Manager.StateDir == "" {
			c.Manager.StateDir = filepath.Join(c.StateDir, "manager")
		}
		if err := c.Sections.Check(d, "coserver"+strconv.Itoa(c.Node)); err != nil {
			return err
		}
	}
	return nil
}

func (c *Config) loadKey(d *yamlconf.Doc) error {
	field, text := "pair_key", c.PairKey
	switch {
	case c.PairKey != "" && c.PairKeyFile != "":
		return d.Errorf("pair_key_file", "given together with pair_key; use one")
	case c.PairKeyFile != "":
		b, err := os.ReadFile(c.PairKeyFile)
		if err != nil {
			return d.Errorf("pair_key_file", "%v", err)
		}
		field, text = "pair_key_file", strings.TrimSpace(string(b))
	case c.PairKey == "":
		return d.Errorf("pair_key", "is missing (or give pair_key_file)")
	}
	key, err := hex.DecodeString(text)
	if err != nil {
		return d.Errorf(field, "is not hex: %v", err)
	}
	if len(key) < 32 {
		return d.Errorf(field, "is %d bytes; use at least 32 random bytes (64 hex digits)", len(key))
	}
	c.key = key
	return nil
}

func (c *Config) validateVS(d *yamlconf.Doc) error {
	mac, err := net.ParseMAC(c.VS.MAC)
	if err != nil || len(mac) != 6 {
		return d.Errorf("vs.mac", "%q is not a MAC address like 02:00:5e:00:00:01", c.VS.MAC)
	}
	if mac[0]&1 != 0 {
		return d.Errorf("vs.mac", "%s is a multicast address", c.VS.MAC)
	}
	pfx, err := netip.ParsePrefix(c.VS.IP)
	if err != nil || !pfx.Addr().Is4() {
		return d.Errorf("vs.ip", "%q is not an IPv4 address/prefix like 10.0.0.100/24", c.VS.IP)
	}
	if c.VS.Gateway != "" {
		gw, err := netip.ParseAddr(c.VS.Gateway)
		if err != nil || !gw.Is4() {
			return d.Errorf("vs.gateway", "%q is not an IPv4 address", c.VS.Gateway)
		}
		if !pfx.Masked().Contains(gw) {
			return d.Errorf("vs.gateway", "%s is not inside %s", gw, pfx.Masked())
		}
	}
	if c.VS.MTU != 0 && (c.VS.MTU < 576 || c.VS.MTU > 9000) {
		return d.Errorf("vs.mtu", "is %d; must be within 576..9000", c.VS.MTU)
	}
	if c.VS.Services.HTTP == nil && c.VS.Services.FTP == nil && c.VS.Services.NBD == nil {
		return d.Errorf("vs.services", "names no service; enable http, ftp or nbd")
	}
	var http, ftp *Service
	if c.VS.Services.HTTP != nil {
		http = &c.VS.Services.HTTP.Service
	}
	if c.VS.Services.FTP != nil {
		ftp = &c.VS.Services.FTP.Service
	}
	for _, sv := range []struct {
		name string
		s    *Service
		def  int
	}{{"http", http, 80}, {"ftp", ftp, 21}, {"nbd", c.VS.Services.NBD, 10809}} {
		if sv.s == nil {
			continue
		}
		if p := sv.s.Port; p < 0 || p > 65535 {
			return d.Errorf("vs.services."+sv.name+".port", "is %d; must be within 1..65535", p)
		} else if p == 0 {
			sv.s.Port = sv.def
		}
	}
	if c.VS.Content != "" {
		if st, err := os.Stat(c.VS.Content); err != nil || !st.IsDir() {
			return d.Errorf("vs.content", "%q is not a readable directory", c.VS.Content)
		}
	}
	return c.validateStorage(d)
}

func (c *Config) fillTimeouts() {
	t, def := &c.Timeouts, defaultTimeouts
	for _, p := range []struct {
		v *time.Duration
		d time.Duration
	}{
		{&t.Heartbeat, def.Heartbeat}, {&t.PeerDead, def.PeerDead}, {&t.LinkDead, def.LinkDead},
		{&t.SplitBrain, def.SplitBrain}, {&t.Reintegrate, def.Reintegrate}, {&t.Management, def.Management},
	} {
		if *p.v <= 0 {
			*p.v = p.d
		}
	}
}

func claim(d *yamlconf.Doc, seen map[string]string, iface, field string) error {
	if prev, ok := seen[iface]; ok {
		return d.Errorf(field, "interface %s already has a role (%s); one role per NIC", iface, prev)
	}
	seen[iface] = field
	return nil
}

func checkAddrPort(d *yamlconf.Doc, field, v string) error {
	if v == "" {
		return d.Errorf(field, "is missing")
	}
	if _, err := netip.ParseAddrPort(v); err != nil {
		return d.Errorf(field, "%q is not ip:port", v)
	}
	return nil
}

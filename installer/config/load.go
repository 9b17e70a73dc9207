package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"gopkg.in/yaml.v3"

	"github.com/ftvs/ftvs/hwcheck/policy"
	"github.com/ftvs/ftvs/images/bootcfg"
)

// MaxFileSize bounds what Load reads: a config is a few KiB.
const MaxFileSize = 1 << 20

// LoadFile reads and parses a config file.
func LoadFile(name string) (*Config, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", name, err)
	}
	return Parse(name, data)
}

// Parse decodes a config. Every problem found is returned together, each
// naming the line and the field (an Errors value).
func Parse(file string, data []byte) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, Errors{{File: file, Msg: fmt.Sprintf("file larger than %d bytes", MaxFileSize)}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: file, Msg: "empty config"}}
		}
		return nil, Errors{{File: file, Line: yamlErrLine(err), Msg: "not valid YAML: " + yamlErrMsg(err)}}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: file, Line: extra.Line, Msg: "more than one YAML document"}}
	}
	d := &decoder{cfg: &Config{file: file, lines: map[string]int{}}, file: file}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	d.top(root)
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	return d.cfg, nil
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func yamlErrLine(err error) int {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func yamlErrMsg(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

type decoder struct {
	cfg  *Config
	file string
	errs Errors
}

func (d *decoder) errf(n *yaml.Node, field, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, &FieldError{File: d.file, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// mapping walks a mapping node, calling the handler of each key and
// reporting unknown, duplicate and missing required keys.
func (d *decoder) mapping(n *yaml.Node, field string, handlers map[string]func(*yaml.Node, string), required ...string) {
	n = resolveAlias(n)
	if n.Kind != yaml.MappingNode {
		d.errf(n, field, "want a mapping (key: value lines), got %s", kindName(n))
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		sub := k.Value
		if field != "" {
			sub = field + "." + k.Value
		}
		if k.Kind != yaml.ScalarNode {
			d.errf(k, field, "keys must be plain names")
			continue
		}
		h, ok := handlers[k.Value]
		if !ok {
			d.errf(k, sub, "unknown field (known: %s)", knownKeys(handlers))
			continue
		}
		if seen[k.Value] {
			d.errf(k, sub, "given twice")
			continue
		}
		seen[k.Value] = true
		d.cfg.lines[sub] = k.Line
		h(resolveAlias(v), sub)
	}
	for _, r := range required {
		if !seen[r] {
			sub := r
			if field != "" {
				sub = field + "." + r
			}
			d.errf(n, sub, "missing (required)")
		}
	}
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

func knownKeys(h map[string]func(*yaml.Node, string)) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return strings.Join(keys, ", ")
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "a document"
}

func (d *decoder) scalar(n *yaml.Node, field string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		d.errf(n, field, "want a single value, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) str(n *yaml.Node, field string, max int) (string, bool) {
	s, ok := d.scalar(n, field)
	if !ok {
		return "", false
	}
	if n.Tag != "!!str" {
		d.errf(n, field, "want a string, got %s (quote it)", n.Tag[2:])
		return "", false
	}
	if len(s) > max {
		d.errf(n, field, "longer than %d characters", max)
		return "", false
	}
	return s, true
}

func (d *decoder) boolean(n *yaml.Node, field string) (bool, bool) {
	s, ok := d.scalar(n, field)
	if !ok {
		return false, false
	}
	if n.Tag != "!!bool" {
		d.errf(n, field, "want true or false, got %q", s)
		return false, false
	}
	return s == "true" || s == "True" || s == "TRUE", true
}

func (d *decoder) size(n *yaml.Node, field string) (uint64, bool) {
	s, ok := d.scalar(n, field)
	if !ok {
		return 0, false
	}
	v, err := humanize.ParseBytes(s)
	if err != nil || v == 0 {
		d.errf(n, field, "want a size like 512MiB or 20GiB, got %q", s)
		return 0, false
	}
	return v, true
}

func (d *decoder) top(n *yaml.Node) {
	c := d.cfg
	d.mapping(n, "", map[string]func(*yaml.Node, string){
		"version": func(n *yaml.Node, f string) {
			s, ok := d.scalar(n, f)
			if !ok {
				return
			}
			v, err := strconv.Atoi(s)
			if err != nil || n.Tag != "!!int" {
				d.errf(n, f, "want an integer, got %q", s)
				return
			}
			if v != Version {
				d.errf(n, f, "unsupported version %d (this installer reads version %d)", v, Version)
				return
			}
			c.Version = v
		},
		"node":          d.node,
		"pair_key":      d.pairKey,
		"config_source": d.source,
		"nics":          d.nics,
		"addresses":     d.addresses,
		"disk":          d.disk,
		"wipe": func(n *yaml.Node, f string) {
			c.Wipe, _ = d.boolean(n, f)
		},
		"virtual_disks": d.virtualDisks,
		"vs":            d.vs,
		"hwcheck":       d.hwcheck,
		"runtime":       d.runtime,
	}, "version", "disk", "virtual_disks", "vs")
	if c.Disk.ESPSize == 0 {
		c.Disk.ESPSize = DefaultESPSize
	}
	if c.Disk.SystemSize == 0 {
		c.Disk.SystemSize = DefaultSystemSize
	}
	if c.NICs.Scan == "" {
		c.NICs.Scan = "physical"
	}
	if c.NICs.Listen == 0 {
		c.NICs.Listen = DefaultListen
	}
	if _, set := c.lines["nics.wait"]; !set {
		c.NICs.Wait = DefaultWait
	}
	if !c.Addresses.CoServer.IsValid() {
		c.Addresses.CoServer = defaultCoServerNet
	}
}

func (d *decoder) node(n *yaml.Node, field string) {
	c := d.cfg
	if n.Kind == yaml.ScalarNode && n.Value == "auto" {
		return
	}
	d.mapping(n, field, map[string]func(*yaml.Node, string){
		"number": func(n *yaml.Node, f string) {
			s, ok := d.scalar(n, f)
			if !ok || s == "auto" {
				return
			}
			if s != "1" && s != "2" {
				d.errf(n, f, "want 1, 2 or auto, got %q", s)
				return
			}
			c.Node.Number = int(s[0] - '0')
		},
		"name": func(n *yaml.Node, f string) {
			s, ok := d.str(n, f, 63)
			if !ok || s == "auto" {
				return
			}
			if !nodeNameRE.MatchString(s) {
				d.errf(n, f, "want letters, digits, '-' or '_' (a host-name-like label), got %q", s)
				return
			}
			c.Node.Name = s
		},
	})
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

func (d *decoder) pairKey(n *yaml.Node, field string) {
	s, ok := d.str(n, field, 256)
	if !ok || s == "auto" {
		return
	}
	k, err := ParsePairKey(s)
	if err != nil {
		d.errf(n, field, "%v", err)
		return
	}
	d.cfg.PairKey = k
}

func (d *decoder) source(n *yaml.Node, field string) {
	s, ok := d.str(n, field, 1024)
	if !ok {
		return
	}
	// The boot media's parser decides what ftvs.config= accepts.
	if _, err := bootcfg.Parse(s); err != nil {
		d.errf(n, field, "%v", err)
		return
	}
	d.cfg.Source = s
}

func (d *decoder) nics(n *yaml.Node, field string) {
	c := d.cfg
	d.mapping(n, field, map[string]func(*yaml.Node, string){
		"scan": func(n *yaml.Node, f string) {
			s, ok := d.scalar(n, f)
			if !ok {
				return
			}
			if s != "physical" && s != "all" {
				d.errf(n, f, "want physical or all, got %q", s)
				return
			}
			c.NICs.Scan = s
		},
		"listen": func(n *yaml.Node, f string) {
			s, ok := d.scalar(n, f)
			if !ok {
				return
			}
			v, err := time.ParseDuration(s)
			if err != nil || v < 500*time.Millisecond || v > 5*time.Minute {
				d.errf(n, f, "want a duration between 500ms and 5m, like 3s, got %q", s)
				return
			}
			c.NICs.Listen = v
		},
		"wait": func(n *yaml.Node, f string) {
			s, ok := d.scalar(n, f)
			if !ok {
				return
			}
			v, err := time.ParseDuration(s)
			if err != nil || v < 0 || v > 24*time.Hour {
				d.errf(n, f, "want a duration up to 24h, like 5m, got %q", s)
				return
			}
			c.NICs.Wait = v
		},
		"coserver": func(n *yaml.Node, f string) {
			if n.Kind == yaml.ScalarNode && n.Value == "auto" {
				return
			}
			if n.Kind == yaml.ScalarNode {
				if sel, ok := d.selector(n, f); ok {
					c.NICs.CoServer = []Selector{sel}
				}
				return
			}
			if n.Kind != yaml.SequenceNode {
				d.errf(n, f, "want auto, one NIC or a list of one or two NICs, got %s", kindName(n))
				return
			}
			if len(n.Content) < 1 || len(n.Content) > 2 {
				d.errf(n, f, "want one or two CoServer links, got %d", len(n.Content))
				return
			}
			for i, e := range n.Content {
				if sel, ok := d.selector(resolveAlias(e), fmt.Sprintf("%s[%d]", f, i)); ok {
					c.NICs.CoServer = append(c.NICs.CoServer, sel)
				}
			}
		},
		"redirected": func(n *yaml.Node, f string) {
			if n.Kind == yaml.ScalarNode && n.Value == "auto" {
				return
			}
			if sel, ok := d.selector(n, f); ok {
				c.NICs.Redirected = &sel
			}
		},
		"management": func(n *yaml.Node, f string) {
			if n.Kind == yaml.ScalarNode && n.Value == "auto" {
				return
			}
			if sel, ok := d.selector(n, f); ok {
				c.NICs.Management = &sel
			}
		},
	})
	// The same NIC named for two roles is an error, caught here when the
	// selectors are textually equal and again against the machine.
	seen := map[Selector]string{}
	check := func(s *Selector, role string) {
		if s == nil {
			return
		}
		k := Selector{Kind: s.Kind, Value: s.Value}
		if prev, ok := seen[k]; ok {
			d.errs = append(d.errs, &FieldError{File: d.file, Line: s.Line, Field: "nics." + role,
				Msg: fmt.Sprintf("NIC %s already has role %s: one NIC, one role", s, prev)})
			return
		}
		seen[k] = role
	}
	for i := range c.NICs.CoServer {
		check(&c.NICs.CoServer[i], string(RoleCoServer))
	}
	check(c.NICs.Redirected, string(RoleRedirected))
	check(c.NICs.Management, string(RoleManagement))
}

var (
	macRE = regexp.MustCompile(`^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$`)
	pciRE = regexp.MustCompile(`^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)
	ifRE  = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`)
)

// ParseSelector reads a NIC selector: "eth0", "name:eth0", "52:54:00:12:34:56",
// "mac:...", "0000:03:00.0" or "pci:...".
func ParseSelector(s string) (Selector, error) {
	kind, val := SelectorKind(""), s
	if i := strings.IndexByte(s, ':'); i > 0 {
		switch p := SelectorKind(s[:i]); p {
		case ByName, ByMAC, ByPCI:
			kind, val = p, s[i+1:]
		}
	}
	if kind == "" {
		switch {
		case macRE.MatchString(s):
			kind = ByMAC
		case pciRE.MatchString(s):
			kind = ByPCI
		default:
			kind = ByName
		}
	}
	switch kind {
	case ByMAC:
		if !macRE.MatchString(val) {
			return Selector{}, fmt.Errorf("%q is not a MAC address (want aa:bb:cc:dd:ee:ff)", val)
		}
		val = strings.ToLower(val)
	case ByPCI:
		if !pciRE.MatchString(val) {
			return Selector{}, fmt.Errorf("%q is not a PCI address (want 0000:03:00.0)", val)
		}
		val = strings.ToLower(val)
		if len(val) == 7 {
			val = "0000:" + val
		}
	case ByName:
		if !ifRE.MatchString(val) {
			return Selector{}, fmt.Errorf("%q is not an interface name, MAC or PCI address", val)
		}
	}
	return Selector{Kind: kind, Value: val}, nil
}

func (d *decoder) selector(n *yaml.Node, field string) (Selector, bool) {
	s, ok := d.scalar(n, field)
	if !ok {
		return Selector{}, false
	}
	sel, err := ParseSelector(s)
	if err != nil {
		d.errf(n, field, "%v", err)
		return Selector{}, false
	}
	sel.Line = n.Line
	return sel, true
}

func (d *decoder) prefix(n *yaml.Node, field string) (netip.Prefix, bool) {
	s, ok := d.scalar(n, field)
	if !ok {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		d.errf(n, field, "want an IPv4 address with prefix length, like 10.0.0.11/24, got %q", s)
		return netip.Prefix{}, false
	}
	return p, true
}

func (d *decoder) addr(n *yaml.Node, field string) (netip.Addr, bool) {
	s, ok := d.scalar(n, field)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		d.errf(n, field, "want an IPv4 address, got %q", s)
		return netip.Addr{}, false
	}
	return a, true
}

func (d *decoder) addresses(n *yaml.Node, field string) {
	c := d.cfg
	d.mapping(n, field, map[string]func(*yaml.Node, string){
		"management": func(n *yaml.Node, f string) {
			if n.Kind != yaml.SequenceNode || len(n.Content) != 2 {
				d.errf(n, f, "want a list of two addresses: node 1's, then node 2's")
				return
			}
			for i, e := range n.Content {
				if p, ok := d.prefix(resolveAlias(e), fmt.Sprintf("%s[%d]", f, i)); ok {
					c.Addresses.Management = append(c.Addresses.Management, p)
				}
			}
			if len(c.Addresses.Management) == 2 && c.Addresses.Management[0].Addr() == c.Addresses.Management[1].Addr() {
				d.errf(n, f, "node 1 and node 2 have the same address %s", c.Addresses.Management[0].Addr())
			}
		},
		"gateway": func(n *yaml.Node, f string) {
			c.Addresses.Gateway, _ = d.addr(n, f)
		},
		"coserver": func(n *yaml.Node, f string) {
			p, ok := d.prefix(n, f)
			if !ok {
				return
			}
			if p.Bits() > 30 {
				d.errf(n, f, "subnet %s too small for two links of two nodes (want /30 or larger)", p)
				return
			}
			c.Addresses.CoServer = p.Masked()
		},
	})
}

func (d *decoder) disk(n *yaml.Node, field string) {
	c := d.cfg
	d.mapping(n, field, map[string]func(*yaml.Node, string){
		"target": func(n *yaml.Node, f string) {
			if n.Kind == yaml.ScalarNode {
				s, ok := d.str(n, f, 4096)
				if !ok {
					return
				}
				if !strings.HasPrefix(s, "/") {
					d.errf(n, f, "want an absolute path (/dev/sdb, /dev/disk/by-id/...) or a rule, got %q", s)
					return
				}
				c.Disk.Path = path.Clean(s)
				return
			}
			r := &DiskRule{}
			d.mapping(n, f, map[string]func(*yaml.Node, string){
				"min_size": func(n *yaml.Node, f string) { r.MinSize, _ = d.size(n, f) },
				"max_size": func(n *yaml.Node, f string) { r.MaxSize, _ = d.size(n, f) },
				"model": func(n *yaml.Node, f string) {
					s, ok := d.str(n, f, 256)
					if !ok {
						return
					}
					if _, err := path.Match(s, ""); err != nil {
						d.errf(n, f, "bad pattern %q: %v", s, err)
						return
					}
					r.Model = s
				},
			}, "min_size")
			if r.MaxSize != 0 && r.MaxSize < r.MinSize {
				d.errf(n, f, "max_size is below min_size")
			}
			c.Disk.Rule = r
		},
		"esp_size": func(n *yaml.Node, f string) {
			v, ok := d.size(n, f)
			if !ok {
				return
			}
			if err := CheckFATSize("ESP", v); err != nil {
				d.errf(n, f, "%v", err)
				return
			}
			c.Disk.ESPSize = v
		},
		"system_size": func(n *yaml.Node, f string) {
			v, ok := d.size(n, f)
			if !ok {
				return
			}
			if err := CheckFATSize("system partition", v); err != nil {
				d.errf(n, f, "%v", err)
				return
			}
			c.Disk.SystemSize = v
		},
	}, "target")
}

// MinFAT32Size is the smallest FAT32 the installer makes: smaller ones look
// like FAT16 to firmware (boot.md: about 34 MiB), so keep a margin.
const MinFAT32Size = 40 << 20

// CheckFATSize refuses FAT32 sizes go-diskfs v1.9.4 gets wrong (a FAT two
// entries short at exactly 64, 129, 259 MiB and 4 GiB: upstream #418) and
// sizes too small for FAT32.
func CheckFATSize(what string, size uint64) error {
	if size < MinFAT32Size {
		return fmt.Errorf("%s of %s is below the FAT32 minimum of %s", what, humanize.IBytes(size), humanize.IBytes(MinFAT32Size))
	}
	if size%(1<<20) != 0 {
		return fmt.Errorf("%s size %d is not a whole number of MiB", what, size)
	}
	switch size >> 20 {
	case 64, 129, 259, 4096:
		return fmt.Errorf("%s of exactly %d MiB hits the go-diskfs FAT size bug (#418): pick another size", what, size>>20)
	}
	return nil
}

func (d *decoder) virtualDisks(n *yaml.Node, field string) {
	c := d.cfg
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		d.errf(n, field, "want a list of at least one virtual disk (the first is the VS boot disk)")
		return
	}
	if len(n.Content) > 16 {
		d.errf(n, field, "at most 16 virtual disks, got %d", len(n.Content))
		return
	}
	names := map[string]bool{}
	for i, e := range n.Content {
		f := fmt.Sprintf("%s[%d]", field, i)
		var vd VirtualDisk
		d.mapping(e, f, map[string]func(*yaml.Node, string){
			"name": func(n *yaml.Node, f string) {
				s, ok := d.str(n, f, 32)
				if !ok {
					return
				}
				if !nodeNameRE.MatchString(s) {
					d.errf(n, f, "want letters, digits, '-' or '_', got %q", s)
					return
				}
				if names[s] {
					d.errf(n, f, "virtual disk %q named twice", s)
					return
				}
				names[s] = true
				vd.Name = s
			},
			"size": func(n *yaml.Node, f string) {
				v, ok := d.size(n, f)
				if !ok {
					return
				}
				if v%(1<<20) != 0 {
					d.errf(n, f, "size %d is not a whole number of MiB", v)
					return
				}
				if i == 0 {
					if err := CheckFATSize("the VS boot disk", v); err != nil {
						d.errf(n, f, "%v", err)
						return
					}
				}
				vd.Size = v
			},
		}, "name", "size")
		c.VirtualDisks = append(c.VirtualDisks, vd)
	}
}

func (d *decoder) vs(n *yaml.Node, field string) {
	c := d.cfg
	d.mapping(n, field, map[string]func(*yaml.Node, string){
		"mac": func(n *yaml.Node, f string) {
			s, ok := d.scalar(n, f)
			if !ok {
				return
			}
			if !macRE.MatchString(s) {
				d.errf(n, f, "want a MAC address like 02:00:00:00:00:01, got %q", s)
				return
			}
			m, _ := net.ParseMAC(s)
			if m[0]&1 != 0 {
				d.errf(n, f, "%s is a multicast MAC; the VS needs a unicast one", s)
				return
			}
			c.VS.MAC = m
		},
		"ip":      func(n *yaml.Node, f string) { c.VS.IP, _ = d.prefix(n, f) },
		"gateway": func(n *yaml.Node, f string) { c.VS.Gateway, _ = d.addr(n, f) },
		"services": func(n *yaml.Node, f string) {
			if n.Kind != yaml.SequenceNode {
				d.errf(n, f, "want a list of services (http, ftp, nbd)")
				return
			}
			seen := map[string]bool{}
			for i, e := range n.Content {
				ef := fmt.Sprintf("%s[%d]", f, i)
				e = resolveAlias(e)
				var s Service
				if e.Kind == yaml.ScalarNode {
					s.Name = e.Value
				} else {
					d.mapping(e, ef, map[string]func(*yaml.Node, string){
						"name": func(n *yaml.Node, f string) { s.Name, _ = d.str(n, f, 16) },
						"port": func(n *yaml.Node, f string) {
							v, ok := d.scalar(n, f)
							if !ok {
								return
							}
							p, err := strconv.ParseUint(v, 10, 16)
							if err != nil || p == 0 || n.Tag != "!!int" {
								d.errf(n, f, "want a port number 1-65535, got %q", v)
								return
							}
							s.Port = uint16(p)
						},
					}, "name")
				}
				def, known := defaultPorts[s.Name]
				if !known {
					if s.Name != "" {
						d.errf(e, ef, "unknown service %q (known: ftp, http, nbd)", s.Name)
					}
					continue
				}
				if seen[s.Name] {
					d.errf(e, ef, "service %q listed twice", s.Name)
					continue
				}
				seen[s.Name] = true
				if s.Port == 0 {
					s.Port = def
				}
				c.VS.Services = append(c.VS.Services, s)
			}
		},
	}, "mac", "ip")
	if c.VS.Services == nil {
		c.VS.Services = []Service{{"http", 80}, {"ftp", 21}, {"nbd", 10809}}
	}
	if c.VS.Gateway.IsValid() && c.VS.IP.IsValid() && !c.VS.IP.Masked().Contains(c.VS.Gateway) {
		d.errf(n, field+".gateway", "gateway %s is outside the VS subnet %s", c.VS.Gateway, c.VS.IP.Masked())
	}
}

func (d *decoder) hwcheck(n *yaml.Node, field string) {
	c := d.cfg
	d.mapping(n, field, map[string]func(*yaml.Node, string){
		"policy": func(n *yaml.Node, f string) {
			if n.Kind == yaml.ScalarNode {
				s, ok := d.str(n, f, 4096)
				if ok {
					c.HWCheck.PolicyPath = s
				}
				return
			}
			if n.Kind != yaml.MappingNode {
				d.errf(n, f, "want a policy file path or an inline policy mapping, got %s", kindName(n))
				return
			}
			b, err := yaml.Marshal(n)
			if err != nil {
				d.errf(n, f, "cannot re-encode the inline policy: %v", err)
				return
			}
			if _, err := policy.Parse("inline policy", b); err != nil {
				d.errf(n, f, "%v", err)
				return
			}
			c.HWCheck.PolicyInline = b
		},
	})
}

// runtime reads `runtime: {timeouts: {...}}`, handed to ftvs coserver.
func (d *decoder) runtime(n *yaml.Node, field string) {
	t := &d.cfg.Runtime
	d.mapping(n, field, map[string]func(*yaml.Node, string){
		"timeouts": func(n *yaml.Node, field string) {
			dur := func(v *time.Duration) func(*yaml.Node, string) {
				return func(n *yaml.Node, f string) {
					s, ok := d.scalar(n, f)
					if !ok {
						return
					}
					x, err := time.ParseDuration(s)
					if err != nil || x < time.Millisecond || x > 10*time.Minute {
						d.errf(n, f, "want a duration between 1ms and 10m, like 500ms, got %q", s)
						return
					}
					*v = x
				}
			}
			d.mapping(n, field, map[string]func(*yaml.Node, string){
				"heartbeat": dur(&t.Heartbeat), "peer_dead": dur(&t.PeerDead), "link_dead": dur(&t.LinkDead),
				"split_brain": dur(&t.SplitBrain), "reintegrate": dur(&t.Reintegrate), "management": dur(&t.Management),
			})
			if t.Heartbeat > 0 && t.PeerDead > 0 && t.PeerDead < 3*t.Heartbeat {
				d.errf(n, field+".peer_dead", "is %s; must be at least three heartbeats (%s)", t.PeerDead, 3*t.Heartbeat)
			}
		},
	})
}

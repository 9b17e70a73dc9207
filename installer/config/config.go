// Package config is the installer's unattended configuration: a YAML file
// (kickstart-style) that says everything the installer cannot detect. It is
// decoded through yaml.Node so that every error names the line and the field,
// and unknown fields are errors rather than silently ignored.
package config

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// Version is the only config format version this installer reads.
const Version = 1

// Config is one node's (or one pair's) install configuration.
type Config struct {
	Version      int
	Node         Node
	PairKey      []byte // nil: node 1 generates one and shows it for node 2
	Source       string // the ftvs.config= value the boot media carry (images/bootcfg)
	NICs         NICs
	Addresses    Addresses
	Disk         Disk
	Wipe         bool
	VirtualDisks []VirtualDisk
	VS           VS
	HWCheck      HWCheck
	Runtime      Runtime

	file  string
	lines map[string]int // field path -> line in the file
}

// Node is this server's identity in the pair.
type Node struct {
	Number int    // 1 or 2; 0 = auto (the lower MAC is node 1)
	Name   string // "" = auto (derived from the lowest physical MAC)
}

// Role is what a NIC is used for.
type Role string

// The NIC roles of a CoServer.
const (
	RoleCoServer   Role = "coserver"   // crossover cable to the peer, no switch
	RoleRedirected Role = "redirected" // the VS's own port on the production LAN
	RoleManagement Role = "management" // the CoServer's own address, manager access
)

// SelectorKind says how a selector names a NIC.
type SelectorKind string

// Ways to name a NIC.
const (
	ByName SelectorKind = "name"
	ByMAC  SelectorKind = "mac"
	ByPCI  SelectorKind = "pci"
)

// Selector names one NIC by interface name, MAC or PCI slot.
type Selector struct {
	Kind  SelectorKind
	Value string // name, canonical lower-case MAC, or PCI address
	Line  int
}

func (s Selector) String() string { return string(s.Kind) + ":" + s.Value }

// NICs says which NICs are considered and which role each has. A nil
// selector (or nil CoServer list) means auto: decided from the beacons.
type NICs struct {
	Scan       string        // "physical" (default) or "all" (virtual NICs too: tests)
	Listen     time.Duration // one beacon window
	Wait       time.Duration // how long to keep listening for a peer not yet heard
	CoServer   []Selector    // 1 or 2; nil = auto
	Redirected *Selector
	Management *Selector
}

// Addresses are the CoServers' own addresses.
type Addresses struct {
	Management []netip.Prefix // index 0 for node 1, 1 for node 2
	Gateway    netip.Addr     // management gateway; invalid = none
	CoServer   netip.Prefix   // subnet the CoServer links number themselves from
}

// ManagementFor returns the management address of node n (1 or 2).
func (a Addresses) ManagementFor(n int) (netip.Prefix, bool) {
	if n < 1 || n > len(a.Management) {
		return netip.Prefix{}, false
	}
	return a.Management[n-1], true
}

// Disk is the target disk and the sizes of the installer's own partitions.
type Disk struct {
	Path       string    // /dev/sdX, /dev/disk/by-id/..., or a file (tests)
	Rule       *DiskRule // when the disk is chosen by size/model instead
	ESPSize    uint64
	SystemSize uint64
}

// DiskRule picks the target disk among the machine's disks; exactly one
// disk must match.
type DiskRule struct {
	MinSize uint64
	MaxSize uint64 // 0 = no limit
	Model   string // shell glob on the model string; "" = any
}

// VirtualDisk is one mirrored virtual disk; the first is the VS boot disk.
type VirtualDisk struct {
	Name string
	Size uint64
}

// VS is the virtual server's identity on the production LAN.
type VS struct {
	MAC      net.HardwareAddr
	IP       netip.Prefix
	Gateway  netip.Addr
	Services []Service
}

// Service is one service the VS offers.
type Service struct {
	Name string // http, ftp, nbd
	Port uint16
}

// DefaultPorts are the services' well-known ports.
var defaultPorts = map[string]uint16{"http": 80, "ftp": 21, "nbd": 10809}

// HWCheck is the hardware-match policy: a file or inline YAML, handed to
// the hwcheck library as bytes.
type HWCheck struct {
	PolicyPath   string
	PolicyInline []byte
}

// Runtime holds settings passed on to the runtime's config (ftvs
// coserver): its failure-detection timeouts, zero meaning the runtime's
// default. Slow links or machines (QEMU under TCG) need longer ones. Its
// fields are ftvs/coserver/config.Timeouts', which it converts to.
type Runtime struct {
	Heartbeat, PeerDead, LinkDead, SplitBrain, Reintegrate, Management time.Duration
}

// Defaults for fields that may be left out.
const (
	DefaultESPSize    = 96 << 20
	DefaultSystemSize = 256 << 20
	DefaultListen     = 3 * time.Second
	DefaultWait       = 5 * time.Minute
)

// DefaultCoServerNet is the subnet the CoServer links use unless told.
var defaultCoServerNet = netip.MustParsePrefix("169.254.77.0/24")

// File is the name the config was read from.
func (c *Config) File() string { return c.file }

// Line is the line of the field at path (e.g. "disk.target"), or 0.
func (c *Config) Line(path string) int { return c.lines[path] }

// Errorf builds an error that names this config's file, the field's line and
// the field, for checks made after loading (against the machine).
func (c *Config) Errorf(path, format string, args ...any) *FieldError {
	return &FieldError{File: c.file, Line: c.lines[path], Field: path, Msg: fmt.Sprintf(format, args...)}
}

// FieldError is one problem in a config: file, line, field and what is wrong.
type FieldError struct {
	File  string
	Line  int
	Field string
	Msg   string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteString(" ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in one config, sorted by line.
type Errors []*FieldError

func (es Errors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

func (es Errors) sorted() Errors {
	sort.SliceStable(es, func(i, j int) bool { return es[i].Line < es[j].Line })
	return es
}

// Services returns the VS services, the default set when none was given.
func (v VS) ServiceNames() []string {
	out := make([]string, len(v.Services))
	for i, s := range v.Services {
		out[i] = fmt.Sprintf("%s:%d", s.Name, s.Port)
	}
	return out
}

// RequiredDiskBytes is the smallest disk the layout fits on: GPT overheads,
// 1 MiB alignment, the ESP, the system partition and every virtual disk.
func (c *Config) RequiredDiskBytes() uint64 {
	const mib = 1 << 20
	total := uint64(2 * mib) // 1 MiB for the primary GPT + alignment, 1 MiB at the end for the backup
	for _, s := range c.partitionSizes() {
		total += alignUp(s, mib)
	}
	return total
}

func (c *Config) partitionSizes() []uint64 {
	s := []uint64{c.Disk.ESPSize, c.Disk.SystemSize}
	for _, v := range c.VirtualDisks {
		s = append(s, v.Size)
	}
	return s
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) / a * a }

package config

import (
	"bytes"
	"fmt"
	"path"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/ftvs/ftvs/hwcheck/policy"
	"github.com/ftvs/ftvs/installer/host"
)

// Machine is what Check needs to know about the machine the install runs on.
type Machine interface {
	NICs(all bool) ([]host.NIC, error)
	DiskAt(path string) (host.Disk, error)
	Disks() ([]host.Disk, error)
	InUse(d host.Disk) ([]string, error)
}

// Resolved is a config checked against the machine: the NICs its selectors
// name and the target disk.
type Resolved struct {
	NICs       []host.NIC
	CoServer   []host.NIC // explicitly configured; nil = auto
	Redirected *host.NIC
	Management *host.NIC
	Disk       host.Disk
}

// Check resolves the config against the machine: every named NIC must exist,
// no NIC may have two roles, the target disk must exist (or the rule must
// match exactly one disk) and be large enough. It reads, never writes.
func (c *Config) Check(m Machine) (*Resolved, error) {
	var errs Errors
	r := &Resolved{}
	nics, err := m.NICs(c.NICs.Scan == "all")
	if err != nil {
		return nil, err
	}
	r.NICs = nics
	roleOf := map[string]string{} // slot key -> role of the first selector naming it
	resolve := func(s Selector, field, role string) *host.NIC {
		n, err := findNIC(nics, s)
		if err != nil {
			errs = append(errs, &FieldError{File: c.file, Line: s.Line, Field: field, Msg: err.Error()})
			return nil
		}
		if prev, ok := roleOf[n.SlotKey()]; ok {
			errs = append(errs, &FieldError{File: c.file, Line: s.Line, Field: field,
				Msg: fmt.Sprintf("NIC %s (%s) already has role %s: one NIC, one role", n.Name, s, prev)})
			return nil
		}
		roleOf[n.SlotKey()] = role
		return n
	}
	for i, s := range c.NICs.CoServer {
		if n := resolve(s, fmt.Sprintf("nics.coserver[%d]", i), string(RoleCoServer)); n != nil {
			r.CoServer = append(r.CoServer, *n)
		}
	}
	if s := c.NICs.Redirected; s != nil {
		r.Redirected = resolve(*s, "nics.redirected", string(RoleRedirected))
	}
	if s := c.NICs.Management; s != nil {
		r.Management = resolve(*s, "nics.management", string(RoleManagement))
	}
	if len(nics) < 3 {
		errs = append(errs, &FieldError{File: c.file, Line: c.lines["nics"], Field: "nics",
			Msg: fmt.Sprintf("this machine has %d usable NICs (%s); a CoServer needs at least 3 (CoServer link, redirected, management)", len(nics), nicNames(nics))})
	}

	if _, err := c.Policy(); err != nil {
		errs = append(errs, c.Errorf("hwcheck.policy", "%v", err))
	}
	disk, err := c.resolveDisk(m)
	if err != nil {
		errs = append(errs, err.(*FieldError))
	} else {
		r.Disk = disk
		if why, err := m.InUse(disk); err != nil {
			errs = append(errs, c.Errorf("disk.target", "%v", err))
		} else if len(why) > 0 {
			errs = append(errs, c.Errorf("disk.target", "disk %s is in use by this system (%s): never written, wipe or not", disk.Path, strings.Join(why, "; ")))
		}
		if need := c.RequiredDiskBytes(); disk.Size < need {
			errs = append(errs, c.Errorf("disk.target", "disk %s is %s; the layout needs %s (ESP %s + system %s + virtual disks %s + GPT)",
				disk.Path, humanize.IBytes(disk.Size), humanize.IBytes(need), humanize.IBytes(c.Disk.ESPSize),
				humanize.IBytes(c.Disk.SystemSize), humanize.IBytes(c.vdiskTotal())))
		}
	}
	if len(errs) > 0 {
		return nil, errs.sorted()
	}
	return r, nil
}

// Policy is the hwcheck policy the config names (nil: the defaults).
func (c *Config) Policy() (*policy.Policy, error) {
	switch {
	case c.HWCheck.PolicyInline != nil:
		return policy.Parse("inline policy", c.HWCheck.PolicyInline)
	case c.HWCheck.PolicyPath != "":
		return policy.Load(c.HWCheck.PolicyPath)
	}
	return nil, nil
}

func (c *Config) vdiskTotal() uint64 {
	var t uint64
	for _, v := range c.VirtualDisks {
		t += v.Size
	}
	return t
}

func (c *Config) resolveDisk(m Machine) (host.Disk, error) {
	if c.Disk.Path != "" {
		d, err := m.DiskAt(c.Disk.Path)
		if err != nil {
			return host.Disk{}, c.Errorf("disk.target", "%v", err)
		}
		return d, nil
	}
	if c.Disk.Rule == nil {
		return host.Disk{}, c.Errorf("disk.target", "no target disk given")
	}
	all, err := m.Disks()
	if err != nil {
		return host.Disk{}, c.Errorf("disk.target", "%v", err)
	}
	var match []host.Disk
	var seen []string
	for _, d := range all {
		seen = append(seen, fmt.Sprintf("%s (%s, %q)", d.Path, humanize.IBytes(d.Size), d.Model))
		if ok := c.Disk.Rule.Matches(d); ok {
			match = append(match, d)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		return host.Disk{}, c.Errorf("disk.target", "no disk matches the rule %s; disks: %s", c.Disk.Rule, orNone(seen))
	}
	var names []string
	for _, d := range match {
		names = append(names, d.Path)
	}
	return host.Disk{}, c.Errorf("disk.target", "the rule %s matches %d disks (%s): name the disk by path or narrow the rule",
		c.Disk.Rule, len(match), strings.Join(names, ", "))
}

// Matches says whether a disk satisfies the rule.
func (r *DiskRule) Matches(d host.Disk) bool {
	if d.Size < r.MinSize || (r.MaxSize != 0 && d.Size > r.MaxSize) {
		return false
	}
	if r.Model != "" {
		ok, _ := path.Match(r.Model, d.Model)
		return ok
	}
	return true
}

func (r *DiskRule) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "size >= %s", humanize.IBytes(r.MinSize))
	if r.MaxSize != 0 {
		fmt.Fprintf(&b, ", size <= %s", humanize.IBytes(r.MaxSize))
	}
	if r.Model != "" {
		fmt.Fprintf(&b, ", model %q", r.Model)
	}
	return b.String()
}

func findNIC(nics []host.NIC, s Selector) (*host.NIC, error) {
	for i := range nics {
		n := &nics[i]
		switch s.Kind {
		case ByName:
			if n.Name == s.Value {
				return n, nil
			}
		case ByMAC:
			if n.MAC.String() == s.Value {
				return n, nil
			}
		case ByPCI:
			if n.Slot == s.Value {
				return n, nil
			}
		}
	}
	return nil, fmt.Errorf("no NIC %s on this machine (NICs: %s)", s, nicNames(nics))
}

func nicNames(nics []host.NIC) string {
	var s []string
	for _, n := range nics {
		s = append(s, fmt.Sprintf("%s %s %s", n.Name, n.MAC, n.SlotKey()))
	}
	return orNone(s)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "; ")
}

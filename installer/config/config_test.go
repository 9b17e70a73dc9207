package config

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/installer/host"
)

// table is a machine given as data: the NICs and disks a test needs.
type table struct {
	nics  []host.NIC
	disks []host.Disk
}

func (t table) NICs(all bool) ([]host.NIC, error)   { return t.nics, nil }
func (t table) Disks() ([]host.Disk, error)         { return t.disks, nil }
func (t table) InUse(d host.Disk) ([]string, error) { return host.Live().InUse(d) }
func (t table) DiskAt(p string) (host.Disk, error) {
	return host.Live().DiskAt(p) // real files
}

func mac(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }

func fourNICs() []host.NIC {
	return []host.NIC{
		{Name: "eno1", MAC: mac("52:54:00:00:00:01"), Slot: "0000:03:00.0", Physical: true},
		{Name: "eno2", MAC: mac("52:54:00:00:00:02"), Slot: "0000:03:00.1", Physical: true},
		{Name: "enp5s0", MAC: mac("52:54:00:00:00:03"), Slot: "0000:05:00.0", Physical: true},
		{Name: "enp6s0", MAC: mac("52:54:00:00:00:04"), Slot: "0000:06:00.0", Physical: true},
	}
}

const minimal = `version: 1
disk:
  target: /dev/null
virtual_disks:
  - {name: boot, size: 100MiB}
vs:
  mac: "02:00:00:00:00:01"
  ip: 192.168.50.10/24
`

func TestExampleConfigParses(t *testing.T) {
	c, err := LoadFile("../../testdata/installer/install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Number != 0 || c.Node.Name != "" {
		t.Errorf("node = %+v, want auto", c.Node)
	}
	if len(c.PairKey) != 32 {
		t.Errorf("pair key %d bytes", len(c.PairKey))
	}
	if c.Disk.Path != "/dev/disk/by-id/ata-EXAMPLE_SSD_0001" || c.Disk.ESPSize != 96<<20 || c.Disk.SystemSize != 256<<20 {
		t.Errorf("disk = %+v", c.Disk)
	}
	if len(c.VirtualDisks) != 2 || c.VirtualDisks[1].Size != 8<<30 {
		t.Errorf("virtual disks = %+v", c.VirtualDisks)
	}
	if got := strings.Join(c.VS.ServiceNames(), ","); got != "http:80,ftp:21,nbd:10809" {
		t.Errorf("services = %s", got)
	}
	if m, _ := c.Addresses.ManagementFor(2); m.String() != "10.0.0.12/24" {
		t.Errorf("node 2 management = %s", m)
	}
	if c.HWCheck.PolicyPath != "/etc/ftvs/hwpolicy.yaml" || c.Source != "tftp://10.0.0.1/ftvs/install.yaml" {
		t.Errorf("hwcheck/source = %+v %q", c.HWCheck, c.Source)
	}
	raw, _ := os.ReadFile("../../testdata/installer/install.yaml")
	want := 0
	for i, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "  mac:") {
			want = i + 1
		}
	}
	if c.Line("vs.mac") != want || want == 0 {
		t.Errorf("line of vs.mac = %d, want %d", c.Line("vs.mac"), want)
	}
}

func TestBadConfigs(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown field", minimal + "colour: blue\n", "test.yaml:9: colour: unknown field"},
		{"unknown nested field", strings.Replace(minimal, "  target: /dev/null\n", "  target: /dev/null\n  trget: x\n", 1), "test.yaml:4: disk.trget: unknown field"},
		{"wrong type", minimal + "wipe: yes please\n", `test.yaml:9: wipe: want true or false, got "yes please"`},
		{"wrong type mapping", strings.Replace(minimal, "version: 1", "version: {a: 1}", 1), "test.yaml:1: version: want a single value, got a mapping"},
		{"size", strings.Replace(minimal, "size: 100MiB", "size: lots", 1), `test.yaml:5: virtual_disks[0].size: want a size like 512MiB or 20GiB, got "lots"`},
		{"fat bug size", strings.Replace(minimal, "size: 100MiB", "size: 64MiB", 1), "hits the go-diskfs FAT size bug"},
		{"two roles textually", minimal + "nics:\n  coserver: [eno1]\n  management: eno1\n", "test.yaml:11: nics.management: NIC name:eno1 already has role coserver"},
		{"three links", minimal + "nics:\n  coserver: [a, b, c]\n", "want one or two CoServer links, got 3"},
		{"missing vs", "version: 1\ndisk: {target: /dev/null}\nvirtual_disks: [{name: a, size: 100MiB}]\n", "test.yaml:1: vs: missing (required)"},
		{"bad mac", strings.Replace(minimal, `"02:00:00:00:00:01"`, `"01:00:5e:00:00:01"`, 1), "multicast MAC"},
		{"bad ip", strings.Replace(minimal, "192.168.50.10/24", "192.168.50.300/24", 1), "test.yaml:8: vs.ip: want an IPv4 address with prefix length"},
		{"bad yaml", "version: 1\n  x: [\n", "test.yaml:2: not valid YAML"},
		{"relative disk", strings.Replace(minimal, "/dev/null", "sdb", 1), "test.yaml:3: disk.target: want an absolute path"},
		{"duplicate key", minimal + "wipe: true\nwipe: false\n", "test.yaml:10: wipe: given twice"},
		{"bad source", minimal + "config_source: gopher://x/y\n", `unknown scheme "gopher"`},
		{"short key", minimal + "pair_key: \"abcd\"\n", "pair key is 2 bytes"},
		{"unknown service", minimal + "  services: [http, smtp]\n", `vs.services[1]: unknown service "smtp"`},
		{"node number", minimal + "node: {number: 3}\n", `test.yaml:9: node.number: want 1, 2 or auto, got "3"`},
		{"empty", "", "empty config"},
		{"string version", strings.Replace(minimal, "version: 1", `version: "1"`, 1), "version: want an integer"},
		{"runtime timeout", minimal + "runtime: {timeouts: {heartbeat: soon}}\n", `test.yaml:9: runtime.timeouts.heartbeat: want a duration between 1ms and 10m, like 500ms, got "soon"`},
		{"runtime peer_dead", minimal + "runtime: {timeouts: {heartbeat: 1s, peer_dead: 2s}}\n", "runtime.timeouts.peer_dead: is 2s; must be at least three heartbeats (3s)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.yaml)
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %T is not Errors: %v", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error\n%v\ndoes not contain\n%s", err, tc.want)
			}
		})
	}
}

func TestAllErrorsReportedTogether(t *testing.T) {
	y := strings.Replace(minimal, "size: 100MiB", "size: x", 1) + "wipe: 3\ncolour: red\n"
	_, err := Parse("t.yaml", []byte(y))
	es, _ := err.(Errors)
	if len(es) != 3 || es[0].Line != 5 || es[1].Line != 9 || es[2].Line != 10 {
		t.Fatalf("want 3 errors on lines 5, 9, 10; got %v", err)
	}
}

func diskFile(t *testing.T, size int64) string {
	p := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckAgainstMachine(t *testing.T) {
	big := diskFile(t, 1<<30)
	small := diskFile(t, 200<<20)
	m := table{nics: fourNICs()}
	base := strings.Replace(minimal, "/dev/null", big, 1)

	c, err := Parse("c.yaml", []byte(base+"nics:\n  coserver: [eno1, \"pci:0000:03:00.1\"]\n  management: \"52:54:00:00:00:04\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Check(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.CoServer) != 2 || r.CoServer[1].Name != "eno2" || r.Management.Name != "enp6s0" || r.Redirected != nil {
		t.Fatalf("resolved %+v", r)
	}

	bad := []struct{ name, yaml, want string }{
		{"missing NIC", base + "nics:\n  redirected: eth9\n", "c.yaml:10: nics.redirected: no NIC name:eth9 on this machine"},
		{"same NIC by name and MAC", base + "nics:\n  coserver: eno1\n  redirected: \"52:54:00:00:00:01\"\n",
			"c.yaml:11: nics.redirected: NIC eno1 (mac:52:54:00:00:00:01) already has role coserver"},
		{"disk too small", strings.Replace(base, "size: 100MiB", "size: 300MiB", 1), "c.yaml:3: disk.target: disk " + small[:0]},
		{"no disk", strings.Replace(base, big, "/nonexistent/disk", 1), "c.yaml:3: disk.target: disk /nonexistent/disk"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			y := tc.yaml
			if tc.name == "disk too small" {
				y = strings.Replace(y, big, small, 1)
			}
			c, err := Parse("c.yaml", []byte(y))
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Check(m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if tc.name == "disk too small" && !strings.Contains(err.Error(), "the layout needs") {
				t.Fatalf("got %v", err)
			}
		})
	}

	few := table{nics: fourNICs()[:2]}
	c, _ = Parse("c.yaml", []byte(base))
	if _, err := c.Check(few); err == nil || !strings.Contains(err.Error(), "needs at least 3") {
		t.Fatalf("two NICs accepted: %v", err)
	}
}

func TestCheckLiveMachineMissingNIC(t *testing.T) {
	c, err := Parse("c.yaml", []byte(minimal+"nics:\n  scan: all\n  management: nosuchnic0\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Check(host.Live())
	if err == nil || !strings.Contains(err.Error(), "c.yaml:11: nics.management: no NIC name:nosuchnic0 on this machine") {
		t.Fatalf("got %v", err)
	}
}

func TestMountedDiskRefused(t *testing.T) {
	// The disk this test runs from is mounted: never a target.
	root := ""
	disks, _ := host.Live().Disks()
	for _, d := range disks {
		if why, _ := host.Live().InUse(d); len(why) > 0 {
			root = d.Path
		}
	}
	if root == "" {
		t.Skip("no mounted whole disk on this machine")
	}
	c, err := Parse("m.yaml", []byte(strings.Replace(minimal, "/dev/null", root, 1)+"wipe: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Check(table{nics: fourNICs()}); err == nil || !strings.Contains(err.Error(), "m.yaml:3: disk.target: disk "+root+" is in use by this system") {
		t.Fatalf("got %v", err)
	}
}

func TestDiskRule(t *testing.T) {
	m := table{nics: fourNICs(), disks: []host.Disk{
		{Path: "/dev/sda", Size: 120 << 30, Model: "Samsung SSD 860"},
		{Path: "/dev/sdb", Size: 2 << 40, Model: "WDC WD20"},
		{Path: "/dev/sdc", Size: 240 << 30, Model: "Samsung SSD 870"},
	}}
	rule := func(r string) error {
		c, err := Parse("r.yaml", []byte(strings.Replace(minimal, "target: /dev/null", "target: "+r, 1)))
		if err != nil {
			return err
		}
		res, err := c.Check(m)
		if err == nil && res.Disk.Path != "/dev/sdc" {
			t.Errorf("rule %s chose %s", r, res.Disk.Path)
		}
		return err
	}
	if err := rule(`{min_size: 200GiB, model: "Samsung*"}`); err != nil {
		t.Fatal(err)
	}
	if err := rule(`{min_size: 100GiB, model: "Samsung*"}`); err == nil || !strings.Contains(err.Error(), "matches 2 disks (/dev/sda, /dev/sdc)") {
		t.Fatalf("ambiguous rule: %v", err)
	}
	if err := rule(`{min_size: 4TiB}`); err == nil || !strings.Contains(err.Error(), "no disk matches") {
		t.Fatalf("unmatched rule: %v", err)
	}
}

func TestConfigSource(t *testing.T) {
	for _, v := range []string{"media:/ftvs/install.conf", "/ftvs/install.yaml", "http://10.0.0.1:8080/i.yaml", "tftp://10.0.0.1/ftvs/i.yaml"} {
		c, err := Parse("s.yaml", []byte(minimal+"config_source: "+v+"\n"))
		if err != nil || c.Source != v {
			t.Errorf("%s: %v", v, err)
		}
	}
	for _, v := range []string{"https://x/y", "media:relative", "gopher://x/y", "tftp://host"} {
		if _, err := Parse("s.yaml", []byte(minimal+"config_source: "+v+"\n")); err == nil || !strings.Contains(err.Error(), "s.yaml:9: config_source:") {
			t.Errorf("%s accepted: %v", v, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	c, err := Parse("p.yaml", []byte(minimal+"hwcheck:\n  policy: {version: 1, tolerate_unverified: [network]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Policy()
	if err != nil || !p.Tolerates("network") {
		t.Fatalf("inline policy: %v %v", p, err)
	}
	_, err = Parse("p.yaml", []byte(minimal+"hwcheck:\n  policy: {version: 7}\n"))
	if err == nil || !strings.Contains(err.Error(), "p.yaml:10: hwcheck.policy:") {
		t.Fatalf("bad inline policy: %v", err)
	}
	c, _ = Parse("p.yaml", []byte(strings.Replace(minimal, "/dev/null", diskFile(t, 1<<30), 1)+"hwcheck:\n  policy: /nonexistent/policy.yaml\n"))
	if _, err := c.Check(table{nics: fourNICs()}); err == nil || !strings.Contains(err.Error(), "p.yaml:10: hwcheck.policy: read policy") {
		t.Fatalf("missing policy file: %v", err)
	}
}

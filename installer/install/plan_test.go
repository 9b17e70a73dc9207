package install

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	cscfg "github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/host"
	"github.com/ftvs/ftvs/installer/layout"
	"github.com/ftvs/ftvs/installer/roles"
)

func nics(names ...string) []host.NIC {
	var out []host.NIC
	for i, n := range names {
		out = append(out, host.NIC{Name: n, MAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(i)}})
	}
	return out
}

func TestLinkAddrs(t *testing.T) {
	l, err := linkAddrs(netip.MustParsePrefix("169.254.77.0/24"), nics("a", "b"), 2)
	if err != nil {
		t.Fatal(err)
	}
	if l[0].Local.String() != "169.254.77.2/30" || l[0].Peer.String() != "169.254.77.1" ||
		l[1].Local.String() != "169.254.77.6/30" || l[1].Peer.String() != "169.254.77.5" {
		t.Fatalf("%+v", l)
	}
	if _, err := linkAddrs(netip.MustParsePrefix("10.9.9.0/30"), nics("a", "b"), 1); err == nil || !strings.Contains(err.Error(), "no room for link 1") {
		t.Fatalf("a /30 numbered two links: %v", err)
	}
}

func TestRuntimeConfigIsAcceptedByTheRuntime(t *testing.T) {
	c, err := config.Parse("c.yaml", []byte(`version: 1
addresses: {management: [10.0.0.11/24, 10.0.0.12/24]}
disk: {target: /dev/null}
virtual_disks: [{name: boot, size: 100MiB}, {name: data, size: 60MiB}]
vs: {mac: "02:f7:00:00:00:01", ip: 192.168.50.10/24, gateway: 192.168.50.1, services: [{name: http, port: 8080}, ftp, nbd]}
runtime: {timeouts: {heartbeat: 100ms, peer_dead: 2s}}
`))
	if err != nil {
		t.Fatal(err)
	}
	n := nics("nic0", "nic1", "nic2", "nic3")
	prop := &roles.Proposal{NICs: []roles.Assignment{
		{NIC: n[0], Role: config.RoleRedirected}, {NIC: n[1], Role: config.RoleCoServer},
		{NIC: n[2], Role: config.RoleManagement}, {NIC: n[3], Role: config.RoleCoServer}}}
	links, _ := linkAddrs(c.Addresses.CoServer, prop.CoServer(), 1)
	lay, _ := layout.PlanFor(c)
	p := &Plan{Node: 1, Roles: prop, Links: links, Management: c.Addresses.Management[0],
		PeerMgmt: c.Addresses.Management[1].Addr(), VS: c.VS, Layout: lay, Disk: host.Disk{Path: "/dev/sdz"}}
	b, err := runtimeConfig(p, c, make([]byte, 32), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rc, err := cscfg.Parse("rc.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Node != 1 || len(rc.Links) != 2 || rc.Links[1].Interface != "nic3" || rc.Links[1].Local != "169.254.77.5:7470" ||
		rc.Redirected.Interface != "nic0" || rc.Management.Listen != "10.0.0.11:7443" || rc.Management.Peer != "10.0.0.12:7443" ||
		rc.VS.Services.HTTP.Port != 8080 || rc.VS.Gateway != "192.168.50.1" || len(rc.Key()) != 32 ||
		rc.Timeouts.Heartbeat != 100*time.Millisecond || rc.Timeouts.PeerDead != 2*time.Second || rc.Timeouts.LinkDead != 120*time.Millisecond {
		t.Fatalf("runtime config:\n%s", b)
	}
	// The layout's virtual disks by byte range on the target: the first is
	// the boot disk HTTP and FTP serve, the second the NBD export.
	if len(rc.VS.Disks) != 2 || rc.BootDisk() != 0 || rc.VS.Content != "" {
		t.Fatalf("runtime disks %+v:\n%s", rc.VS.Disks, b)
	}
	for i, dk := range rc.VS.Disks {
		pt := lay.Parts[2+i]
		if dk.Path != "/dev/sdz" || dk.Offset != int64(pt.Start)*layout.SectorSize || dk.Size != int64(pt.Size) || dk.Name != pt.VDName {
			t.Errorf("vs.disks[%d] %+v, partition %+v", i, dk, pt)
		}
	}
	if rc.VS.Disks[0].ServeDir != "/www" || rc.VS.Disks[0].Export != "" || rc.VS.Disks[1].Export != "data" ||
		rc.VS.Services.FTP == nil || rc.VS.Services.FTP.Port != 21 || rc.VS.Services.NBD == nil {
		t.Fatalf("runtime VS:\n%s", b)
	}
	if !strings.Contains(p.Text(), "coserver link 2  nic3  169.254.77.5/30, peer 169.254.77.6") {
		t.Fatalf("plan text:\n%s", p.Text())
	}
}

// Package install runs the installer's steps in order — inventory, NICs
// (beacons, roles), pairing (hwcheck over the CoServer link), disk layout,
// runtime config, launch — logging each one, or with DryRun only prints
// the plan and changes nothing.
package install

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"text/tabwriter"

	"github.com/dustin/go-humanize"

	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/host"
	"github.com/ftvs/ftvs/installer/layout"
	"github.com/ftvs/ftvs/installer/roles"
)

// LinkAddr is one CoServer link's addresses.
type LinkAddr struct {
	NIC   host.NIC
	Local netip.Prefix
	Peer  netip.Addr
}

// Plan is everything the install will do on this node.
type Plan struct {
	NodeID     string
	Node       int
	PeerID     string
	Roles      *roles.Proposal
	Links      []LinkAddr
	Management netip.Prefix
	PeerMgmt   netip.Addr
	Gateway    netip.Addr
	VS         config.VS
	Disk       host.Disk
	DiskInUse  []layout.Signature
	Wipe       bool
	Layout     *layout.Plan
}

// linkAddrs numbers the CoServer links from the configured subnet: link i
// is the /30 at base+4i, node n is host n in it.
func linkAddrs(subnet netip.Prefix, nics []host.NIC, node int) ([]LinkAddr, error) {
	base := subnet.Masked().Addr().As4()
	var out []LinkAddr
	for i, n := range nics {
		host := func(k int) (netip.Addr, error) {
			v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
			v += uint32(4*i + k)
			a := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			if !subnet.Contains(a) {
				return a, fmt.Errorf("CoServer subnet %s has no room for link %d", subnet, i)
			}
			return a, nil
		}
		local, err := host(node)
		if err != nil {
			return nil, err
		}
		peer, err := host(3 - node)
		if err != nil {
			return nil, err
		}
		out = append(out, LinkAddr{NIC: n, Local: netip.PrefixFrom(local, 30), Peer: peer})
	}
	return out, nil
}

// Text renders the plan for the console.
func (p *Plan) Text() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Plan for node %d (%s), peer %s\n\n", p.Node, p.NodeID, p.PeerID)
	b.WriteString("NIC roles:\n")
	b.WriteString(indent(p.Roles.Table()))
	b.WriteString("\nAddresses:\n")
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	mg := p.Management.String()
	if p.Gateway.IsValid() {
		mg += " gateway " + p.Gateway.String()
	}
	if p.PeerMgmt.IsValid() {
		mg += ", peer " + p.PeerMgmt.String()
	}
	fmt.Fprintf(w, "  management\t%s\t%s\n", p.Roles.Management().Name, mg)
	for i, l := range p.Links {
		fmt.Fprintf(w, "  coserver link %d\t%s\t%s, peer %s\n", i+1, l.NIC.Name, l.Local, l.Peer)
	}
	vs := fmt.Sprintf("VS %s %s", p.VS.MAC, p.VS.IP)
	if p.VS.Gateway.IsValid() {
		vs += " gateway " + p.VS.Gateway.String()
	}
	vs += ", services " + strings.Join(p.VS.ServiceNames(), " ")
	fmt.Fprintf(w, "  redirected\t%s\t%s\n", p.Roles.Redirected().Name, vs)
	w.Flush()
	fmt.Fprintf(&b, "\nDisk %s (%s", p.Disk.Path, humanize.IBytes(p.Disk.Size))
	if p.Disk.Model != "" {
		fmt.Fprintf(&b, ", %s", p.Disk.Model)
	}
	b.WriteString("): ")
	switch {
	case len(p.DiskInUse) == 0:
		b.WriteString("unused\n")
	case p.Wipe:
		fmt.Fprintf(&b, "holds %s; will be WIPED (wipe: true)\n", layout.Describe(p.DiskInUse))
	default:
		fmt.Fprintf(&b, "holds %s; the install will refuse it unless wipe: true\n", layout.Describe(p.DiskInUse))
	}
	b.WriteString(indent(p.Layout.Table()))
	return b.String()
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

// Package roles decides what each NIC of a CoServer is for: one or two
// CoServer links (crossover cables to the peer), the redirected link (the
// VS's port on the production LAN) and the management link. Configured
// roles win; the rest comes from what the beacons heard.
package roles

import (
	"bytes"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ftvs/ftvs/installer/beacon"
	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/host"
)

// Assignment is one NIC with its role ("" = unused) and why.
type Assignment struct {
	NIC    host.NIC
	Role   config.Role
	Class  beacon.Class // "" when no beacons were exchanged
	Heard  string       // summary of what the NIC heard
	Reason string
}

// Proposal is this node's role for every NIC, in slot order.
type Proposal struct {
	NICs []Assignment
	Peer *beacon.Beacon // the peer heard on the first CoServer link (nil without beacons)
}

// MinNICs is the fewest NICs a CoServer can work with.
const MinNICs = 3

// Propose assigns the roles. obs may be nil when every role is configured.
func Propose(cfg *config.Config, res *config.Resolved, obs *beacon.Observation) (*Proposal, error) {
	if len(res.NICs) < MinNICs {
		return nil, fmt.Errorf("%d NICs; a CoServer needs at least %d (CoServer link, redirected, management)", len(res.NICs), MinNICs)
	}
	p := &Proposal{}
	heard := map[string]*beacon.Heard{}
	if obs != nil {
		for _, h := range obs.NICs {
			heard[h.NIC.SlotKey()] = h
		}
	}
	for _, n := range res.NICs {
		a := Assignment{NIC: n}
		if h := heard[n.SlotKey()]; h != nil {
			a.Class, a.Heard = h.Classify(), h.Summary()
		}
		p.NICs = append(p.NICs, a)
	}
	find := func(n host.NIC) *Assignment {
		for i := range p.NICs {
			if p.NICs[i].NIC.SlotKey() == n.SlotKey() {
				return &p.NICs[i]
			}
		}
		return nil
	}

	// Configured roles first.
	for _, n := range res.CoServer {
		a := find(n)
		if a.Class == beacon.Switched || a.Class == beacon.Looped {
			return nil, fmt.Errorf("NIC %s is configured as a CoServer link but is behind a switch (%s): CoServers must be cabled directly", n.Name, a.Heard)
		}
		a.Role, a.Reason = config.RoleCoServer, "configured"
	}
	if res.Redirected != nil {
		a := find(*res.Redirected)
		a.Role, a.Reason = config.RoleRedirected, "configured"
	}
	if res.Management != nil {
		a := find(*res.Management)
		a.Role, a.Reason = config.RoleManagement, "configured"
	}

	// CoServer links: crossover candidates, all to the same peer, slot order.
	if cfg.NICs.CoServer == nil {
		if obs == nil {
			return nil, fmt.Errorf("CoServer links are auto but no beacons were exchanged")
		}
		var peerID string
		for i := range p.NICs {
			a := &p.NICs[i]
			if a.Role != "" || a.Class != beacon.Crossover {
				continue
			}
			peer := heard[a.NIC.SlotKey()].Peer()
			if peerID == "" {
				peerID = peer.NodeID
			}
			if peer.NodeID != peerID || len(roleNICs(p, config.RoleCoServer)) == 2 {
				a.Reason = "crossover candidate, not needed"
				continue
			}
			a.Role, a.Reason = config.RoleCoServer, "hears only "+peer.NodeID
		}
		if len(roleNICs(p, config.RoleCoServer)) == 0 {
			return nil, fmt.Errorf("no crossover link to the peer found: no NIC hears the peer and nobody else\n%s", p.heardLines())
		}
	}
	if first := roleNICs(p, config.RoleCoServer); len(first) > 0 {
		if h := heard[first[0].SlotKey()]; h != nil {
			p.Peer = h.Peer()
		}
	}

	// Redirected and management: the subnet a NIC hears wins; otherwise the
	// remaining non-crossover NICs in slot order (management first).
	vsNet := cfg.VS.IP.Masked()
	var mgmtNet netip.Prefix
	if m, ok := cfg.Addresses.ManagementFor(1); ok {
		mgmtNet = m.Masked()
	}
	bySubnet := func(role config.Role, subnet netip.Prefix, what string) {
		if hasRole(p, role) || !subnet.IsValid() {
			return
		}
		for i := range p.NICs {
			a := &p.NICs[i]
			h := heard[a.NIC.SlotKey()]
			if a.Role != "" || h == nil {
				continue
			}
			for _, ad := range h.Addrs {
				if subnet.Contains(ad) {
					a.Role, a.Reason = role, fmt.Sprintf("hears %s in the %s subnet %s", ad, what, subnet)
					return
				}
			}
		}
	}
	bySubnet(config.RoleRedirected, vsNet, "VS")
	bySubnet(config.RoleManagement, mgmtNet, "management")
	for _, role := range []config.Role{config.RoleManagement, config.RoleRedirected} {
		if hasRole(p, role) {
			continue
		}
		if a := firstFree(p); a != nil {
			a.Role, a.Reason = role, "by slot order (no traffic identified it)"
			continue
		}
		return nil, fmt.Errorf("no NIC left for the %s role\n%s", role, p.heardLines())
	}
	return p, nil
}

// firstFree is the first unassigned NIC in slot order, preferring NICs
// behind a switch over silent ones and never a crossover if avoidable.
func firstFree(p *Proposal) *Assignment {
	for _, want := range []beacon.Class{beacon.Switched, "", beacon.Silent, beacon.Looped, beacon.Crossover} {
		for i := range p.NICs {
			if a := &p.NICs[i]; a.Role == "" && a.Class == want {
				return a
			}
		}
	}
	return nil
}

func hasRole(p *Proposal, r config.Role) bool { return len(roleNICs(p, r)) > 0 }

func roleNICs(p *Proposal, r config.Role) []host.NIC {
	var out []host.NIC
	for _, a := range p.NICs {
		if a.Role == r {
			out = append(out, a.NIC)
		}
	}
	return out
}

// CoServer returns the CoServer links, first one first.
func (p *Proposal) CoServer() []host.NIC { return roleNICs(p, config.RoleCoServer) }

// Redirected returns the redirected NIC.
func (p *Proposal) Redirected() host.NIC { return roleNICs(p, config.RoleRedirected)[0] }

// Management returns the management NIC.
func (p *Proposal) Management() host.NIC { return roleNICs(p, config.RoleManagement)[0] }

// Entries is the proposal as carried in beacons: role and slot key per NIC.
func (p *Proposal) Entries() []beacon.RoleEntry {
	var out []beacon.RoleEntry
	for _, a := range p.NICs {
		if a.Role != "" {
			out = append(out, beacon.RoleEntry{Role: string(a.Role), Slot: a.NIC.SlotKey()})
		}
	}
	return out
}

// Compare checks that the peer gives every slot the same role as we do:
// lockstep needs the two servers cabled the same way.
func Compare(local, peer []beacon.RoleEntry) error {
	m := func(es []beacon.RoleEntry) map[string]string {
		out := map[string]string{}
		for _, e := range es {
			out[e.Slot] = e.Role
		}
		return out
	}
	l, r := m(local), m(peer)
	slots := map[string]bool{}
	for s := range l {
		slots[s] = true
	}
	for s := range r {
		slots[s] = true
	}
	keys := make([]string, 0, len(slots))
	for s := range slots {
		keys = append(keys, s)
	}
	sort.Strings(keys)
	var diff []string
	for _, s := range keys {
		if l[s] != r[s] {
			diff = append(diff, fmt.Sprintf("  slot %s: here %s, peer %s", s, orUnused(l[s]), orUnused(r[s])))
		}
	}
	if len(diff) > 0 {
		return fmt.Errorf("the peer assigns different roles to the same slots (cable both servers the same way):\n%s", strings.Join(diff, "\n"))
	}
	return nil
}

func orUnused(s string) string {
	if s == "" {
		return "unused"
	}
	return s
}

// Table renders the proposal for the console.
func (p *Proposal) Table() string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NIC\tMAC\tSLOT\tROLE\tHEARD\tWHY")
	for _, a := range p.NICs {
		class := string(a.Class)
		if class == "" {
			class = "-"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", a.NIC.Name, a.NIC.MAC, a.NIC.SlotKey(), orUnused(string(a.Role)), class, a.Reason)
	}
	w.Flush()
	return b.String()
}

func (p *Proposal) heardLines() string {
	var s []string
	for _, a := range p.NICs {
		if a.Heard != "" {
			s = append(s, "  "+a.Heard)
		} else {
			s = append(s, "  "+a.NIC.Name+": no beacon data")
		}
	}
	return strings.Join(s, "\n")
}

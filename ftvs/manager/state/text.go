package state

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// WriteText prints a snapshot for a terminal (ftvs ctl status; ftvs status
// may use it too). lastEvents bounds the event lines (0: none).
func WriteText(w io.Writer, s *Snapshot, lastEvents int) error {
	var b strings.Builder
	for _, c := range s.CoServers {
		local := ""
		if c.Node == s.LocalNode {
			local = " (this node)"
		}
		svc := ""
		if !c.InService {
			svc = ", out of service"
		}
		ver := ""
		if c.Version != "" {
			ver = ", version " + c.Version
		}
		fmt.Fprintf(&b, "coserver %d%s: %s, %s%s%s\n", c.Node, local, c.Role, c.Health, svc, ver)
	}
	v := s.VS
	run := "not running"
	if v.Stopped {
		run = "stopped by the operator"
	}
	if v.Running {
		run = "running"
		if v.Serving {
			run = "serving"
		}
	}
	fmt.Fprintf(&b, "vs: %s on node %d (port on node %d), log %d, lag %d, %s\n", run, v.PrimaryNode, v.PortNode, v.LogPosition, v.Lag, v.Health)
	k := s.Counters
	fmt.Fprintf(&b, "vs figures: frames in %d out %d, bytes in %d out %d, failovers %d, resync bytes %d", k.FramesIn, k.FramesOut, k.BytesIn, k.BytesOut, k.Failovers, k.ResyncBytes)
	if h := k.OutputHold; h.Count > 0 {
		fmt.Fprintf(&b, ", output hold mean %s over %d", time.Duration(h.Sum/float64(h.Count)*1e9).Round(time.Microsecond), h.Count)
	}
	for _, name := range slices.Sorted(maps.Keys(k.ServiceRequests)) {
		fmt.Fprintf(&b, ", %s requests %d", name, k.ServiceRequests[name])
	}
	b.WriteByte('\n')
	for _, l := range s.Links {
		st := "down"
		if l.Up {
			st = fmt.Sprintf("up, rtt %dus", l.RTTUS)
		}
		if l.Active {
			st += ", active"
		}
		fmt.Fprintf(&b, "link %s: %s\n", l.Name, st)
	}
	for _, n := range s.NICs {
		st := "no carrier"
		if n.Carrier {
			st = "carrier"
		}
		if n.Active {
			st += ", carries the VS"
		}
		fmt.Fprintf(&b, "nic %s on node %d (%s): %s\n", n.Name, n.Node, n.Role, st)
	}
	for _, d := range s.Disks {
		st := d.State
		if !d.Attached {
			st += ", detached"
		}
		if d.Syncing {
			st += fmt.Sprintf(", syncing %.1f%% at %d B/s", d.Progress*100, d.RateBps)
		}
		fmt.Fprintf(&b, "disk %s on node %d: %s\n", d.Disk, d.Node, st)
	}
	if w := s.Witness; w.Configured {
		st := "unreachable"
		if w.Reachable {
			st = "reachable"
		}
		switch {
		case !w.Checked:
			st = "not asked yet"
		case !w.Reachable && w.LastError != "":
			st += " (" + w.LastError + ")"
		}
		fmt.Fprintf(&b, "witness %s: %s, lease holder %d\n", w.Address, st, w.LeaseHolder)
	}
	evs := s.Events
	if lastEvents >= 0 && len(evs) > lastEvents {
		evs = evs[len(evs)-lastEvents:]
	}
	if len(evs) > 0 {
		b.WriteString("events:\n")
	}
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s  %s", e.Time.UTC().Format(time.DateTime+".000"), e.Kind)
		if e.Component != "" {
			fmt.Fprintf(&b, " [%s]", e.Component)
		}
		if e.Detail != "" {
			b.WriteString("  " + e.Detail)
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

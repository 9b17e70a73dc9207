package state

import (
	"fmt"
	"time"
)

// Event kinds the Model derives from snapshot differences. The daemon's own
// events (divergence, split-brain, go-live, ...) pass through unchanged.
const (
	KindCoServerLost       = "coserver-lost"
	KindCoServerBack       = "coserver-back"
	KindLinkLost           = "link-lost"
	KindLinkBack           = "link-back"
	KindDiskDetached       = "disk-detached"
	KindResyncDone         = "resync-done"
	KindWitnessUnreachable = "witness-unreachable"
	KindWitnessBack        = "witness-back"
)

// Diff returns the operator-relevant changes from prev to cur, stamped at.
func Diff(prev, cur *Snapshot, at time.Time) []Event {
	var out []Event
	add := func(kind string, node int, comp, detail string) {
		out = append(out, Event{Time: at, Kind: kind, Node: node, Component: comp, Detail: detail})
	}
	for _, c := range cur.CoServers {
		p := prev.CoServer(c.Node)
		if p == nil {
			continue
		}
		comp := fmt.Sprintf("coserver%d", c.Node)
		if p.Health != Failed && c.Health == Failed {
			add(KindCoServerLost, c.Node, comp, "role was "+p.Role+", now "+c.Role)
		} else if p.Health == Failed && c.Health != Failed {
			add(KindCoServerBack, c.Node, comp, "role "+c.Role)
		}
	}
	for _, l := range cur.Links {
		for _, p := range prev.Links {
			if p.Name != l.Name {
				continue
			}
			if p.Up && !l.Up {
				add(KindLinkLost, 0, l.Name, "CoServer link down")
			} else if !p.Up && l.Up {
				add(KindLinkBack, 0, l.Name, fmt.Sprintf("CoServer link up, rtt %dus", l.RTTUS))
			}
		}
	}
	for _, d := range cur.Disks {
		for _, p := range prev.Disks {
			if p.Disk != d.Disk || p.Node != d.Node {
				continue
			}
			comp := fmt.Sprintf("disk %s on node %d", d.Disk, d.Node)
			if p.Attached && !d.Attached {
				add(KindDiskDetached, d.Node, comp, "copy detached, state "+d.State)
			}
			if d.ResyncsDone > p.ResyncsDone {
				// d is the resync's source: the copy made UpToDate is the other one.
				add(KindResyncDone, 3-d.Node, fmt.Sprintf("disk %s on node %d", d.Disk, 3-d.Node),
					fmt.Sprintf("copy is UpToDate (resynced from node %d)", d.Node))
			}
		}
	}
	// A witness is unreachable once asked and unanswered (also when it never
	// answered since the manager started); back once it answers again.
	if w, pw := cur.Witness, prev.Witness; w.Configured && w.Checked {
		if !w.Reachable && (pw.Reachable || !pw.Checked) {
			detail := "no answer from the witness"
			if w.LastError != "" {
				detail += ": " + w.LastError
			}
			add(KindWitnessUnreachable, 0, "witness "+w.Address, detail)
		} else if w.Reachable && pw.Checked && !pw.Reachable {
			add(KindWitnessBack, 0, "witness "+cur.Witness.Address, "witness answers again")
		}
	}
	return out
}

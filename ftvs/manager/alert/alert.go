// Package alert sends the events an operator must know about (a CoServer
// lost or back, a link lost, a divergence, a disk detached, a resync done, a
// split brain, the witness unreachable) to the channels operators already
// watch: SNMP traps, email, webhooks and syslog. The Dispatcher rate-limits
// per kind and never blocks its caller: each channel has a bounded queue and
// counts what it drops.
package alert

import (
	"fmt"
	"time"

	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// Kind is what happened. The values are the event kinds of ftvs/manager/state
// (derived ones) and of the daemon (divergence, split-brain).
type Kind string

const (
	CoServerLost       Kind = state.KindCoServerLost
	CoServerBack       Kind = state.KindCoServerBack
	LinkLost           Kind = state.KindLinkLost
	LinkBack           Kind = state.KindLinkBack
	Divergence         Kind = "divergence"
	DiskDetached       Kind = state.KindDiskDetached
	ResyncDone         Kind = state.KindResyncDone
	SplitBrain         Kind = "split-brain"
	WitnessUnreachable Kind = state.KindWitnessUnreachable
	WitnessBack        Kind = state.KindWitnessBack
)

// Severity orders alerts for the receivers that filter on it.
type Severity string

const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

type kindInfo struct {
	severity Severity
	trap     int // last arc of the notification OID in FTVS-MIB
	text     string
}

// kinds is the one table the channels and the MIB follow.
var kinds = map[Kind]kindInfo{
	CoServerLost:       {Critical, 1, "CoServer lost"},
	CoServerBack:       {Info, 2, "CoServer back"},
	LinkLost:           {Warning, 3, "CoServer link lost"},
	LinkBack:           {Info, 4, "CoServer link back"},
	Divergence:         {Critical, 5, "replica divergence"},
	DiskDetached:       {Critical, 6, "virtual disk copy detached"},
	ResyncDone:         {Info, 7, "resync done"},
	SplitBrain:         {Critical, 8, "split brain"},
	WitnessUnreachable: {Warning, 9, "witness unreachable"},
	WitnessBack:        {Info, 10, "witness reachable again"},
}

// Kinds lists every kind in MIB order.
func Kinds() []Kind {
	out := make([]Kind, len(kinds))
	for k, i := range kinds {
		out[i.trap-1] = k
	}
	return out
}

// Alert is one notification.
type Alert struct {
	Kind      Kind      `json:"kind"`
	Severity  Severity  `json:"severity"`
	Time      time.Time `json:"time"`
	Host      string    `json:"host,omitempty"` // the CoServer that sends it
	Node      int       `json:"node,omitempty"` // the node concerned, 0: the pair
	Component string    `json:"component,omitempty"`
	Detail    string    `json:"detail,omitempty"`
}

// Summary is a one-line description ("critical coserver-lost coserver2: ...").
func (a Alert) Summary() string {
	s := fmt.Sprintf("%s %s", a.Severity, kinds[a.Kind].text)
	if a.Component != "" {
		s += " (" + a.Component + ")"
	}
	if a.Detail != "" {
		s += ": " + a.Detail
	}
	return s
}

// FromEvent turns a state event into an alert when its kind is one an
// operator must hear about.
func FromEvent(host string, e state.Event) (Alert, bool) {
	info, ok := kinds[Kind(e.Kind)]
	if !ok {
		return Alert{}, false
	}
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	return Alert{Kind: Kind(e.Kind), Severity: info.severity, Time: t.UTC(), Host: host,
		Node: e.Node, Component: e.Component, Detail: e.Detail}, true
}

// New builds an alert of a kind now (for tests and for the daemon's own use).
func New(k Kind, node int, component, detail string) Alert {
	return Alert{Kind: k, Severity: kinds[k].severity, Time: time.Now().UTC(), Node: node, Component: component, Detail: detail}
}

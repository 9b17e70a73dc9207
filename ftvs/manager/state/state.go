// Package state is the manager's model of a CoServer pair: every component
// with its state and health, plus a bounded ring of recent events. The daemon
// feeds it through a Source; the API, the web page, the metrics and the
// alerts all read the same Model, so they never disagree.
package state

import "time"

// Health is the colour a component is drawn in.
type Health string

const (
	OK       Health = "ok"       // doing its job with redundancy
	Degraded Health = "degraded" // working without redundancy, or catching up
	Failed   Health = "failed"   // not working
	Unknown  Health = "unknown"  // no report yet
)

// CoServer is one of the two machines.
type CoServer struct {
	Node      int    `json:"node"` // 1 or 2
	Name      string `json:"name,omitempty"`
	Role      string `json:"role"` // primary, secondary, joining, deciding, out-of-service, lost
	Health    Health `json:"health"`
	Version   string `json:"version,omitempty"`
	InService bool   `json:"in_service"`
}

// Link is one CoServer link (the crossover cables between the pair).
type Link struct {
	Name   string `json:"name"`
	Up     bool   `json:"up"`
	Active bool   `json:"active"` // carries the log right now
	RTTUS  int64  `json:"rtt_us"`
	Health Health `json:"health"`
}

// NIC is a redirected (production) or management interface of one CoServer.
type NIC struct {
	Node    int    `json:"node"`
	Name    string `json:"name"`
	Role    string `json:"role"` // redirected or management
	Carrier bool   `json:"carrier"`
	Active  bool   `json:"active"` // redirected: the VS's frames leave here
	Health  Health `json:"health"`
}

// VS is the virtual server the pair runs.
type VS struct {
	Running     bool   `json:"running"`
	Stopped     bool   `json:"stopped,omitempty"` // the operator stopped it (ftvs ctl vs stop)
	Serving     bool   `json:"serving"`           // outputs leave (not fenced, a primary exists)
	PrimaryNode int    `json:"primary_node"`
	PortNode    int    `json:"port_node"` // whose redirected NIC carries its frames
	LogPosition uint64 `json:"log_position"`
	Lag         uint64 `json:"lag"` // inputs executed and not yet acked by the peer
	Health      Health `json:"health"`
}

// Disk copy states, as in ftvs/vdisk's metadata.
const (
	UpToDate     = "UpToDate"
	Outdated     = "Outdated"
	Inconsistent = "Inconsistent"
	Diskless     = "Diskless"
)

// DiskCopy is one CoServer's copy of one virtual disk.
type DiskCopy struct {
	Disk     string  `json:"disk"`
	Node     int     `json:"node"`
	State    string  `json:"state"` // UpToDate, Outdated, Inconsistent, Diskless
	Attached bool    `json:"attached"`
	Syncing  bool    `json:"syncing"`
	Progress float64 `json:"progress"` // 0..1 while syncing
	RateBps  int64   `json:"rate_bps"`
	Health   Health  `json:"health"`
	// ResyncsDone counts the resyncs this copy finished as the source
	// (since its daemon started): each increase is a resync-done event.
	ResyncsDone uint64 `json:"resyncs_done,omitempty"`
	Blocked     string `json:"blocked,omitempty"` // split brain or refusal awaiting the operator
}

// Witness is the lease service that decides for split-site pairs.
type Witness struct {
	Configured  bool   `json:"configured"`
	Address     string `json:"address,omitempty"`
	Checked     bool   `json:"checked"` // the primary asked it at least once
	Reachable   bool   `json:"reachable"`
	LastError   string `json:"last_error,omitempty"`
	LeaseHolder int    `json:"lease_holder"` // 0: nobody
	Health      Health `json:"health"`
}

// Event is one line of the pair's recent history.
type Event struct {
	Time      time.Time `json:"time"`
	Kind      string    `json:"kind"`
	Node      int       `json:"node,omitempty"`
	Component string    `json:"component,omitempty"` // "coserver2", "link1", "disk vd0 on node 1"
	Detail    string    `json:"detail,omitempty"`
}

// Histogram is a cumulative histogram as the runtime keeps it.
type Histogram struct {
	Bounds []float64 `json:"bounds"` // upper bounds, seconds, ascending
	Counts []uint64  `json:"counts"` // cumulative count per bound
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

// Counters are the runtime's monotonic figures, for the metrics.
type Counters struct {
	FramesIn        uint64            `json:"frames_in"`
	FramesOut       uint64            `json:"frames_out"`
	BytesIn         uint64            `json:"bytes_in"`
	BytesOut        uint64            `json:"bytes_out"`
	LinkBytesOut    uint64            `json:"link_bytes_out"`
	LinkBytesIn     uint64            `json:"link_bytes_in"`
	Divergences     uint64            `json:"divergences"`
	Failovers       uint64            `json:"failovers"`
	ResyncBytes     uint64            `json:"resync_bytes"`
	ServiceRequests map[string]uint64 `json:"service_requests,omitempty"`
	OutputHold      Histogram         `json:"output_hold"`
}

// Snapshot is the whole pair as one node sees it.
type Snapshot struct {
	Version   uint64     `json:"version"` // bumps on every change the Model sees
	At        time.Time  `json:"at"`
	LocalNode int        `json:"local_node"`
	CoServers []CoServer `json:"coservers"`
	Links     []Link     `json:"links"`
	NICs      []NIC      `json:"nics"`
	VS        VS         `json:"vs"`
	Disks     []DiskCopy `json:"disks"`
	Witness   Witness    `json:"witness"`
	Counters  Counters   `json:"counters"`
	Events    []Event    `json:"events"`
}

// CoServer returns the CoServer with the node number, or nil.
func (s *Snapshot) CoServer(node int) *CoServer {
	for i := range s.CoServers {
		if s.CoServers[i].Node == node {
			return &s.CoServers[i]
		}
	}
	return nil
}

// Clone returns a deep copy, so a Source may reuse its slices and callers
// of Model.Current may keep what they got.
func (s Snapshot) Clone() Snapshot {
	c := s
	c.CoServers = append([]CoServer(nil), s.CoServers...)
	c.Links = append([]Link(nil), s.Links...)
	c.NICs = append([]NIC(nil), s.NICs...)
	c.Disks = append([]DiskCopy(nil), s.Disks...)
	c.Events = append([]Event(nil), s.Events...)
	if s.Counters.ServiceRequests != nil {
		c.Counters.ServiceRequests = make(map[string]uint64, len(s.Counters.ServiceRequests))
		for k, v := range s.Counters.ServiceRequests {
			c.Counters.ServiceRequests[k] = v
		}
	}
	h := s.Counters.OutputHold
	c.Counters.OutputHold.Bounds = append([]float64(nil), h.Bounds...)
	c.Counters.OutputHold.Counts = append([]uint64(nil), h.Counts...)
	return c
}

// Package feed builds the manager's state model from the status the CoServer
// daemon already serves (GET /status on management.listen, ftvs/coserver's
// Status), so the manager runs against today's daemon: Poller is a
// state.Source that asks both CoServers. Status mirrors the daemon's JSON
// rather than importing it, so the two packages build independently; a test
// checks the field names against ftvs/coserver.
package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// Status is the daemon's /status answer (the fields the manager uses).
type Status struct {
	Node        int    `json:"node"`
	Role        string `json:"role"`
	Peer        string `json:"peer"`
	PeerAlive   bool   `json:"peer_alive"`
	PeerRole    string `json:"peer_role,omitempty"`
	Seq         uint64 `json:"seq"`
	PeerApplied uint64 `json:"peer_applied"`
	Lag         uint64 `json:"lag"`
	Divergences int    `json:"divergences"`
	Fenced      bool   `json:"fenced"`
	Links       []struct {
		Name   string `json:"name"`
		Up     bool   `json:"up"`
		Active bool   `json:"active"`
		RTTUS  int64  `json:"rtt_us"`
	} `json:"links"`
	Redirected struct {
		Interface string `json:"interface"`
		Carrier   bool   `json:"carrier"`
		ViaPeer   bool   `json:"via_peer"`
		RxFrames  uint64 `json:"rx_frames"`
		TxFrames  uint64 `json:"tx_frames"`
		RxBytes   uint64 `json:"rx_bytes"`
		TxBytes   uint64 `json:"tx_bytes"`
	} `json:"redirected"`
	Disks []struct {
		Name          string  `json:"name"`
		State         string  `json:"state"`
		Attached      bool    `json:"attached"`
		Syncing       bool    `json:"syncing"`
		Source        bool    `json:"source"`
		Progress      float64 `json:"progress"`
		RateBps       int64   `json:"rate_bps"`
		ResyncedBytes uint64  `json:"resynced_bytes"`
		ResyncsDone   uint64  `json:"resyncs_done"`
		Blocked       string  `json:"blocked,omitempty"`
	} `json:"disks,omitempty"`
	Witness *struct {
		Address   string    `json:"address"`
		Checked   bool      `json:"checked"`
		Reachable bool      `json:"reachable"`
		Holder    bool      `json:"holder"`
		LastError string    `json:"last_error,omitempty"`
		Last      time.Time `json:"last"`
	} `json:"witness,omitempty"`
	OutputHold struct {
		Bounds []float64 `json:"bounds"`
		Counts []uint64  `json:"counts"`
		Count  uint64    `json:"count"`
		SumS   float64   `json:"sum_s"`
	} `json:"output_hold"`
	Services     map[string]uint64 `json:"service_requests,omitempty"`
	Failovers    uint64            `json:"failovers"`
	ResyncBytes  uint64            `json:"resync_bytes"`
	LinkBytesOut uint64            `json:"link_bytes_out"`
	LinkBytesIn  uint64            `json:"link_bytes_in"`
	VSStopped    bool              `json:"vs_stopped,omitempty"`
	Events       []struct {
		Time   time.Time `json:"time"`
		Kind   string    `json:"kind"`
		Seq    uint64    `json:"seq,omitempty"`
		Detail string    `json:"detail,omitempty"`
	} `json:"events"`
}

func nodeHealth(s *Status) state.Health {
	switch {
	case s.Fenced:
		return state.Degraded
	case s.Role == "primary" && s.Peer == "synced":
		return state.OK
	case s.Role == "secondary":
		return state.OK
	default: // solo primary, joining, deciding
		return state.Degraded
	}
}

// Snapshot maps the local node's status, and the peer's when it answered
// (nil otherwise), onto the manager's model.
func Snapshot(local *Status, peer *Status) state.Snapshot {
	n, pn := local.Node, 3-local.Node
	s := state.Snapshot{LocalNode: n}
	s.CoServers = append(s.CoServers, state.CoServer{Node: n, Role: local.Role, Health: nodeHealth(local), InService: true})
	p := state.CoServer{Node: pn, InService: true}
	switch {
	case peer != nil:
		p.Role, p.Health = peer.Role, nodeHealth(peer)
	case local.PeerAlive:
		p.Role, p.Health = local.PeerRole, state.Degraded // alive on the links, management address silent
	default:
		p.Role, p.Health = "lost", state.Failed
	}
	s.CoServers = append(s.CoServers, p)
	for _, l := range local.Links {
		h := state.OK
		if !l.Up {
			h = state.Failed
		}
		s.Links = append(s.Links, state.Link{Name: l.Name, Up: l.Up, Active: l.Active, RTTUS: l.RTTUS, Health: h})
	}
	primary := local
	if local.Role != "primary" && peer != nil && peer.Role == "primary" {
		primary = peer
	}
	for _, st := range []*Status{local, peer} {
		if st == nil || st.Redirected.Interface == "" {
			continue
		}
		h := state.OK
		if !st.Redirected.Carrier {
			h = state.Failed
		}
		active := st == primary && st.Role == "primary" && !st.Redirected.ViaPeer
		s.NICs = append(s.NICs, state.NIC{Node: st.Node, Name: st.Redirected.Interface, Role: "redirected",
			Carrier: st.Redirected.Carrier, Active: active, Health: h})
	}
	if primary.Role == "primary" {
		s.VS = state.VS{Running: true, Serving: !primary.Fenced, PrimaryNode: primary.Node, PortNode: primary.Node,
			LogPosition: primary.Seq, Lag: primary.Lag, Health: nodeHealth(primary)}
		if primary.Redirected.ViaPeer {
			s.VS.PortNode = 3 - primary.Node
		}
	} else if local.VSStopped || (peer != nil && peer.VSStopped) {
		s.VS = state.VS{LogPosition: local.Seq, Health: state.Degraded, Stopped: true}
	} else {
		s.VS = state.VS{LogPosition: local.Seq, Health: state.Failed}
	}
	s.Counters.FramesIn, s.Counters.FramesOut = local.Redirected.RxFrames, local.Redirected.TxFrames
	s.Counters.BytesIn, s.Counters.BytesOut = local.Redirected.RxBytes, local.Redirected.TxBytes
	s.Counters.Divergences = uint64(max(local.Divergences, 0))
	s.Counters.Failovers = local.Failovers
	s.Counters.LinkBytesOut, s.Counters.LinkBytesIn = local.LinkBytesOut, local.LinkBytesIn
	// The VS's figures are the primary's: it holds the outputs and its
	// machine counts the requests that were answered.
	h := primary.OutputHold
	s.Counters.OutputHold = state.Histogram{Bounds: h.Bounds, Counts: h.Counts, Count: h.Count, Sum: h.SumS}
	s.Counters.ServiceRequests = primary.Services
	for _, st := range []*Status{local, peer} {
		if st == nil {
			continue
		}
		s.Counters.ResyncBytes += st.ResyncBytes
		for _, d := range st.Disks {
			s.Disks = append(s.Disks, state.DiskCopy{Disk: d.Name, Node: st.Node, State: d.State, Attached: d.Attached,
				Syncing: d.Syncing, Progress: d.Progress, RateBps: d.RateBps, Health: diskHealth(d.State, d.Attached, d.Syncing, d.Blocked),
				ResyncsDone: d.ResyncsDone, Blocked: d.Blocked})
		}
	}
	s.Witness = witness(local, peer)
	return s
}

func diskHealth(st string, attached, syncing bool, blocked string) state.Health {
	switch {
	case !attached || blocked != "":
		return state.Failed
	case st == state.UpToDate && !syncing:
		return state.OK
	case st == state.UpToDate, st == state.Outdated, st == state.Inconsistent:
		return state.Degraded // catching up, or waiting for its peer
	}
	return state.Unknown
}

// witness is the witness as the node that asked it last sees it: only the
// primary asks (a secondary asking would take the lease).
func witness(local, peer *Status) state.Witness {
	var w state.Witness
	var last time.Time
	for _, st := range []*Status{local, peer} {
		if st == nil || st.Witness == nil {
			continue
		}
		w.Configured, w.Address = true, st.Witness.Address
		if !st.Witness.Checked || (w.Checked && !st.Witness.Last.After(last)) {
			continue
		}
		last = st.Witness.Last
		w.Checked, w.Reachable, w.LastError, w.LeaseHolder = true, st.Witness.Reachable, st.Witness.LastError, 0
		if st.Witness.Holder {
			w.LeaseHolder = st.Node
		}
	}
	switch {
	case !w.Configured || !w.Checked:
		w.Health = state.Unknown
	case w.Reachable:
		w.Health = state.OK
	default:
		w.Health = state.Failed
	}
	return w
}

// AlertKind maps a daemon event kind onto the model's: a mirror's split
// brain is the pair's split-brain alert; the mirror's own detach report
// keeps its cause in the event list as disk-detach-cause, since the model
// derives disk-detached from the copy's state already (one alert per
// detach, from either CoServer's manager).
func AlertKind(kind string) string {
	switch kind {
	case "disk-split-brain":
		return "split-brain"
	case "disk-detached":
		return "disk-detach-cause"
	}
	return kind
}

// Poller is a state.Source over the daemons' /status endpoints.
type Poller struct {
	Local, Peer string // management host:port of this node and of the peer ("" if none)
	Client      *http.Client

	mu   sync.Mutex
	last time.Time // newest local event already forwarded
	evs  chan state.Event
	drop uint64
}

// NewPoller returns a Source polling the two addresses.
func NewPoller(local, peer string) *Poller {
	return &Poller{Local: local, Peer: peer, Client: &http.Client{Timeout: 2 * time.Second}, evs: make(chan state.Event, 256)}
}

// Events implements state.Source: the local daemon's new events.
func (p *Poller) Events() <-chan state.Event { return p.evs }

// Dropped counts events lost because nobody read Events.
func (p *Poller) Dropped() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drop
}

// Snapshot implements state.Source. An unreachable local daemon yields a
// snapshot with this node failed.
func (p *Poller) Snapshot() state.Snapshot {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	local, err := Fetch(ctx, p.Client, p.Local)
	if err != nil {
		return state.Snapshot{CoServers: []state.CoServer{{Node: 0, Role: "unreachable: " + err.Error(), Health: state.Failed}}}
	}
	var peer *Status
	if p.Peer != "" {
		peer, _ = Fetch(ctx, p.Client, p.Peer)
	}
	p.forward(local)
	return Snapshot(local, peer)
}

func (p *Poller) forward(st *Status) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range st.Events {
		if !e.Time.After(p.last) {
			continue
		}
		p.last = e.Time
		detail := e.Detail
		if e.Seq != 0 {
			detail += " (seq " + strconv.FormatUint(e.Seq, 10) + ")"
		}
		select {
		case p.evs <- state.Event{Time: e.Time, Kind: AlertKind(e.Kind), Node: st.Node, Component: "coserver" + strconv.Itoa(st.Node), Detail: detail}:
		default:
			p.drop++
		}
	}
}

// Fetch asks one daemon for its status.
func Fetch(ctx context.Context, c *http.Client, addr string) (*Status, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("status from %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status from %s: %s", addr, resp.Status)
	}
	st, err := Decode(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("status from %s: %w", addr, err)
	}
	return st, nil
}

// Decode reads one status document and checks what the mapping relies on.
func Decode(r io.Reader) (*Status, error) {
	var st Status
	if err := json.NewDecoder(r).Decode(&st); err != nil {
		return nil, err
	}
	if st.Node != 1 && st.Node != 2 {
		return nil, fmt.Errorf("node %d is not 1 or 2", st.Node)
	}
	if len(st.Links) > 16 || len(st.Events) > 4096 {
		return nil, fmt.Errorf("%d links, %d events: too many", len(st.Links), len(st.Events))
	}
	return &st, nil
}

package coserver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ftvs/ftvs/ftvs/lockstep"
)

// Status is what `ftvs status` shows: GET /status on management.listen.
type Status struct {
	Node        int          `json:"node"`
	Role        string       `json:"role"`                    // deciding, joining, secondary, primary, "fenced (split brain)"
	LiveSinceMS int64        `json:"live_since_ms,omitempty"` // when this node's VS went live (unix ms; splitheal.go)
	LeaseHeld   bool         `json:"lease_held,omitempty"`    // a primary holding the witness lease (splitheal.go)
	Peer        string       `json:"peer"`                    // primary's view of its secondary: none, joining, synced
	PeerAlive   bool         `json:"peer_alive"`
	PeerRole    string       `json:"peer_role,omitempty"`
	Seq         uint64       `json:"seq"`
	PeerApplied uint64       `json:"peer_applied"`
	Lag         uint64       `json:"lag"` // inputs executed and not yet acked by the peer
	LogEntries  int          `json:"log_entries"`
	HeldOutputs int          `json:"held_outputs"`
	Divergences int          `json:"divergences"`
	Snapshots   int          `json:"snapshots"`
	LastPauseUS int64        `json:"last_pause_us"`
	Fenced      bool         `json:"fenced"`
	Links       []LinkStatus `json:"links"`
	Redirected  PortStatus   `json:"redirected"`
	UptimeMS    int64        `json:"uptime_ms"`
	Events      []Event      `json:"events"`
	StateHash   string       `json:"state_hash,omitempty"` // only with ?hash=1

	// The manager's figures (figures.go).
	Disks        []DiskStatus      `json:"disks,omitempty"`
	Witness      *WitnessStatus    `json:"witness,omitempty"` // nil: none configured
	OutputHold   HoldHistogram     `json:"output_hold"`
	Services     map[string]uint64 `json:"service_requests,omitempty"` // the VS's, while primary
	Failovers    uint64            `json:"failovers"`
	ResyncBytes  uint64            `json:"resync_bytes"`
	LinkBytesOut uint64            `json:"link_bytes_out"` // every CoServer link, frames and acks
	LinkBytesIn  uint64            `json:"link_bytes_in"`
	VSStopped    bool              `json:"vs_stopped,omitempty"` // the operator stopped the VS (vsctl.go)
	VSStoppedAt  time.Time         `json:"vs_stopped_at,omitzero"`
	VSStartedAt  time.Time         `json:"vs_started_at,omitzero"` // the operator's last VS start
}

// LinkStatus is one CoServer link.
type LinkStatus struct {
	Name      string `json:"name"`
	Up        bool   `json:"up"`
	Active    bool   `json:"active"`
	RTTUS     int64  `json:"rtt_us"`
	AuthFails int    `json:"auth_fails"`
}

// PortStatus is the redirected NIC.
type PortStatus struct {
	Interface  string `json:"interface"`
	Carrier    bool   `json:"carrier"`
	ViaPeer    bool   `json:"via_peer"`    // our VS's frames use the peer's NIC
	PeerViaUs  bool   `json:"peer_via_us"` // we carry the peer's VS frames
	RxFrames   uint64 `json:"rx_frames"`
	TxFrames   uint64 `json:"tx_frames"`
	RxBytes    uint64 `json:"rx_bytes"`
	TxBytes    uint64 `json:"tx_bytes"`
	Submitted  uint64 `json:"submitted"`
	Dropped    uint64 `json:"dropped"` // read while not primary, or refused
	FencedDrop uint64 `json:"fenced_drop"`
	RelayOut   uint64 `json:"relay_out"`
	RelayIn    uint64 `json:"relay_in"`
	RelayDrop  uint64 `json:"relay_drop"`
}

// Event is one line of the node's recent history.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Seq    uint64    `json:"seq,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Repeat int       `json:"repeat,omitempty"` // the same event again this many times (Time is the last)
}

const maxEvents = 64

type eventRing struct {
	mu  sync.Mutex
	evs []Event
}

func (d *Daemon) addEvent(kind string, seq uint64, detail string) {
	r := &d.events
	r.mu.Lock()
	if n := len(r.evs); n > 0 && r.evs[n-1].Kind == kind && r.evs[n-1].Detail == detail {
		r.evs[n-1].Repeat++
		r.evs[n-1].Time, r.evs[n-1].Seq = time.Now().UTC(), seq
		r.mu.Unlock()
		return
	}
	if len(r.evs) == maxEvents {
		copy(r.evs, r.evs[1:])
		r.evs = r.evs[:maxEvents-1]
	}
	r.evs = append(r.evs, Event{Time: time.Now().UTC(), Kind: kind, Seq: seq, Detail: detail})
	r.mu.Unlock()
}

// Status reports the daemon's state.
func (d *Daemon) Status(withHash bool) Status {
	st := Status{Node: d.cfg.Node, Role: "deciding", Fenced: d.fenced.Load() || d.split.fenced.Load(), UptimeMS: time.Since(d.started).Milliseconds()}
	if n := d.node.Load(); n != nil {
		ns := n.Status()
		st.Role, st.Peer, st.Seq, st.PeerApplied = ns.Role.String(), ns.Peer.String(), ns.Seq, ns.PeerApplied
		if ns.Peer.String() != "none" && ns.Seq > ns.PeerApplied {
			st.Lag = ns.Seq - ns.PeerApplied
		}
		st.LogEntries, st.HeldOutputs, st.Divergences, st.Snapshots = ns.LogEntries, ns.HeldOutputs, ns.Divergences, ns.Snapshots
		st.LastPauseUS = ns.LastPause.Microseconds()
		if ns.Role == lockstep.RolePrimary {
			st.LiveSinceMS, st.LeaseHeld = d.split.liveSince.Load(), d.split.leaseHeld.Load()
			if d.split.fenced.Load() {
				st.Role = roleFenced
			}
		}
		if withHash {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if seq, h, err := n.StateHash(ctx); err == nil {
				st.StateHash = fmt.Sprintf("%d:%016x", seq, h)
			}
			cancel()
		}
	}
	if pr := d.peerRole.Load(); pr == 0 {
		st.PeerRole = "deciding"
	} else if pr > 0 {
		st.PeerRole = roleName(pr)
	}
	ls := d.sess.Status()
	st.PeerAlive = ls.PeerAlive
	st.LinkBytesOut, st.LinkBytesIn = ls.BytesOut, ls.BytesIn
	for _, l := range ls.Links {
		st.Links = append(st.Links, LinkStatus{Name: l.Name, Up: l.Up, Active: l.Active, RTTUS: l.RTT.Microseconds(), AuthFails: l.AuthFails})
	}
	d.portMu.Lock()
	ps := d.port.Stats()
	d.portMu.Unlock()
	st.Redirected = PortStatus{Interface: d.cfg.Redirected.Interface, Carrier: d.relay.carrier.Load(),
		ViaPeer: d.relay.viaPeer.Load(), PeerViaUs: d.relay.peerViaUs.Load(),
		RxFrames: ps.RxFrames, TxFrames: ps.TxFrames, RxBytes: ps.RxBytes, TxBytes: ps.TxBytes,
		Submitted: d.stats.submitted.Load(), Dropped: d.stats.submitDrop.Load(), FencedDrop: d.stats.fencedDrop.Load(),
		RelayOut: d.relay.out.Load(), RelayIn: d.relay.in.Load(), RelayDrop: d.relay.drops.Load()}
	d.events.mu.Lock()
	st.Events = append([]Event(nil), d.events.evs...)
	d.events.mu.Unlock()
	d.addFigures(&st)
	return st
}

func roleName(r int32) string {
	switch r {
	case 1:
		return "joining"
	case 2:
		return "secondary"
	case 3:
		return "primary"
	}
	return fmt.Sprintf("role(%d)", r)
}

type statusServer struct {
	ln  net.Listener
	srv *http.Server
}

// listenStatus binds the status endpoint to the management address only.
func listenStatus(addr string, d *Daemon) (*statusServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(d.Status(r.URL.Query().Get("hash") == "1"))
	})
	mux.HandleFunc("POST /drop", d.handleDrop)
	mux.HandleFunc("POST /ctl", d.handleCtl)
	return &statusServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}}, nil
}

func (s *statusServer) Serve() error {
	if err := s.srv.Serve(s.ln); err != http.ErrServerClosed {
		return fmt.Errorf("status endpoint: %w", err)
	}
	return nil
}

func (s *statusServer) Close() error { return s.srv.Close() }

// FetchStatus reads a daemon's status from its management address.
func FetchStatus(addr string, timeout time.Duration, withHash bool) (*Status, error) {
	c := http.Client{Timeout: timeout}
	u := "http://" + addr + "/status"
	if withHash {
		u += "?hash=1"
	}
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("status from %s: %w", addr, err)
	}
	var st Status
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("status from %s: %w", addr, err)
	}
	return &st, nil
}

// keepLease renews the witness lease while this node is primary and fences
// the VS (no frames leave) when the lease has lapsed while the peer is
// silent: then the witness may have granted it to the peer.
func (d *Daemon) keepLease(ctx context.Context) {
	ttl := d.lease.TTL()
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	var validUntil time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		n := d.node.Load()
		if n == nil || n.Status().Role.String() != "primary" {
			d.fenced.Store(false)
			d.split.leaseHeld.Store(false)
			continue
		}
		t := time.Now()
		ok, err := d.lease.Acquire(ttl / 4)
		if ok {
			validUntil = t.Add(ttl)
		}
		d.figs.noteWitness(d.cfg.Witness, ok, err, t)
		// Fence half a TTL early: renewals come every quarter TTL, and the
		// witness counts the lease from when it received the request.
		lapsed := time.Now().After(validUntil.Add(-ttl / 2))
		d.split.leaseHeld.Store(!lapsed)
		fence := lapsed && !d.sess.Status().PeerAlive
		if d.fenced.Swap(fence) != fence {
			if fence {
				d.addEvent("fenced", 0, "witness lease lapsed while the peer is silent: emitting nothing")
			} else {
				d.addEvent("unfenced", 0, "lease held again or peer back")
			}
		}
	}
}

package coserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/ftvs/ftvs/ftvs/lockstep"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/manager"
	"github.com/ftvs/ftvs/ftvs/manager/feed"
	"github.com/ftvs/ftvs/ftvs/manager/state"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// OutOfServiceFile, in the config's state_dir, keeps a CoServer out of
// service across restarts until an operator brings it back.
const OutOfServiceFile = "out-of-service"

// OutOfService reports whether the operator took this CoServer out of service.
func OutOfService(cfg *config.Config) bool {
	_, err := os.Stat(filepath.Join(cfg.StateDir, OutOfServiceFile))
	return err == nil
}

// ManageOptions are what the manager needs beyond the config.
type ManageOptions struct {
	Version string // this binary's version, shown per CoServer
	// Exe is the path this process was started from: taking the CoServer
	// out of service or back re-executes it, so a binary renamed over it
	// (a rolling upgrade) is what runs next.
	Exe string
	Log *slog.Logger
}

// StartManager starts the manager of a running daemon when the config has
// a manager section (nil, nil otherwise). It stops when ctx ends; call Wait.
func (d *Daemon) StartManager(ctx context.Context, o ManageOptions) (*manager.Manager, error) {
	if d.cfg.Manager.Listen == "" {
		return nil, nil
	}
	if o.Exe != "" {
		exe := o.Exe
		d.ctl.exe.Store(&exe)
	}
	src := newSource(d.cfg, o.Version, func() *feed.Status { return d.feedStatus() })
	return manager.Start(ctx, manager.Options{Sections: d.cfg.Sections, Host: "coserver" + strconv.Itoa(d.cfg.Node),
		Source: src, Control: &controller{cfg: d.cfg, o: o, d: d}, Log: o.Log})
}

// feedStatus is the daemon's status as the manager's feed reads it.
func (d *Daemon) feedStatus() *feed.Status { return feedOf(d.Status(false), "unknown") }

// feedOf is st as the manager's feed reads it (the same JSON the management
// endpoint serves, decoded in-process); role stands in when that fails.
func feedOf(st Status, role string) *feed.Status {
	b, err := json.Marshal(st)
	if err != nil {
		return &feed.Status{Node: st.Node, Role: role}
	}
	fs, err := feed.Decode(bytes.NewReader(b))
	if err != nil {
		return &feed.Status{Node: st.Node, Role: role}
	}
	return fs
}

// source is the manager's state.Source in the daemon: the local status
// in-process, the peer's over the management network.
type source struct {
	cfg     *config.Config
	version string
	local   func() *feed.Status
	client  *http.Client

	mu   sync.Mutex
	last time.Time
	evs  chan state.Event
}

func newSource(cfg *config.Config, version string, local func() *feed.Status) *source {
	return &source{cfg: cfg, version: version, local: local,
		client: &http.Client{Timeout: time.Second}, evs: make(chan state.Event, 256)}
}

func (s *source) Events() <-chan state.Event { return s.evs }

func (s *source) Snapshot() state.Snapshot {
	local := s.local()
	var peer *feed.Status
	if s.cfg.Management.Peer != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		peer, _ = feed.Fetch(ctx, s.client, s.cfg.Management.Peer)
		cancel()
	}
	s.forward(local)
	snap := feed.Snapshot(local, peer)
	for i := range snap.CoServers {
		c := &snap.CoServers[i]
		c.Name = "coserver" + strconv.Itoa(c.Node)
		if c.Node == s.cfg.Node {
			c.Version = s.version
		}
		if c.Role == roleOutOfService {
			c.InService, c.Health = false, state.Degraded
		}
	}
	return snap
}

func (s *source) forward(st *feed.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range st.Events {
		if !e.Time.After(s.last) {
			continue
		}
		s.last = e.Time
		detail := e.Detail
		if e.Seq != 0 {
			detail += " (seq " + strconv.FormatUint(e.Seq, 10) + ")"
		}
		select {
		case s.evs <- state.Event{Time: e.Time, Kind: feed.AlertKind(e.Kind), Node: st.Node, Component: "coserver" + strconv.Itoa(st.Node), Detail: detail}:
		default: // the model is behind: the snapshot still carries the state
		}
	}
}

const roleOutOfService = "out-of-service"

// controller carries out the operator's controls on this CoServer. A
// control aimed at the other CoServer is refused with where to send it:
// each CoServer's API acts on its own node.
type controller struct {
	cfg *config.Config
	o   ManageOptions
	d   *Daemon // nil while out of service

	mu        sync.Mutex
	verifying map[string]bool // disks with a verify running
}

func (c *controller) local(node int, what string) error {
	if node != c.cfg.Node {
		return fmt.Errorf("%s of CoServer %d: send it to CoServer %d's API (this is CoServer %d; management peer %s)",
			what, node, node, c.cfg.Node, c.cfg.Management.Peer)
	}
	return nil
}

// SetInService leaves the pair (out) or rejoins it (in) by re-executing
// the daemon: out of service it serves only status and the API, holds no
// link and no port, and the peer carries on solo; back in service it
// starts as a restarted node does and joins the running primary by
// snapshot. The state survives restarts (a file in state_dir).
func (c *controller) SetInService(ctx context.Context, node int, in bool) error {
	if err := c.local(node, "service change"); err != nil {
		return err
	}
	marker := filepath.Join(c.cfg.StateDir, OutOfServiceFile)
	if in {
		if c.d != nil {
			return nil // already in service
		}
		if err := c.startCheck(ctx); err != nil {
			return fmt.Errorf("staying out of service: %w", err)
		}
		if err := os.Remove(marker); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("bring back into service: %w", err)
		}
	} else {
		if c.d == nil {
			return nil
		}
		if err := os.MkdirAll(c.cfg.StateDir, 0o755); err != nil {
			return fmt.Errorf("take out of service: %w", err)
		}
		if err := os.WriteFile(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
			return fmt.Errorf("take out of service: %w", err)
		}
	}
	if c.o.Exe == "" {
		return errors.New("service change: the daemon's executable path is unknown")
	}
	if _, err := os.Stat(c.o.Exe); err != nil {
		return fmt.Errorf("service change: the daemon's executable: %w", err)
	}
	var leave func()
	if c.d != nil {
		leave = c.d.leave
	}
	reexec(c.o.Exe, c.o.Log, "in service: "+strconv.FormatBool(in), leave)
	return nil
}

// startCheck runs the executable this daemon is about to re-execute (a
// rolling upgrade may have renamed a new one over it) with --check: a binary
// that cannot start is refused here, while this process can still answer,
// instead of leaving the CoServer dead after the exec.
func (c *controller) startCheck(ctx context.Context) error {
	if c.o.Exe == "" || len(os.Args) < 2 {
		return errors.New("start check: the daemon's executable path is unknown")
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.o.Exe, append(os.Args[1:], "--check")...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("start check of %s failed (%w): %s", c.o.Exe, err, lastLine(out))
	}
	return nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// MovePort sends the VS's frames out of node's redirected NIC. Only the
// primary can: it relays its frames through the CoServer link to the
// peer's NIC, as when its own NIC loses carrier, and tells the peer to hand
// it what the VS receives there; a gratuitous ARP teaches the LAN's
// switches the new port. If the peer is lost meanwhile the frames come
// back to this node's NIC.
func (c *controller) MovePort(ctx context.Context, node int) error {
	d := c.d
	if node != 1 && node != 2 {
		return fmt.Errorf("move port: node %d: must be 1 or 2", node)
	}
	if d == nil {
		return errors.New("move port: this CoServer is out of service")
	}
	n := d.node.Load()
	if n == nil || n.Status().Role != lockstep.RolePrimary {
		return fmt.Errorf("move port: CoServer %d is not the primary; send it to the primary's API (management peer %s)", c.cfg.Node, c.cfg.Management.Peer)
	}
	toPeer := node != c.cfg.Node
	if toPeer && !d.sess.Status().PeerAlive {
		return fmt.Errorf("move port to CoServer %d: it is not reachable over the CoServer links", node)
	}
	if toPeer && !d.relay.carrier.Load() {
		return nil // already there: our NIC has no carrier
	}
	if !toPeer && !d.relay.carrier.Load() {
		return fmt.Errorf("move port to CoServer %d: its redirected NIC %s has no carrier", node, c.cfg.Redirected.Interface)
	}
	if d.relay.viaPeer.Swap(toPeer) == toPeer {
		return nil
	}
	_ = d.sess.Send(msgCarrier, []byte{b2u(!toPeer)})
	d.addEvent("port-moved", 0, fmt.Sprintf("VS frames now leave on CoServer %d's redirected NIC (operator)", node))
	garp(d)
	if toPeer {
		go c.watchMovedPort()
	}
	return nil
}

// garp has the primary announce the VS MAC where its frames now leave: at
// once and twice shortly after (a NIC whose carrier has just come back may
// not send the first).
func garp(d *Daemon) {
	for _, after := range []time.Duration{0, 100 * time.Millisecond, time.Second} {
		time.AfterFunc(after, func() {
			if n := d.node.Load(); n != nil && n.Status().Role == lockstep.RolePrimary {
				_ = n.Submit(context.Background(), machine.InCommand, machine.GratuitousARPCommand())
			}
		})
	}
}

// watchMovedPort brings the port back when the peer that carries it is
// lost (while our own NIC has carrier).
func (c *controller) watchMovedPort() {
	d := c.d
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		if !d.relay.viaPeer.Load() {
			return
		}
		if !d.sess.Status().PeerAlive && d.relay.carrier.Load() {
			if d.relay.viaPeer.CompareAndSwap(true, false) {
				d.addEvent("port-moved", 0, "the peer carrying the VS port is lost: back on this CoServer's NIC")
				garp(d)
			}
			return
		}
	}
}

// StartVS boots the VS again after an operator's stop (vsctl.go): both
// CoServers leave the stopped state, the last primary boots the VS fresh
// from its disks and config and the other joins it. The peer is told over
// the management network; if it cannot be reached it starts when it sees
// this node running (its stopped-state watch).
func (c *controller) StartVS(ctx context.Context) error {
	if c.d != nil {
		return nil // running
	}
	stop, ok := readVSStop(c.cfg)
	if !ok {
		return fmt.Errorf("start VS: CoServer %d is out of service, not stopped; bring it back into service", c.cfg.Node)
	}
	if OutOfService(c.cfg) {
		return fmt.Errorf("start VS: CoServer %d is also out of service; bring it back into service first", c.cfg.Node)
	}
	at := time.Now().UTC()
	if err := recordVSStart(c.cfg, at, stop.LastPrimary); err != nil {
		return err
	}
	if err := sendCtl(c.cfg, ctlNotice{Action: "vs-start", AtMS: at.UnixMilli(), LastPrimary: stop.LastPrimary}); err != nil {
		c.o.Log.Warn("coserver: VS start not delivered to the peer; it starts when it sees this node run", "err", err)
	}
	reexec(c.o.Exe, c.o.Log, "VS start", nil)
	return nil
}

// StopVS stops the VS on both CoServers (vsctl.go). The peer must confirm
// when it is alive on the CoServer links: otherwise it would carry on
// alone and the VS would go on serving.
func (c *controller) StopVS(ctx context.Context) error {
	d := c.d
	if d == nil {
		if VSStopped(c.cfg) {
			return nil
		}
		return fmt.Errorf("stop VS: CoServer %d is out of service; send it to CoServer %d's API", c.cfg.Node, 3-c.cfg.Node)
	}
	if d.ctl.stopping.Load() {
		return nil
	}
	last := 0
	if d.isPrimary() {
		last = c.cfg.Node
	} else if d.peerRole.Load() == int32(lockstep.RolePrimary) {
		last = 3 - c.cfg.Node
	}
	at := time.Now().UTC()
	if err := writeVSStop(c.cfg, vsStop{At: at, LastPrimary: last}); err != nil {
		return fmt.Errorf("stop VS: %w", err)
	}
	if err := sendCtl(c.cfg, ctlNotice{Action: "vs-stop", AtMS: at.UnixMilli(), LastPrimary: last}); err != nil {
		if d.sess.Status().PeerAlive {
			_ = os.Remove(filepath.Join(c.cfg.StateDir, VSStoppedFile))
			return fmt.Errorf("stop VS: the peer runs and did not confirm: %w", err)
		}
		c.o.Log.Warn("coserver: VS stop not delivered to the lost peer; it adopts the stop when it starts", "err", err)
	}
	d.addEvent("vs-stop", 0, "the operator stopped the VS")
	go d.stopVS()
	return nil
}

// StartResync resynchronises a copy from the primary's: the copy of the
// CoServer that is not the primary becomes the target of the regions the
// last online verify found different (all of it when none is known) and
// rejoins (vsctl.go). At the primary's API the request goes to the peer.
func (c *controller) StartResync(ctx context.Context, disk string) error {
	d := c.d
	if d == nil {
		return fmt.Errorf("resync %s: CoServer %d is out of service or the VS is stopped", disk, c.cfg.Node)
	}
	if _, err := d.diskIndex(disk); err != nil {
		return fmt.Errorf("resync: %w", err)
	}
	d.ctl.mu.Lock()
	ranges := d.ctl.mismatch[disk]
	delete(d.ctl.mismatch, disk)
	d.ctl.mu.Unlock()
	if d.isPrimary() {
		if !d.sess.Status().PeerAlive {
			return fmt.Errorf("resync %s: the peer is lost; its copy resyncs when it is back", disk)
		}
		if err := sendCtl(c.cfg, ctlNotice{Action: "resync", Disk: disk, Ranges: ranges}); err != nil {
			return fmt.Errorf("resync %s: %w", disk, err)
		}
		d.addEvent("resync-requested", 0, fmt.Sprintf("%s: CoServer %d's copy resyncs from this one", disk, 3-c.cfg.Node))
		return nil
	}
	return d.requestResync(disk, ranges)
}

// StartVerify compares this CoServer's copy of disk with the peer's by
// per-region checksums while the VS runs; the result is an event
// (verify-done, or verify-mismatch with the differing ranges).
func (c *controller) StartVerify(ctx context.Context, disk string) error {
	d := c.d
	if d == nil {
		return errors.New("verify: this CoServer is out of service")
	}
	idx := -1
	var names []string
	for i, dc := range d.cfg.VS.Disks {
		names = append(names, dc.Name)
		if dc.Name == disk {
			idx = i
		}
	}
	if idx < 0 || d.disks == nil || idx >= len(d.disks.ms) {
		return fmt.Errorf("verify: no disk %q in vs.disks (have %v)", disk, names)
	}
	m := d.disks.ms[idx]
	if m.Detached() {
		return fmt.Errorf("verify %s: this CoServer's copy is detached", disk)
	}
	c.mu.Lock()
	if c.verifying == nil {
		c.verifying = map[string]bool{}
	}
	busy := c.verifying[disk]
	c.verifying[disk] = true
	c.mu.Unlock()
	if busy {
		return fmt.Errorf("verify %s: already running", disk)
	}
	d.addEvent("verify-start", 0, disk)
	go func() {
		defer func() { c.mu.Lock(); delete(c.verifying, disk); c.mu.Unlock() }()
		t0 := time.Now()
		diff, err := m.Verify(context.Background(), vdisk.VerifyOptions{})
		switch {
		case err != nil:
			d.addEvent("verify-failed", 0, disk+": "+err.Error())
		case len(diff) == 0:
			d.addEvent("verify-done", 0, fmt.Sprintf("%s: copies identical (%d bytes in %s)", disk, m.Size(), time.Since(t0).Round(time.Millisecond)))
		default:
			rs := make([][2]int64, len(diff))
			for i, r := range diff {
				rs[i] = [2]int64{r.Off, r.Len}
			}
			d.ctl.mu.Lock()
			if d.ctl.mismatch == nil {
				d.ctl.mismatch = map[string][][2]int64{}
			}
			d.ctl.mismatch[disk] = rs
			d.ctl.mu.Unlock()
			d.addEvent("verify-mismatch", 0, fmt.Sprintf("%s: %d ranges differ, first at byte %d (%d bytes); ftvs ctl resync %s copies them", disk, len(diff), diff[0].Off, diff[0].Len, disk))
		}
	}()
	return nil
}

// ResolveSplitBrain: the node that is not the survivor drops its VS and
// rejoins from the survivor's snapshot (a re-execution, as back into
// service); its disk copies blocked by a split brain are marked
// discard-my-data first, so the disks' meeting resyncs them from the
// survivor's. The survivor keeps running; at its API the request goes on to
// the peer.
func (c *controller) ResolveSplitBrain(ctx context.Context, survivor int) error {
	if survivor != 1 && survivor != 2 {
		return fmt.Errorf("resolve split brain: survivor %d: must be 1 or 2", survivor)
	}
	if c.d == nil {
		return errors.New("resolve split brain: this CoServer is out of service or its VS is stopped; bring it back instead")
	}
	if survivor == c.cfg.Node {
		// The victim is the peer: it discards there.
		if err := sendCtl(c.cfg, ctlNotice{Action: "discard"}); err != nil {
			return fmt.Errorf("resolve split brain keeping CoServer %d: %w", survivor, err)
		}
		c.d.addEvent("split-brain-resolved", 0, fmt.Sprintf("keeping this node's data: CoServer %d discards its own", 3-survivor))
		return nil
	}
	c.o.Log.Warn("coserver: split brain resolved for the peer: discarding this VS and rejoining", "survivor", survivor)
	c.d.discardAndRejoin(survivor)
	return nil
}

// RunOutOfService serves a CoServer that is out of service, or whose VS
// the operator stopped: its status (role out-of-service or vs-stopped) on
// management.listen, so the peer's split-brain guard and `ftvs status` see
// it, and the manager API, where the only controls it takes are bringing
// it back and starting the VS. It holds no link and no port.
func RunOutOfService(ctx context.Context, cfg *config.Config, o ManageOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := time.Now()
	role, why := roleOutOfService, "taken out of service by the operator"
	stop, stopped := readVSStop(cfg)
	if !OutOfService(cfg) && stopped {
		role, why = roleVSStopped, "the operator stopped the VS"
	}
	status := func() Status {
		st := Status{Node: cfg.Node, Role: role, UptimeMS: time.Since(started).Milliseconds(),
			Redirected: PortStatus{Interface: cfg.Redirected.Interface},
			Events:     []Event{{Time: started.UTC(), Kind: role, Detail: why}}}
		if stopped {
			st.VSStopped, st.VSStoppedAt = true, stop.At
		}
		st.VSStartedAt = readVSStarted(cfg)
		return st
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(status())
	})
	// A primary's drop notice: this node holds no log at all and rejoins
	// from a snapshot when brought back, so it is already what the notice
	// asks for.
	mux.HandleFunc("POST /drop", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	var ctl ctlState
	mux.HandleFunc("POST /ctl", serveCtl(cfg, &ctl, o.Log, func(n *ctlNotice) error {
		switch {
		case n.Action == "vs-start" && role == roleVSStopped:
			if err := recordVSStart(cfg, time.UnixMilli(n.AtMS).UTC(), n.LastPrimary); err != nil {
				return err
			}
			reexec(o.Exe, o.Log, "VS start (at the peer)", nil)
		case n.Action == "vs-stop":
			if !stopped {
				if err := writeVSStop(cfg, vsStop{At: time.UnixMilli(n.AtMS).UTC(), LastPrimary: n.LastPrimary}); err != nil {
					return err
				}
			}
		case n.Action == "resync":
			return fmt.Errorf("resync: CoServer %d is %s", cfg.Node, role)
		}
		return nil
	}))
	if role == roleVSStopped && cfg.Management.Peer != "" {
		go watchPeerStart(ctx, cfg, o, stop)
	}
	srv := &http.Server{Addr: cfg.Management.Listen, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	defer srv.Close()
	var m *manager.Manager
	if cfg.Manager.Listen != "" {
		src := newSource(cfg, o.Version, func() *feed.Status { return feedOf(status(), roleOutOfService) })
		var err error
		m, err = manager.Start(ctx, manager.Options{Sections: cfg.Sections, Host: "coserver" + strconv.Itoa(cfg.Node),
			Source: src, Control: &controller{cfg: cfg, o: o}, Log: o.Log})
		if err != nil {
			return err
		}
	}
	o.Log.Warn("coserver: out of service; bring it back with ftvs ctl", "node", cfg.Node)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("management.listen: %w", err)
	}
	cancel()
	if m != nil {
		_ = m.Wait()
	}
	return err
}

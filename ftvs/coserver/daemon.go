package coserver

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/ftvs/ftvs/ftvs/dirstore"
	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/lockstep"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
	httpsvc "github.com/ftvs/ftvs/ftvs/services/http"
	"github.com/ftvs/ftvs/ftvs/witness"
	"golang.org/x/sys/unix"
)

// Daemon message types on the link session, above lockstep's 1..11.
const (
	msgRole = 64 // role u8 (0 deciding, else lockstep.Role) | node u8 | peer state u8 (lockstep.PeerState) | max VS behaviour level u8 (absent: 1) | flags u8 (1: fenced by a healed split brain, 2: holds the witness lease) | went live u64 unix ms (0: not live; absent: unknown) (splitheal.go)
	// msgLeaving (empty): this secondary leaves the pair on purpose (out
	// of service); see leave.go. (relay.go has 65 and 66, the mirrors
	// 0xB0 on.)
	msgLeaving = 67
)

// Options are the daemon's knobs beyond the config file.
type Options struct {
	Log *slog.Logger
	// Diverge is the TEST-ONLY lockstep fault hook (see DivergeFromEnv).
	Diverge func(*machine.Input)
}

// Daemon is one running CoServer.
type Daemon struct {
	cfg  *config.Config
	opt  Options
	log  *slog.Logger
	mcfg machine.Config
	mac  net.HardwareAddr
	vsIP [4]byte

	store  *dirstore.Store // vs.content (labs), or nil
	boot   *bootFiles      // the boot disk (vs.disks[].boot), or nil
	port   port.Port
	portMu sync.Mutex
	sess   *link.Session
	mgmt   *statusServer
	guard  *guard
	lease  *witness.Client
	disks  *disks // vs.disks (disks.go)

	nodeCh chan link.Delivery // the lockstep node's Incoming
	node   atomic.Pointer[lockstep.Node]
	fenced atomic.Bool // the witness lease lapsed (keepLease)
	split  splitHeal   // a healed split brain (splitheal.go)
	relay  relay

	peerUp   atomic.Bool
	retryGo  atomic.Bool  // the guard refused a go-live: ask again while the peer stays silent
	dropped  atomic.Bool  // the primary went on without us: our log is stale until a snapshot
	drops    nonceSet     // the peer's drop notices already taken
	peerRole atomic.Int32 // -1 unknown, 0 deciding, else lockstep.Role

	behaviour behaviourState
	leaving   atomic.Bool // told the primary we leave (leave.go)
	// handingOver: the primary role is being handed over (leave.go):
	// no role message after it; roleMu orders the two.
	handingOver atomic.Bool
	roleMu      sync.Mutex
	started     time.Time

	events eventRing
	figs   figures  // the manager's figures (figures.go)
	ctl    ctlState // VS stop/start and resync controls (vsctl.go)
	stats  struct {
		submitted, submitDrop, emitted, fencedDrop atomic.Uint64
	}
}

// New opens everything a CoServer needs; nothing runs before Run. On any
// error everything opened so far is closed again.
func New(cfg *config.Config, opt Options) (d *Daemon, err error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	d = &Daemon{cfg: cfg, opt: opt, log: opt.Log.With("node", cfg.Node), nodeCh: make(chan link.Delivery, 1024), started: time.Now()}
	d.peerRole.Store(-1)
	d.ctl.startedAt = readVSStarted(cfg)
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.mcfg, err = machineConfig(cfg); err != nil {
		return nil, err
	}
	d.mac = net.HardwareAddr(d.mcfg.MAC[:])
	d.vsIP = d.mcfg.IP
	if cfg.VS.Content != "" {
		if d.store, err = dirstore.New(cfg.VS.Content, 0); err != nil {
			return nil, fmt.Errorf("vs.content: %w", err)
		}
	}
	if d.port, err = port.Open(port.Config{Kind: port.Kind(cfg.Redirected.Port), Iface: cfg.Redirected.Interface, MAC: d.mac}); err != nil {
		return nil, fmt.Errorf("redirected.interface %s: %w", cfg.Redirected.Interface, err)
	}
	if d.mgmt, err = listenStatus(cfg.Management.Listen, d); err != nil {
		return nil, fmt.Errorf("management.listen: %w", err)
	}
	if cfg.Witness != "" {
		d.lease = witness.NewClient(cfg.Witness, cfg.Key(), cfg.Node)
	}
	d.guard = &guard{d: d}
	lc := link.Config{Node: cfg.Node, Key: cfg.Key(), Heartbeat: cfg.Timeouts.Heartbeat,
		LinkTimeout: cfg.Timeouts.LinkDead, PeerTimeout: cfg.Timeouts.PeerDead, Log: d.log}
	for i, l := range cfg.Links {
		local, _ := netip.ParseAddrPort(l.Local)
		peer, _ := netip.ParseAddrPort(l.Peer)
		p := int(peer.Port())
		if cfg.Node == 2 {
			p = int(local.Port()) // node 2 listens on its own port
		}
		lc.Links = append(lc.Links, link.LinkConfig{Name: "link" + strconv.Itoa(i+1), Interface: l.Interface,
			Local: local.Addr().String(), Peer: peer.Addr().String(), Port: p})
	}
	if d.sess, err = link.Start(lc); err != nil {
		return nil, fmt.Errorf("links: %w", err)
	}
	if d.disks, err = openDisks(d); err != nil {
		return nil, err
	}
	if i := cfg.BootDisk(); i >= 0 {
		dk := cfg.VS.Disks[i]
		d.boot = newBootFiles(d.disks.ms[i], dk.Name, dk.ServeDir)
	}
	return d, nil
}

// tsoMax is the most TCP payload one super-segment may carry (as vsrun's
// TSOMax: headers at their largest stay under the kernel's 64 KiB GSO limit).
const tsoMax = 65535 - 100

// machineConfig is the VS both nodes build. The ISN key is derived from the
// pair key so that two fresh machines are identical.
func machineConfig(cfg *config.Config) (machine.Config, error) {
	var mc machine.Config
	hw, err := net.ParseMAC(cfg.VS.MAC)
	if err != nil {
		return mc, fmt.Errorf("vs.mac: %w", err)
	}
	copy(mc.MAC[:], hw)
	pfx, err := netip.ParsePrefix(cfg.VS.IP)
	if err != nil {
		return mc, fmt.Errorf("vs.ip: %w", err)
	}
	mc.IP, mc.PrefixLen = pfx.Addr().As4(), pfx.Bits()
	if cfg.VS.Gateway != "" {
		gw, err := netip.ParseAddr(cfg.VS.Gateway)
		if err != nil {
			return mc, fmt.Errorf("vs.gateway: %w", err)
		}
		mc.Gateway = gw.As4()
	}
	mc.MTU = cfg.VS.MTU
	if mc.MTU == 0 {
		mc.MTU = 1500 // never the local NIC's: both replicas must agree
	}
	mac := hmac.New(sha256.New, cfg.Key())
	mac.Write([]byte("ftvs vs isn key v1"))
	copy(mc.ISNKey[:], mac.Sum(nil))
	mc.TSOMax, mc.ChecksumOffload = tsoMax, true
	if h := cfg.VS.Services.HTTP; h != nil {
		mc.HTTP = machine.HTTPConfig{Enabled: true, Config: httpsvc.Config{Port: uint16(h.Port),
			UploadPrefix: h.UploadPrefix, MaxUploadBytes: h.MaxUploadBytes}}
	}
	serviceConfigs(cfg, &mc)
	return mc, mc.Validate()
}

// Close releases what New opened. The boot disk's store keeps nothing
// unwritten between operations: the mirrors' Flush here is its Sync, and
// CloseClean records the clean shutdown, as `ftvs vs run --boot-disk` does.
func (d *Daemon) Close() error {
	var errs []error
	if d.disks != nil {
		errs = append(errs, d.disks.close())
	}
	if d.sess != nil {
		errs = append(errs, d.sess.Close())
	}
	if d.mgmt != nil {
		errs = append(errs, d.mgmt.Close())
	}
	if d.port != nil {
		errs = append(errs, d.port.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	return errors.Join(errs...)
}

// Run serves until ctx ends or a part fails.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 4)
	d.disks.run(ctx)
	go func() { errc <- d.mgmt.Serve() }()
	go func() { errc <- d.pumpPort(ctx) }()
	go d.watchCarrier(ctx)
	go d.watchSplitHeal(ctx)
	if d.lease != nil {
		go d.keepLease(ctx)
	}
	go func() { errc <- d.control(ctx) }()
	d.addEvent("start", 0, "node "+strconv.Itoa(d.cfg.Node)+" deciding its role")
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
}

// control reads the link session: daemon messages are handled here,
// everything else goes to the lockstep node once it runs. It also decides
// the starting role.
func (d *Daemon) control(ctx context.Context) error {
	var solo <-chan time.Time
	if s := d.cfg.ColdStart.SoloAfter; s > 0 {
		t := time.NewTimer(s)
		defer t.Stop()
		solo = t.C
	}
	nodeDone := make(chan error, 1)
	joinAsked := false
	// When this node starts while the peer is a secondary whose primary is
	// gone (this node, restarted), the peer holds the VS and is about to go
	// live: wait for it rather than start a second, fresh VS. Bounded, so a
	// secondary that may never go live does not keep the pair down forever.
	var waitSecondarySince time.Time
	start := func(r lockstep.Role, why string) error {
		if d.node.Load() != nil {
			return nil
		}
		n, err := d.newNode(r)
		if err != nil {
			return err
		}
		d.node.Store(n)
		if r == lockstep.RolePrimary {
			d.markLive()
		}
		d.addEvent("role", 0, "starting as "+r.String()+": "+why)
		d.log.Info("coserver: starting", "role", r, "why", why)
		go func() { nodeDone <- n.Run(ctx) }()
		if d.peerUp.Load() {
			// The node missed the peer's arrival: tell it, so a joiner asks
			// for a snapshot and a primary says hello.
			d.nodeCh <- link.Delivery{Event: &link.Event{Kind: link.EventPeerUp}}
			joinAsked = true
		}
		d.sendRole()
		return nil
	}
	in := d.sess.Incoming()
	// The role is repeated so that a secondary the primary dropped without
	// its noticing (the primary alone saw the links fall silent) learns it
	// and rejoins instead of staying eligible to go live on a stale log.
	roleTick := time.NewTicker(500 * time.Millisecond)
	defer roleTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-roleTick.C:
			if d.peerUp.Load() {
				d.sendRole()
			} else if d.retryGo.Load() && d.node.Load() != nil {
				// The split-brain guard refused to go live; the peer may
				// have died since (its management endpoint stops
				// answering): let the node ask the guard again.
				d.nodeCh <- link.Delivery{Event: &link.Event{Kind: link.EventPeerSilent}}
			}
		case err := <-nodeDone:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("lockstep node stopped: %w", err)
		case <-solo:
			solo = nil
			if d.node.Load() != nil || d.peerRole.Load() >= 0 {
				continue
			}
			ok, why := d.guard.check(true)
			if ok {
				ok, why = d.disks.mayGoLive()
			}
			if !ok {
				d.addEvent("cold-start", 0, "not starting alone: "+why)
				d.log.Warn("coserver: alone at cold start but a live VS may exist; waiting for the peer", "why", why)
				continue
			}
			if err := d.disks.goAlone(); err != nil {
				return fmt.Errorf("virtual disks: going alone: %w", err)
			}
			if err := start(lockstep.RolePrimary, "alone at cold start after "+d.cfg.ColdStart.SoloAfter.String()+", checks passed"); err != nil {
				return err
			}
		case dl, ok := <-in:
			if !ok {
				return errors.New("link session closed")
			}
			if d.disks.route(dl) {
				continue // a mirror's message
			}
			if e := dl.Event; e != nil {
				d.linkEvent(e)
				if e.Kind == link.EventPeerUp {
					d.sendRole()
				}
			}
			switch {
			case dl.Event == nil && dl.Type == msgLeaving:
				d.peerLeaving()
			case dl.Event == nil && dl.Type == msgRole:
				if len(dl.Payload) < 2 {
					d.addEvent("protocol", 0, "short role message")
					continue
				}
				pr := int32(dl.Payload[0])
				d.peerRole.Store(pr)
				d.peerBehaviour(dl.Payload)
				n := d.node.Load()
				if n == nil && pr == 0 {
					// A fresh pair with disks starts the VS on the newer copies.
					if r, why, wait := d.disks.freshPairRole(); wait {
						d.addEvent("role", 0, "waiting: "+why)
						continue
					} else if r != 0 {
						if err := start(r, why); err != nil {
							return err
						}
						continue
					}
				}
				if n == nil {
					var err error
					switch {
					case pr == int32(lockstep.RolePrimary):
						err = start(lockstep.RoleJoining, "the peer runs as primary")
					case pr == 0 && d.freshPrimary():
						err = start(lockstep.RolePrimary, "fresh pair, node "+strconv.Itoa(d.cfg.Node))
					case pr == 0:
						err = start(lockstep.RoleJoining, "fresh pair, node "+strconv.Itoa(d.cfg.Node))
					case pr == int32(lockstep.RoleSecondary) && waitSecondaryFor(&waitSecondarySince, d.secondaryGoLiveBound()):
						d.addEvent("role", 0, "waiting: the peer runs as secondary and will go live")
						continue
					default:
						err = start(lockstep.RolePrimary, "the peer runs as "+lockstep.Role(pr).String()+" with no primary")
					}
					if err != nil {
						return err
					}
				} else if pr == int32(lockstep.RolePrimary) {
					ns := n.Status()
					if ns.Role == lockstep.RolePrimary {
						fenced, lease, live := parseRoleTail(dl.Payload)
						d.onPeerPrimary(live, lease, fenced, "CoServer links")
					}
					if ns.Role != lockstep.RoleJoining {
						joinAsked = false
					}
					stale := ns.Role == lockstep.RoleSecondary && len(dl.Payload) >= 3 && lockstep.PeerState(dl.Payload[2]) == lockstep.PeerNone
					if ns.Role == lockstep.RoleJoining && !joinAsked || stale {
						// A primary appeared after we started waiting, or it
						// follows nobody while we think we follow it: (re)join.
						joinAsked = true
						if stale {
							d.addEvent("stale-secondary", ns.Seq, "the primary has no secondary: rejoining")
						}
						d.nodeCh <- link.Delivery{Event: &link.Event{Kind: link.EventPeerUp}}
					}
				}
			case dl.Event == nil && dl.Type == msgCarrier:
				d.onPeerCarrier(dl.Payload)
			case dl.Event == nil && dl.Type == msgFrames:
				d.relay.fromPeer(d, dl.Payload)
			default:
				if d.node.Load() != nil {
					if d.disks.holdJoin(ctx, dl) {
						continue // until the disks met the peer's
					}
					select {
					case d.nodeCh <- dl:
					case <-ctx.Done():
						return nil
					}
				}
			}
		}
	}
}

func (d *Daemon) linkEvent(e *link.Event) {
	switch e.Kind {
	case link.EventPeerUp:
		d.behaviour.peerMax.Store(0) // unknown until its role message
		d.peerUp.Store(true)
		d.retryGo.Store(false)
		d.addEvent("peer-up", 0, fmt.Sprintf("restarted=%v", e.Restarted))
	case link.EventPeerSilent:
		d.peerUp.Store(false)
		d.peerRole.Store(-1)
		d.addEvent("peer-silent", 0, "no link hears the peer")
	case link.EventLinkUp:
		d.addEvent("link-up", 0, "link"+strconv.Itoa(e.Link+1))
	case link.EventLinkDown:
		d.addEvent("link-down", 0, "link"+strconv.Itoa(e.Link+1)+": "+e.Reason)
	}
}

func (d *Daemon) sendRole() {
	d.roleMu.Lock()
	defer d.roleMu.Unlock()
	if d.handingOver.Load() {
		return
	}
	r, p := byte(0), byte(0)
	if n := d.node.Load(); n != nil {
		st := n.Status()
		r, p = byte(st.Role), byte(st.Peer)
	}
	_ = d.sess.Send(msgRole, append([]byte{r, byte(d.cfg.Node), p, byte(machine.MaxBehaviour)}, d.rolePayloadTail()...))
}

// transport is the lockstep node's view of the link: sends go straight to
// the session, deliveries come through control.
type transport struct{ d *Daemon }

func (t transport) Send(typ uint8, p []byte) error {
	if typ == lockstepMsgJoin && t.d.leaving.Load() {
		return nil // about to leave the pair: no snapshot for us
	}
	if typ == lockstepMsgJoin {
		// A joiner asks for the snapshot only once its disks met the
		// peer's (resync bulk done): ftvs/mirror's hand-over order.
		return t.d.disks.sendJoin(context.Background(), func() error { return t.d.sess.Send(typ, p) })
	}
	return t.d.sess.Send(typ, p)
}

// lockstepMsgJoin is lockstep's join request (ftvs/lockstep wire.go).
const lockstepMsgJoin = 6

func (t transport) Incoming() <-chan link.Delivery { return t.d.nodeCh }

// files is the store HTTP and FTP serve: the boot disk, else vs.content.
func (d *Daemon) files() fsapi.FileStore {
	switch {
	case d.boot != nil:
		return d.boot
	case d.store != nil:
		return d.store
	}
	return nil
}

func (d *Daemon) newNode(r lockstep.Role) (*lockstep.Node, error) {
	if d.boot != nil {
		// A primary runs on its own copy as it is now; a joiner's copy is
		// still being resynchronised: it loads at Restore (resyncingReplica).
		if r == lockstep.RolePrimary {
			if err := d.boot.load(); err != nil {
				return nil, fmt.Errorf("vs: %w", err)
			}
		} else {
			d.boot.forget()
		}
	}
	m, err := machine.NewEnv(d.mcfg, machine.Env{Files: d.files(), Disks: d.disks.devices(exported(d.cfg))})
	if err != nil {
		return nil, fmt.Errorf("vs: %w", err)
	}
	var rep lockstep.Replica = m
	var beforeAck func(uint64) error
	if len(d.disks.ms) > 0 {
		rep, beforeAck = resyncingReplica{m, d.disks, d.boot}, d.disks.beforeAck
	}
	return lockstep.New(lockstep.Config{
		Start: r, Replica: rep, Link: transport{d}, BeforeAck: beforeAck,
		Emit:       func(outs []machine.Output) { d.figs.noteServices(m, &d.mcfg); d.emit(outs) },
		OutputHeld: d.figs.hold.observe,
		OnEvent:    d.nodeEvent,
		MayGoLive: func() bool {
			ok, why := d.guard.check(false)
			if ok {
				if ok2, why2 := d.disks.mayGoLive(); !ok2 {
					ok, why = false, why2
				}
			}
			d.addEvent("go-live-check", 0, why)
			return ok
		},
		// A hand-over skips the guard (the primary gave up its role) but
		// not this node's disk copies.
		MayTakeOver: func() bool {
			ok, why := d.disks.mayGoLive()
			if !ok {
				d.addEvent("hand-over-refused", 0, why)
			}
			return ok
		},
		Diverge: d.opt.Diverge,
		Log:     d.log,
	})
}

func (d *Daemon) nodeEvent(e lockstep.Event) {
	d.diskEvent(e)
	switch e.Kind {
	case lockstep.EventNoGoLive:
		d.retryGo.Store(strings.Contains(e.Reason, "guard refused"))
	case lockstep.EventGoLive:
		d.markLive()
		d.retryGo.Store(false)
		if !e.Planned {
			d.figs.failovers.Add(1) // a hand-over is no failover
		}
	case lockstep.EventRestored:
		d.dropped.Store(false)
	case lockstep.EventPeerLost:
		go d.sendDrop(e.Seq)
	case lockstep.EventPeerSynced:
		// The peer follows our VS: it discarded its own (the operator kept
		// this node's data), so no second VS is left.
		d.unfenceSplitBrain("the peer discarded its VS and follows this node's")
		go d.raiseBehaviour()
	}
	text := e.Reason
	if e.Kind == lockstep.EventSnapshotSent {
		text = fmt.Sprintf("pause %s, %d bytes", e.Pause, e.Size)
	}
	d.addEvent(e.Kind.String(), e.Seq, text)
	switch e.Kind {
	case lockstep.EventGoLive, lockstep.EventRestored, lockstep.EventPeerLost:
		go d.sendRole()
	}
}

// emit writes released outputs to the redirected NIC (or, when its carrier
// is gone, through the link to the peer's).
func (d *Daemon) emit(outs []machine.Output) {
	frames := make([]port.Frame, 0, len(outs))
	for _, o := range outs {
		switch o.Kind {
		case machine.OutFrame:
			frames = append(frames, port.Frame{Data: o.Payload, GSO: o.GSO, PartialCsum: d.mcfg.ChecksumOffload})
		case machine.OutEvent:
			d.log.Debug("vs event", "seq", o.Seq, "text", string(o.Payload))
		}
	}
	if len(frames) == 0 {
		return
	}
	if d.fenced.Load() || d.split.fenced.Load() {
		d.stats.fencedDrop.Add(uint64(len(frames)))
		return
	}
	d.stats.emitted.Add(uint64(len(frames)))
	if d.relay.viaPeer.Load() {
		d.relay.toPeer(d, frames)
		return
	}
	d.portMu.Lock()
	err := d.port.Write(frames)
	d.portMu.Unlock()
	if err != nil {
		d.log.Warn("coserver: write frames", "err", err)
	}
}

// pumpPort reads the redirected NIC and hands frames to the primary's
// sequencer; a node that is not primary drains and drops them (or relays
// them to the primary when the primary's NIC has no carrier).
func (d *Daemon) pumpPort(ctx context.Context) error {
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("eventfd: %w", err)
	}
	defer unix.Close(wake)
	stop := context.AfterFunc(ctx, func() { _, _ = unix.Write(wake, []byte{1, 0, 0, 0, 0, 0, 0, 0}) })
	defer stop()
	bufs, got := make([][]byte, 64), make([][]byte, 64)
	for i := range bufs {
		bufs[i] = make([]byte, port.MaxFrame+port.VnetHdrLen)
	}
	pfd := []unix.PollFd{{Fd: int32(d.port.FD()), Events: unix.POLLIN}, {Fd: int32(wake), Events: unix.POLLIN}}
	for ctx.Err() == nil {
		pfd[0].Revents, pfd[1].Revents = 0, 0
		if _, err := unix.Poll(pfd, 1000); err != nil && err != unix.EINTR {
			return fmt.Errorf("poll redirected port: %w", err)
		}
		for ctx.Err() == nil {
			d.portMu.Lock()
			n, err := d.port.Read(bufs, got)
			d.portMu.Unlock()
			if err != nil {
				return fmt.Errorf("read redirected port: %w", err)
			}
			if n == 0 {
				break
			}
			// The role once per batch, not per frame (Status copies the
			// node's whole status under its lock); Submit checks it again.
			node := d.node.Load()
			primary := node != nil && node.Status().Role == lockstep.RolePrimary
			for _, f := range got[:n] {
				if primary && len(f) >= 12 && string(f[6:12]) == string(d.mac) {
					d.noteForeignVSFrame() // PACKET_IGNORE_OUTGOING: not ours
				}
				if primary && d.split.fenced.Load() {
					d.stats.fencedDrop.Add(1) // keep the fenced VS as it is
					continue
				}
				if primary {
					if err := node.Submit(ctx, machine.InFrame, append([]byte(nil), f...)); err == nil {
						d.stats.submitted.Add(1)
						continue
					}
				} else if d.relay.peerViaUs.Load() || (len(f) >= 6 && string(f[:6]) == string(d.mac)) {
					// The primary's NIC has no carrier, or the LAN still
					// sends the VS's unicast frames here (a switch that
					// learnt the VS MAC on this port while we relayed): hand
					// them to the primary.
					d.relay.inToPeer(d, f)
					continue
				}
				d.stats.submitDrop.Add(1)
			}
			if n < len(bufs) {
				break
			}
		}
	}
	return nil
}

// submitFrame is how relayed frames from the peer's NIC enter the sequencer.
func (d *Daemon) submitFrame(f []byte) {
	if n := d.node.Load(); n != nil && n.Status().Role == lockstep.RolePrimary && !d.split.fenced.Load() {
		if n.Submit(context.Background(), machine.InFrame, f) == nil {
			d.stats.submitted.Add(1)
			return
		}
	}
	d.stats.submitDrop.Add(1)
}

// waitSecondaryFor reports whether to keep waiting for a secondary peer to go
// live: true from the first sighting (recorded in *since) until bound passed.
func waitSecondaryFor(since *time.Time, bound time.Duration) bool {
	if since.IsZero() {
		*since = time.Now()
		return true
	}
	return time.Since(*since) < bound
}

// secondaryGoLiveBound is how long a secondary peer may take to go live:
// its silence detection, its guard (management probe and LAN watch, or the
// witness lease) and a few role repetitions.
func (d *Daemon) secondaryGoLiveBound() time.Duration {
	t := d.cfg.Timeouts
	b := t.PeerDead + t.Management + t.SplitBrain + 2*time.Second
	if d.cfg.Witness != "" {
		b += 5 * time.Second
	}
	return b
}

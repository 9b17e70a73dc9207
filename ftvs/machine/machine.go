package machine

import (
	"errors"
	"fmt"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/netstack"
	ftpsvc "github.com/ftvs/ftvs/ftvs/services/ftp"
	httpsvc "github.com/ftvs/ftvs/ftvs/services/http"
	nbdsvc "github.com/ftvs/ftvs/ftvs/services/nbd"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Machine is one deterministic virtual server. It is not safe for concurrent
// use: the shell calls it from one goroutine.
type Machine struct {
	cfg      Config
	env      Env
	stack    *netstack.Stack
	services []sockapi.Service
	http     *httpsvc.Service // nil when disabled; also in services
	ftp      *ftpsvc.Service  // nil when disabled; also in services
	nbd      *nbdsvc.Service  // nil when disabled; also in services

	seen    bool   // an input has been applied
	lastSeq uint64 // Seq of the last applied input
	now     int64  // virtual time of the last applied input (monotonic)
	backlog bool   // the last Step hit MaxRounds: events may wait in the stack
	// snapVersion is the "machine" section version Snapshot writes: this
	// build's, or the older one a restored snapshot had, so a node that
	// joined from an older build's snapshot re-encodes it byte for byte
	// and an older peer can still read what it sends (rolling upgrade).
	snapVersion uint16
	// behaviour is the VS behaviour level the machine runs (behaviour.go):
	// what a fresh machine of this build starts with, or what the snapshot
	// it restored had, until an OpBehaviour command in the log raises it.
	behaviour uint16
	ctr       MachineCounters
}

// MachineCounters count what the machine itself did or refused.
type MachineCounters struct {
	Inputs          uint64 // inputs applied
	FramesIn        uint64
	Ticks           uint64
	Commands        uint64
	BadCommands     uint64 // commands refused (each produced an OutEvent)
	SeqRejected     uint64 // inputs ignored because Seq did not advance
	SeqGaps         uint64 // inputs whose Seq skipped numbers
	ClockClamps     uint64 // inputs whose Now went backwards (clamped)
	FramesOut       uint64
	EventsUnrouted  uint64 // socket events no service owned
	RoundsExhausted uint64 // steps that hit MaxRounds with events pending
}

// Counters is the machine's status: its own counters and its parts'.
type Counters struct {
	Machine MachineCounters
	Stack   netstack.Counters
	HTTP    httpsvc.Counters
	FTP     ftpsvc.Counters
	NBD     nbdsvc.Counters
}

// Env is what the shell hands a machine besides its configuration: like
// disks, identical on both CoServers and not part of the snapshot.
type Env struct {
	// Files is the store HTTP and FTP serve; FTP changes it when it is
	// an fsapi.WritableFileStore (changes happen inside Step).
	Files fsapi.FileStore
	// Disks back the NBD exports, in the order of Config.NBD.Exports;
	// read and written inside Step.
	Disks []blockdev.Device
}

// New builds a fresh machine and starts its services. files is the VS's
// file store (not part of the snapshot; both replicas must hold the same
// one); machines with NBD exports need NewEnv.
func New(cfg Config, files fsapi.FileStore) (*Machine, error) {
	return NewEnv(cfg, Env{Files: files})
}

// NewEnv builds a fresh machine with its file store and disks.
func NewEnv(cfg Config, env Env) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	m, err := build(cfg, env)
	if err != nil {
		return nil, err
	}
	for _, s := range m.services {
		if err := s.Start(stackSockets{m.stack}); err != nil {
			return nil, fmt.Errorf("machine: start service %s: %w", s.Name(), err)
		}
	}
	return m, nil
}

// build makes the parts of a machine without starting services.
func build(cfg Config, env Env) (*Machine, error) {
	if (cfg.HTTP.Enabled || cfg.FTP.Enabled) && env.Files == nil {
		return nil, errors.New("machine: HTTP or FTP service enabled without a file store")
	}
	st, err := newStack(cfg)
	if err != nil {
		return nil, fmt.Errorf("machine: network stack: %w", err)
	}
	m := &Machine{cfg: cfg, env: env, stack: st, snapVersion: machineVersion, behaviour: MaxBehaviour}
	if cfg.HTTP.Enabled {
		m.http = httpsvc.New(cfg.HTTP.Config, env.Files)
		m.services = append(m.services, m.http)
	}
	if cfg.FTP.Enabled {
		if m.ftp, err = ftpsvc.New(cfg.FTP.Config, env.Files); err != nil {
			return nil, fmt.Errorf("machine: %w", err)
		}
		m.services = append(m.services, m.ftp)
	}
	if cfg.NBD.Enabled {
		if m.nbd, err = nbdsvc.New(cfg.NBD.Config, env.Disks); err != nil {
			return nil, fmt.Errorf("machine: %w", err)
		}
		m.services = append(m.services, m.nbd)
	}
	return m, nil
}

// Env returns the file store and disks the machine was built with (a
// machine restored in its place must be given the same ones).
func (m *Machine) Env() Env { return m.env }

// Config returns the machine's configuration (with defaults filled in).
func (m *Machine) Config() Config { return m.cfg }

// Now is the machine's virtual time: the Now of the last applied input.
func (m *Machine) Now() int64 { return m.now }

// LastSeq is the Seq of the last applied input (0 before any).
func (m *Machine) LastSeq() uint64 { return m.lastSeq }

// Step applies one input and returns its effects. It is the only way the
// machine's state changes.
func (m *Machine) Step(in Input) []Output {
	var out []Output
	if m.seen && in.Seq <= m.lastSeq {
		m.ctr.SeqRejected++
		return append(out, m.event(in.Seq, "input seq %d does not follow %d: ignored", in.Seq, m.lastSeq))
	}
	if m.seen && in.Seq != m.lastSeq+1 {
		m.ctr.SeqGaps++
	}
	m.seen, m.lastSeq = true, in.Seq
	now := in.Now
	if now < m.now {
		m.ctr.ClockClamps++
		now = m.now
	}
	m.now = now
	m.ctr.Inputs++

	switch in.Kind {
	case InFrame:
		m.ctr.FramesIn++
		m.stack.Input(in.Payload, now)
	case InTick:
		m.ctr.Ticks++
	case InCommand:
		m.ctr.Commands++
		if err := m.command(in.Payload); err != nil {
			m.ctr.BadCommands++
			out = append(out, m.event(in.Seq, "bad command: %v", err))
		}
	default:
		m.ctr.BadCommands++
		out = append(out, m.event(in.Seq, "input seq %d has unknown kind %d: ignored", in.Seq, in.Kind))
	}

	for _, s := range m.services {
		if d := s.NextDeadline(); d != 0 && d <= now {
			s.Timer(stackSockets{m.stack}, now)
		}
	}
	m.run(now)

	m.stack.DrainFrames(func(frame []byte, gso uint16) { // frame is ours to keep
		m.ctr.FramesOut++
		frame = behaviourFrame(m.behaviour, frame)
		out = append(out, Output{Seq: in.Seq, Kind: OutFrame, GSO: gso, Payload: frame})
	})
	return out
}

// run polls the stack and hands its events to the services until a round
// raises no event, at most MaxRounds rounds. When the bound is hit, the
// machine's deadline stays at now so the shell ticks again at once and the
// work left over (events still queued in the stack) carries on.
func (m *Machine) run(now int64) {
	m.backlog = false
	for round := 0; round < m.cfg.MaxRounds; round++ {
		m.stack.Poll(now)
		n := 0
		m.stack.DrainEvents(func(ev sockapi.Event) {
			n++
			m.dispatch(ev, now)
		})
		if n == 0 {
			return
		}
	}
	m.ctr.RoundsExhausted++
	m.stack.Poll(now)
	m.backlog = true
}

func (m *Machine) dispatch(ev sockapi.Event, now int64) {
	sk := stackSockets{m.stack}
	for _, s := range m.services {
		if ev.Listener != 0 && s.Owns(ev.Listener) {
			s.Handle(sk, ev, now)
			return
		}
		// A dialed socket has no listener: its dialer owns it.
		if o, ok := s.(sockapi.SockOwner); ok && ev.Listener == 0 && o.OwnsSock(ev.Sock) {
			s.Handle(sk, ev, now)
			return
		}
	}
	m.ctr.EventsUnrouted++
}

func (m *Machine) event(seq uint64, format string, args ...any) Output {
	return Output{Seq: seq, Kind: OutEvent, Payload: fmt.Appendf(nil, "machine: "+format, args...)}
}

// NextDeadline is the virtual time at which the shell must feed a tick: the
// earliest timer of the stack and the services, or 0 when none is armed.
func (m *Machine) NextDeadline() int64 {
	if m.backlog {
		return m.now
	}
	d := m.stack.NextDeadline()
	for _, s := range m.services {
		if sd := s.NextDeadline(); sd != 0 && (d == 0 || sd < d) {
			d = sd
		}
	}
	return d
}

// Counters reports the machine's and its services' counters.
func (m *Machine) Counters() Counters {
	c := Counters{Machine: m.ctr, Stack: m.stack.Counters()}
	if m.http != nil {
		c.HTTP = m.http.Counters()
	}
	if m.ftp != nil {
		c.FTP = m.ftp.Counters()
	}
	if m.nbd != nil {
		c.NBD = m.nbd.Counters()
	}
	return c
}

// minWriteVersion is the oldest version Snapshot can write without losing
// state (version 1 had no backlog flag).
const minWriteVersion = 2

// Version 2 added the backlog flag, version 3 the VS behaviour level.
// machineVersion is set in snapversion.go; the test-only build tag
// ftvs_snapbump makes it 4 (one more field), so rolling-upgrade tests run
// two builds whose snapshot versions differ.

// Snapshot encodes the whole state: configuration, sequence and clock,
// counters, the stack and every service.
func (m *Machine) Snapshot() []byte {
	w := snap.NewWriter(4096)
	ver := m.snapVersion
	w.Section("machine", ver, func(w *snap.Writer) {
		m.cfg.encode(w)
		w.Bool(m.seen)
		w.U64(m.lastSeq)
		w.I64(m.now)
		w.Bool(m.backlog)
		if ver >= 3 {
			w.U16(m.behaviour)
		}
		if ver >= 4 {
			w.U64(snapBumpField)
		}
		c := &m.ctr
		for _, v := range []uint64{c.Inputs, c.FramesIn, c.Ticks, c.Commands, c.BadCommands, c.SeqRejected,
			c.SeqGaps, c.ClockClamps, c.FramesOut, c.EventsUnrouted, c.RoundsExhausted} {
			w.U64(v)
		}
		m.stack.Snapshot(w)
		w.U32(uint32(len(m.services)))
		for _, s := range m.services {
			w.String(s.Name())
			w.Blob(s.Snapshot())
		}
	})
	return w.Bytes()
}

// maxServiceSnapshot bounds one service's snapshot on restore.
const maxServiceSnapshot = 1 << 30

// Restore replaces the whole state with a snapshot's. On error the machine
// is unchanged.
func (m *Machine) Restore(b []byte) error {
	r := snap.NewReader(b)
	var fresh *Machine
	r.Section("machine", machineVersion, func(r *snap.Reader, version uint16) {
		cfg := decodeConfig(r)
		if r.Err() != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			r.Fail(err)
			return
		}
		cfg = cfg.withDefaults()
		nm, err := build(cfg, m.env)
		if err != nil {
			r.Fail(err)
			return
		}
		nm.snapVersion = max(version, minWriteVersion)
		nm.seen = r.Bool()
		nm.lastSeq = r.U64()
		nm.now = r.I64()
		if version >= 2 {
			nm.backlog = r.Bool()
		}
		nm.behaviour = 1 // versions before 3 knew only level 1
		if version >= 3 {
			nm.behaviour = r.U16()
			if r.Err() == nil && (nm.behaviour == 0 || nm.behaviour > MaxBehaviour) {
				r.Fail(fmt.Errorf("VS behaviour level %d: this build runs levels 1..%d (upgrade this CoServer first)", nm.behaviour, MaxBehaviour))
				return
			}
		}
		if version >= 4 {
			_ = r.U64() // the test-only field of ftvs_snapbump builds
		}
		c := &nm.ctr
		for _, p := range []*uint64{&c.Inputs, &c.FramesIn, &c.Ticks, &c.Commands, &c.BadCommands, &c.SeqRejected,
			&c.SeqGaps, &c.ClockClamps, &c.FramesOut, &c.EventsUnrouted, &c.RoundsExhausted} {
			*p = r.U64()
		}
		if r.Err() != nil {
			return
		}
		if err := nm.stack.Restore(r); err != nil {
			r.Fail(fmt.Errorf("network stack: %w", err))
			return
		}
		n := int(r.U32())
		if r.Err() == nil && n != len(nm.services) {
			r.Fail(fmt.Errorf("snapshot holds %d services, configuration has %d", n, len(nm.services)))
			return
		}
		for _, s := range nm.services {
			name := r.String(64)
			body := r.Blob(maxServiceSnapshot)
			if r.Err() != nil {
				return
			}
			if name != s.Name() {
				r.Fail(fmt.Errorf("snapshot holds service %q where %q was expected", name, s.Name()))
				return
			}
			if err := s.Restore(body); err != nil {
				r.Fail(fmt.Errorf("service %s: %w", name, err))
				return
			}
		}
		fresh = nm
	})
	if r.Err() == nil && r.Remaining() != 0 {
		r.Fail(fmt.Errorf("%d bytes after the machine section", r.Remaining()))
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("machine: restore: %w", err)
	}
	if fresh == nil {
		return errors.New("machine: restore: snapshot has no machine state")
	}
	*m = *fresh
	return nil
}

// StateHash is the hash of the snapshot encoding: equal hashes mean equal
// state (up to hash collisions).
func (m *Machine) StateHash() uint64 { return snap.Hash(m.Snapshot()) }

func durationNS(ns int64) time.Duration { return time.Duration(ns) }

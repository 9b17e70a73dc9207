// Package vsrun is the solo driver: it runs one virtual server (no lockstep)
// on a frame port. It is the non-deterministic shell around the machine: it
// reads the clock and turns it into virtual time, stamps every frame it reads
// as an Input with the next sequence number, feeds timer ticks when the clock
// reaches the machine's NextDeadline, and writes the machine's frames out,
// batching reads and writes and letting the port's offloads cut super-segments.
package vsrun

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
	"golang.org/x/sys/unix"
)

// Machine is what the driver needs of a *machine.Machine.
type Machine interface {
	Step(in machine.Input) []machine.Output
	NextDeadline() int64
}

// DefaultBatch is how many frames one read round takes before the machine's
// outputs are written: large enough to amortise the syscalls, small enough
// that the first frame of a batch waits little for its answer.
const DefaultBatch = 64

// Config wires a driver.
type Config struct {
	Port    port.Port
	Machine Machine
	// Batch bounds the frames read (and stepped) before outputs are written
	// (0: DefaultBatch).
	Batch int
	// Clock returns monotonic nanoseconds (nil: time since the driver was
	// made). Virtual time is Clock() at the moment an input is stamped.
	Clock func() int64
	// Record, when set, sees every input before it is stepped: the input log
	// of this session (for determinism replay).
	Record func(machine.Input) error
	// Event receives the machine's status events (nil: dropped).
	Event func(seq uint64, text string)
	// PartialCsum: the machine runs with ChecksumOffload, so its TCP frames
	// carry only the pseudo-header sum and the port must ask the kernel to
	// finish them.
	PartialCsum bool
}

// Stats counts the driver's work. Read it with Driver.Stats from any goroutine.
type Stats struct {
	Inputs, Frames, Ticks uint64
	FramesOut, GSOOut     uint64
	ReadRounds            uint64
	Events                uint64
	// Deadline is the machine's NextDeadline when the driver last waited,
	// and Now the virtual time then (both ns; Deadline 0: none armed).
	Deadline, Now int64
}

// Driver runs one machine on one port.
type Driver struct {
	cfg  Config
	seq  uint64
	last int64
	wake int // eventfd: Inject and the end of Run's context wake the loop

	mu       sync.Mutex
	injected [][]byte // management commands waiting to be stepped
	closed   bool     // wake is closed: nothing may write to it
	bufs     [][]byte
	in       [][]byte
	outs     []port.Frame
	stats    struct {
		inputs, frames, ticks, framesOut, gsoOut, rounds, events atomic.Uint64
		deadline, now                                            atomic.Int64
	}
}

// New checks cfg and prepares a driver.
func New(cfg Config) (*Driver, error) {
	if cfg.Port == nil || cfg.Machine == nil {
		return nil, errors.New("vsrun: a port and a machine are required")
	}
	if cfg.Batch < 0 {
		return nil, fmt.Errorf("vsrun: batch %d is negative", cfg.Batch)
	}
	if cfg.Batch == 0 {
		cfg.Batch = DefaultBatch
	}
	if cfg.Clock == nil {
		start := time.Now()
		cfg.Clock = func() int64 { return int64(time.Since(start)) }
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("vsrun: eventfd: %w", err)
	}
	d := &Driver{cfg: cfg, wake: wake, bufs: make([][]byte, cfg.Batch), in: make([][]byte, cfg.Batch)}
	for i := range d.bufs {
		d.bufs[i] = make([]byte, port.MaxFrame+port.VnetHdrLen)
	}
	return d, nil
}

// Stats returns the counts so far.
func (d *Driver) Stats() Stats {
	s := &d.stats
	return Stats{
		Inputs: s.inputs.Load(), Frames: s.frames.Load(), Ticks: s.ticks.Load(),
		FramesOut: s.framesOut.Load(), GSOOut: s.gsoOut.Load(),
		ReadRounds: s.rounds.Load(), Events: s.events.Load(),
		Deadline: s.deadline.Load(), Now: s.now.Load(),
	}
}

// now is the virtual time for the next input: the clock, never going back.
func (d *Driver) now() int64 {
	t := d.cfg.Clock()
	if t < d.last {
		t = d.last
	}
	d.last = t
	return t
}

// step stamps and applies one input and queues its frames.
func (d *Driver) step(kind machine.InputKind, payload []byte) error {
	d.seq++
	in := machine.Input{Seq: d.seq, Now: d.now(), Kind: kind, Payload: payload}
	if d.cfg.Record != nil {
		if err := d.cfg.Record(in); err != nil {
			return fmt.Errorf("vsrun: record input %d: %w", in.Seq, err)
		}
	}
	d.stats.inputs.Add(1)
	for _, o := range d.cfg.Machine.Step(in) {
		switch o.Kind {
		case machine.OutFrame:
			d.outs = append(d.outs, port.Frame{Data: o.Payload, GSO: o.GSO, PartialCsum: d.cfg.PartialCsum})
		case machine.OutEvent:
			d.stats.events.Add(1)
			if d.cfg.Event != nil {
				d.cfg.Event(o.Seq, string(o.Payload))
			}
		}
	}
	return nil
}

// flush writes the queued frames.
func (d *Driver) flush() error {
	if len(d.outs) == 0 {
		return nil
	}
	var gso uint64
	for _, f := range d.outs {
		if f.GSO != 0 {
			gso++
		}
	}
	err := d.cfg.Port.Write(d.outs)
	d.stats.framesOut.Add(uint64(len(d.outs)))
	d.stats.gsoOut.Add(gso)
	clear(d.outs) // drop references to the machine's buffers
	d.outs = d.outs[:0]
	if err != nil {
		return fmt.Errorf("vsrun: write frames: %w", err)
	}
	return nil
}

// tick feeds a timer input if the machine's deadline has come.
func (d *Driver) tick() error {
	dl := d.cfg.Machine.NextDeadline()
	if dl == 0 || dl > d.cfg.Clock() {
		return nil
	}
	d.stats.ticks.Add(1)
	return d.step(machine.InTick, nil)
}

// Run drives the machine until ctx is done (then it returns nil) or the port
// fails.
func (d *Driver) Run(ctx context.Context) error { return d.RunWith(ctx) }

// RunWith is Run that first steps the given management commands (e.g. a
// gratuitous ARP at start).
func (d *Driver) RunWith(ctx context.Context, commands ...[]byte) error {
	for _, c := range commands {
		if err := d.step(machine.InCommand, c); err != nil {
			return err
		}
	}
	stop := context.AfterFunc(ctx, d.poke)
	defer stop()

	pfd := []unix.PollFd{{Fd: int32(d.cfg.Port.FD()), Events: unix.POLLIN}, {Fd: int32(d.wake), Events: unix.POLLIN}}
	for ctx.Err() == nil {
		if err := d.stepInjected(); err != nil {
			return err
		}
		if err := d.tick(); err != nil {
			return err
		}
		if err := d.flush(); err != nil {
			return err
		}
		var ts *unix.Timespec
		dl, now := d.cfg.Machine.NextDeadline(), d.cfg.Clock()
		d.stats.deadline.Store(dl)
		d.stats.now.Store(now)
		if dl != 0 {
			t := unix.NsecToTimespec(max(dl-now, 0))
			ts = &t
		}
		pfd[0].Revents, pfd[1].Revents = 0, 0
		if _, err := unix.Ppoll(pfd, ts, nil); err != nil && err != unix.EINTR {
			return fmt.Errorf("vsrun: poll: %w", err)
		}
		if pfd[1].Revents&unix.POLLIN != 0 {
			var b [8]byte
			_, _ = unix.Read(d.wake, b[:]) // reset the eventfd
		}
		if pfd[0].Revents&unix.POLLNVAL != 0 {
			return fmt.Errorf("vsrun: port descriptor closed")
		}
		// POLLERR (e.g. the link went down) is consumed by the read below;
		// the port counts it and the VS keeps running, as a server whose
		// cable is pulled does.
		if err := d.drain(); err != nil {
			return err
		}
	}
	return nil
}

// Inject queues a management command (machine.InCommand payload) for the
// running loop to step; safe from any goroutine.
func (d *Driver) Inject(cmd []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	d.injected = append(d.injected, append([]byte(nil), cmd...))
	d.pokeLocked()
}

func (d *Driver) poke() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.pokeLocked()
}

func (d *Driver) pokeLocked() {
	if !d.closed {
		one := [8]byte{1}
		_, _ = unix.Write(d.wake, one[:])
	}
}

func (d *Driver) stepInjected() error {
	d.mu.Lock()
	cmds := d.injected
	d.injected = nil
	d.mu.Unlock()
	for _, c := range cmds {
		if err := d.step(machine.InCommand, c); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the driver's wake-up descriptor (not the port); call it
// after Run has returned. Inject is then a no-op.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	return unix.Close(d.wake)
}

// maxRounds bounds the read rounds between two timer checks, so a flood of
// frames cannot starve the machine's timers.
const maxRounds = 16

// drain reads and steps frames in batches, writing each batch's outputs
// before reading the next, until the port is empty or maxRounds is reached.
func (d *Driver) drain() error {
	for r := 0; r < maxRounds; r++ {
		n, err := d.cfg.Port.Read(d.bufs, d.in)
		if err != nil {
			return fmt.Errorf("vsrun: read frames: %w", err)
		}
		if n == 0 {
			return nil
		}
		d.stats.rounds.Add(1)
		for _, f := range d.in[:n] {
			d.stats.frames.Add(1)
			// The machine keeps no reference to an input's payload beyond the
			// step (it copies what it keeps), so the read buffer is reused.
			if err := d.step(machine.InFrame, f); err != nil {
				return err
			}
		}
		if err := d.tick(); err != nil {
			return err
		}
		if err := d.flush(); err != nil {
			return err
		}
		if n < len(d.bufs) {
			return nil
		}
	}
	return nil
}

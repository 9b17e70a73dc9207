package lockstep

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/machine"
)

// toy is a small deterministic replica for protocol tests: its state is a
// running mix of every input; each input yields one output carrying the
// new state; a frame starting with 'T' arms a timer 1 ms ahead.
type toy struct {
	state    uint64
	n        uint64
	deadline int64
	onStep   func(machine.Input) // test recorder, not state
}

func (r *toy) Step(in machine.Input) []machine.Output {
	if r.onStep != nil {
		r.onStep(in)
	}
	r.n++
	r.state = r.state*1099511628211 ^ in.Seq ^ uint64(in.Kind)<<56
	for _, b := range in.Payload {
		r.state = (r.state ^ uint64(b)) * 1099511628211
	}
	switch {
	case in.Kind == machine.InTick:
		r.deadline = 0
	case len(in.Payload) > 0 && in.Payload[0] == 'T':
		r.deadline = in.Now + int64(time.Millisecond)
	}
	return []machine.Output{{Seq: in.Seq, Kind: machine.OutFrame, Payload: binary.LittleEndian.AppendUint64(nil, r.state)}}
}

func (r *toy) NextDeadline() int64 { return r.deadline }
func (r *toy) Snapshot() []byte    { return encU64s(r.state, r.n, uint64(r.deadline)) }
func (r *toy) Restore(b []byte) error {
	v, _, err := u64s("toy snapshot", b, 3, false)
	if err != nil {
		return err
	}
	r.state, r.n, r.deadline = v[0], v[1], int64(v[2])
	return nil
}
func (r *toy) StateHash() uint64 { return r.state ^ r.n<<1 ^ uint64(r.deadline)<<2 }

// bigToy is a toy whose snapshot carries pad bytes of ballast (a function
// of the state, so a bad transfer shows), to exercise chunking and the link
// window.
type bigToy struct {
	toy
	pad int
}

func (r *bigToy) Snapshot() []byte {
	b := r.toy.Snapshot()
	for i := range r.pad {
		b = append(b, byte(r.state>>(i%8*8))^byte(i))
	}
	return b
}

func (r *bigToy) Restore(b []byte) error {
	if len(b) != 24+r.pad {
		return fmt.Errorf("big toy snapshot of %d bytes, want %d", len(b), 24+r.pad)
	}
	return r.toy.Restore(b[:24])
}

// recorder keeps one global order of what both nodes did.
type recorder struct {
	mu  sync.Mutex
	ops []op
}

type op struct {
	node int
	what string // "apply" (replica stepped) or "emit" (output released)
	seq  uint64
	kind machine.InputKind
	data []byte
	now  int64 // apply: the input's virtual time
}

func (r *recorder) add(o op) {
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]op(nil), r.ops...)
}

var key = []byte("lockstep-test-pair-key-0123456789")

var quiet = slog.New(slog.DiscardHandler)

type side struct {
	id     int
	sess   *link.Session
	node   *Node
	rep    Replica
	cancel context.CancelFunc
	done   chan error
	events chan Event
}

// kill stops the node and closes its link, like a SIGKILL of the daemon.
func (s *side) kill() {
	s.cancel()
	<-s.done
	s.sess.Close()
}

type pairEnv struct {
	t     testing.TB
	links []link.LinkConfig
	// per-node links when the nodes live in namespaces (index 1 and 2)
	nodeLinks [3][]link.LinkConfig
	rec       *recorder
	nets      [3]link.Net
	// slow: tests that must not see a false peer silence on this shared,
	// overloaded test machine use a 1.5 s peer timeout instead of 400 ms.
	slow bool
}

func (e *pairEnv) peerTimeout() time.Duration {
	if e.slow {
		return 1500 * time.Millisecond
	}
	return 400 * time.Millisecond
}

func newEnv(t testing.TB) *pairEnv {
	e := &pairEnv{t: t, rec: &recorder{}}
	// Ports below the ephemeral range (32768+): an outgoing connection of
	// another test can never hold one when node 2 binds it later.
	port := 20000 + int(time.Now().UnixNano()/1000%10000)
	for len(e.links) < 2 {
		port++
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		e.links = append(e.links, link.LinkConfig{Local: "127.0.0.1", Peer: "127.0.0.1", Port: port})
	}
	return e
}

type sideOpts struct {
	diverge   func(*machine.Input)
	mayGoLive func() bool
	mayAlone  func() bool
	mayTake   func() bool
	rep       Replica
	released  chan uint64 // if set, gets the Seq of every released output
	onEmit    func(machine.Output)
	window    int // link MaxUnacked (0: default)
	// wrap, if set, stands between the node and its link session (to
	// lose messages of one type).
	wrap func(Transport) Transport
}

func (e *pairEnv) start(id int, role Role, o sideOpts) *side {
	t := e.t
	links := e.links
	if e.nodeLinks[id] != nil {
		links = e.nodeLinks[id]
	}
	lc := link.Config{Node: id, Key: key, Links: links, Heartbeat: 10 * time.Millisecond,
		LinkTimeout: 250 * time.Millisecond, PeerTimeout: e.peerTimeout(), Reconnect: 20 * time.Millisecond,
		Net: e.nets[id], Log: quiet, MaxUnacked: o.window}
	sess, err := link.Start(lc)
	if err != nil {
		t.Fatal(err)
	}
	rep := o.rep
	if rep == nil {
		rep = &toy{onStep: func(in machine.Input) {
			e.rec.add(op{node: id, what: "apply", seq: in.Seq, kind: in.Kind, data: in.Payload, now: in.Now})
		}}
	}
	s := &side{id: id, sess: sess, rep: rep, done: make(chan error, 1), events: make(chan Event, 1024)}
	var tr Transport = sess
	if o.wrap != nil {
		tr = o.wrap(sess)
	}
	n, err := New(Config{Start: role, Replica: rep, Link: tr,
		Emit: func(outs []machine.Output) {
			for _, out := range outs {
				if o.onEmit != nil {
					o.onEmit(out)
					continue
				}
				if o.released != nil {
					o.released <- out.Seq
					continue
				}
				e.rec.add(op{node: id, what: "emit", seq: out.Seq, data: out.Payload})
			}
		},
		OnEvent: func(ev Event) {
			select {
			case s.events <- ev:
			default:
			}
		},
		Diverge: o.diverge, MayGoLive: o.mayGoLive, MayGoOnAlone: o.mayAlone, MayTakeOver: o.mayTake, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	s.node = n
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		sess.Close()
	})
	return s
}

// waitEvent returns the first event of kind k (the deadline only guards
// against a hang).
func (s *side) waitEvent(t *testing.T, k EventKind) Event {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case ev := <-s.events:
			if ev.Kind == k {
				return ev
			}
			t.Logf("node %d: %v@%d %s", s.id, ev.Kind, ev.Seq, ev.Reason)
			if ev.Kind == EventProtocol || ev.Kind == EventSplitBrain {
				t.Errorf("node %d: unexpected %v: %s", s.id, ev.Kind, ev.Reason)
			}
		case <-deadline:
			t.Fatalf("node %d: no %v event; status %+v", s.id, k, s.node.Status())
		}
	}
}

func (s *side) waitFor(t *testing.T, what string, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := s.node.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			var evs []string
			for len(s.events) > 0 {
				ev := <-s.events
				evs = append(evs, fmt.Sprintf("%v@%d %s", ev.Kind, ev.Seq, ev.Reason))
			}
			t.Fatalf("node %d: never %s; status %+v; events %q; link %+v", s.id, what, st, evs, s.sess.Status())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// quiet waits until the primary has stamped at least seq and its peer has
// acked everything stamped.
func (s *side) quiet(t *testing.T, seq uint64) Status {
	return s.waitFor(t, "quiescent", func(st Status) bool {
		return st.Seq >= seq && st.Peer == PeerSynced && st.PeerApplied == st.Seq
	})
}

func submitN(t *testing.T, s *side, from, n int) {
	t.Helper()
	for i := range n {
		p := []byte(fmt.Sprintf("frame %d", from+i))
		if i%97 == 0 {
			p[0] = 'T' // arm a timer: ticks join the log too
		}
		if err := s.node.Submit(context.Background(), machine.InFrame, p); err != nil {
			t.Fatalf("submit %d: %v", from+i, err)
		}
	}
}

// submitUntil keeps submitting from a goroutine until stop is closed or the
// node stops being primary; it returns how many it submitted.
func submitUntil(s *side, stop chan struct{}, pace time.Duration) chan int {
	res := make(chan int, 1)
	go func() {
		i := 0
		for {
			select {
			case <-stop:
				res <- i
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := s.node.Submit(ctx, machine.InFrame, []byte(fmt.Sprintf("bg %d", i)))
			cancel()
			if errors.Is(err, ErrNotPrimary) || err != nil {
				res <- i
				return
			}
			i++
			if pace > 0 {
				time.Sleep(pace)
			}
		}
	}()
	return res
}

// sameState fails unless both nodes reach the same state hash at the same
// seq (asked through the nodes' loops: the replicas are theirs).
func sameState(t *testing.T, a, b *side) {
	t.Helper()
	ctx := context.Background()
	var sa, ha, sb, hb uint64
	for range 1000 {
		var err error
		if sa, ha, err = a.node.StateHash(ctx); err != nil {
			t.Fatal(err)
		}
		if sb, hb, err = b.node.StateHash(ctx); err != nil {
			t.Fatal(err)
		}
		if sa == sb {
			if ha != hb {
				t.Fatalf("replicas differ at seq %d: %#x vs %#x", sa, ha, hb)
			}
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("replicas never at the same seq (%d vs %d)", sa, sb)
}

func errf(format string, a ...any) error { return fmt.Errorf(format, a...) }

package mirror

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/lockstep"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// diskRep is a replica whose inputs are block writes and flushes on its
// mirrored disk: what the NBD service does inside the real machine.
type diskRep struct {
	id  uint8
	dev *Mirror
	rec *trace
	n   uint64
	// beforeSnapshot runs inside the primary's Snapshot (the daemon's
	// wrapper: FinishResync while the VS is paused).
	beforeSnapshot func()
}

func (r *diskRep) Step(in machine.Input) []machine.Output {
	if in.Kind != machine.InCommand {
		return nil
	}
	r.rec.add(fmt.Sprintf("step%d:%d", r.id, in.Seq))
	r.n++
	reply := "ok"
	switch in.Payload[0] {
	case 'W':
		off := int64(binary.LittleEndian.Uint64(in.Payload[1:]))
		if _, err := r.dev.WriteAt(pattern(in.Seq, off), off); err != nil {
			reply = err.Error()
		}
	case 'F':
		if err := r.dev.Flush(); err != nil {
			reply = err.Error()
		}
	}
	return []machine.Output{{Seq: in.Seq, Kind: machine.OutEvent, Payload: []byte(reply)}}
}
func (r *diskRep) NextDeadline() int64 { return 0 }
func (r *diskRep) Snapshot() []byte {
	if r.beforeSnapshot != nil {
		r.beforeSnapshot()
	}
	return binary.LittleEndian.AppendUint64(nil, r.n)
}
func (r *diskRep) Restore(b []byte) error { r.n = binary.LittleEndian.Uint64(b); return nil }
func (r *diskRep) StateHash() uint64      { return r.n }

type trace struct {
	mu  sync.Mutex
	log []string
}

func (t *trace) add(s string) {
	t.mu.Lock()
	t.log = append(t.log, s)
	t.mu.Unlock()
}

func (t *trace) snapshot() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.log)
}

// A FLUSH's reply (the primary's released output) leaves only after both
// copies flushed: the primary's own flush inside its step, the
// secondary's deferred flush in lockstep's BeforeAck, before its ack.
func TestFlushReplyOnlyAfterBothCopiesFlushed(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	tr := &trace{}
	for id := uint8(1); id <= 2; id++ {
		p.n[id].fault.mu.Lock()
		p.n[id].fault.onFlush = func() { tr.add(fmt.Sprintf("flush%d", id)) }
		p.n[id].fault.mu.Unlock()
	}
	m1, m2 := p.n[1].m, p.n[2].m
	// The lockstep nodes share the sessions with the mirrors: detach the
	// harness's dispatchers and let Demux split each session.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var nodes [3]*lockstep.Node
	synced := make(chan struct{}, 1)
	for id := uint8(1); id <= 2; id++ {
		m := p.n[id].m
		tp := demuxFromHarness(ctx, p, id)
		role := lockstep.RolePrimary
		var before func(uint64) error
		if id == 2 {
			role = lockstep.RoleJoining
			before = func(uint64) error { return m.FlushPending() }
		}
		n, err := lockstep.New(lockstep.Config{Start: role, Replica: &diskRep{id: id, dev: m, rec: tr}, Link: tp,
			Emit: func(outs []machine.Output) {
				for _, o := range outs {
					tr.add(fmt.Sprintf("out:%d:%s", o.Seq, o.Payload))
				}
			},
			OnEvent: func(e lockstep.Event) {
				if e.Kind == lockstep.EventPeerSynced {
					select {
					case synced <- struct{}{}:
					default:
					}
				}
			},
			BeforeAck: before, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		nodes[id] = n
		go n.Run(ctx)
	}
	if err := m1.StartLockstep(); err != nil {
		t.Fatal(err)
	}
	if err := m2.StartLockstep(); err != nil {
		t.Fatal(err)
	}
	if err := m2.SetDeferFlush(true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-synced:
	case <-time.After(30 * time.Second):
		t.Fatal("secondary never synced")
	}
	for i := range 30 {
		var payload []byte
		if i%5 == 4 {
			payload = []byte{'F'}
		} else {
			payload = binary.LittleEndian.AppendUint64([]byte{'W'}, uint64(i)*4096)
		}
		if err := nodes[1].Submit(ctx, machine.InCommand, payload); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		log := tr.snapshot()
		outs := 0
		for _, s := range log {
			if len(s) > 4 && s[:4] == "out:" {
				outs++
			}
		}
		if outs >= 30 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of 30 replies released: %v", outs, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	log := tr.snapshot()
	idx := func(s string) int { return slices.Index(log, s) }
	checked := 0
	for i, s := range log {
		var seq uint64
		var reply string
		if _, err := fmt.Sscanf(s, "out:%d:%s", &seq, &reply); err != nil {
			continue
		}
		if reply != "ok" {
			t.Fatalf("reply %d: %s", seq, reply)
		}
		if (seq-1)%5 != 4 || seq < 2 { // inputs are seq 1.. after the snapshot at 0; flushes every fifth
			continue
		}
		for node := 1; node <= 2; node++ {
			st := idx(fmt.Sprintf("step%d:%d", node, seq))
			if st < 0 || st > i {
				t.Fatalf("reply to flush %d released before node %d applied it:\n%v", seq, node, log)
			}
			if !slices.Contains(log[st:i], fmt.Sprintf("flush%d", node)) {
				t.Fatalf("reply to flush %d released before node %d's copy flushed:\n%v", seq, node, log)
			}
		}
		checked++
	}
	if checked != 6 {
		t.Fatalf("checked %d flush replies, want 6:\n%v", checked, log)
	}
	if st := m2.Stats(); st.DeferredFlushes == 0 {
		t.Fatalf("secondary flushed synchronously: %+v", st)
	}
	// The last input was a flush: once the secondary reported it durable,
	// the primary holds no marks (a double crash now resyncs nothing).
	for {
		_, dirty := p.n[1].disk.Marks()
		if dirty == 0 && m1.Stats().MarkClears > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("primary still marks %d bytes after both copies flushed (%+v)", dirty, m1.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// demuxFromHarness stops the harness's dispatcher for node id and returns
// the lockstep half of a Demux over its session.
func demuxFromHarness(ctx context.Context, p *pair, id uint8) lockstep.Transport {
	m := p.n[id].m
	ch := make(chan link.Delivery, 1024)
	p.hook[id].Store(&ch)
	// The peer was heard before the hook: tell lockstep, as the daemon does.
	ch <- link.Delivery{Event: &link.Event{Kind: link.EventPeerUp}}
	return Demux(ctx, chanTransport{p.sess[id], ch}, m.IsMine, func(d link.Delivery) { m.Handle(d) })
}

type chanTransport struct {
	s  *link.Session
	ch chan link.Delivery
}

func (c chanTransport) Send(typ uint8, b []byte) error { return c.s.Send(typ, b) }
func (c chanTransport) Incoming() <-chan link.Delivery { return c.ch }

// The daemon's reintegration sequence from the package doc, with real
// lockstep nodes: node 1 runs the VS alone and marks; node 2 comes back;
// both Connect (bulk resync while node 1 keeps writing); node 2 joins;
// node 1's Snapshot runs FinishResync; both StartLockstep; writes and
// flushes go on in lockstep. The copies end byte-identical and node 2 took
// node 1's generations.
func TestReintegrationThroughLockstepHandOver(t *testing.T) {
	p := newPair(t)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m1, m2 := p.n[1].m, p.n[2].m
	tr := &trace{}
	outs := make(chan uint64, 4096)
	events := make(chan lockstep.Event, 64)
	newNode := func(id uint8, role lockstep.Role, rep *diskRep, before func(uint64) error, onEvent func(lockstep.Event)) *lockstep.Node {
		n, err := lockstep.New(lockstep.Config{Start: role, Replica: rep, Link: demuxFromHarness(ctx, p, id),
			Emit: func(o []machine.Output) {
				for _, x := range o {
					if string(x.Payload) != "ok" {
						t.Errorf("reply %d: %s", x.Seq, x.Payload)
					}
					outs <- x.Seq
				}
			},
			OnEvent: onEvent, BeforeAck: before, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		go n.Run(ctx)
		return n
	}
	// Node 1 alone: go-live sequence.
	if ok, why := m1.MayGoLive(); !ok {
		t.Fatal(why)
	}
	if err := m1.PeerLost(); err != nil {
		t.Fatal(err)
	}
	rep1 := &diskRep{id: 1, dev: m1, rec: tr}
	rep1.beforeSnapshot = func() {
		if err := m1.FinishResync(ctx); err != nil {
			t.Errorf("finish resync: %v", err)
		}
	}
	n1 := newNode(1, lockstep.RolePrimary, rep1, func(uint64) error { return m1.FlushPending() }, func(e lockstep.Event) {
		switch e.Kind {
		case lockstep.EventSnapshotSent:
			if err := m1.StartLockstep(); err != nil {
				t.Error(err)
			}
		case lockstep.EventPeerLost:
			if err := m1.PeerLost(); err != nil {
				t.Error(err)
			}
		}
		events <- e
	})
	submitted := 0
	submit := func(k int, flushEvery int) {
		for i := range k {
			var payload []byte
			if flushEvery > 0 && i%flushEvery == flushEvery-1 {
				payload = []byte{'F'}
			} else {
				off := int64((submitted*7919)%(testData/4096)) * 4096
				payload = binary.LittleEndian.AppendUint64([]byte{'W'}, uint64(off))
			}
			submitted++
			if err := n1.Submit(ctx, machine.InCommand, payload); err != nil {
				t.Fatal(err)
			}
		}
	}
	submit(300, 0)
	// Node 2 is back: both Connect while node 1 keeps writing.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for id := uint8(1); id <= 2; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[id] = p.n[id].m.Connect(ctx)
		}()
	}
	submit(200, 0)
	wg.Wait()
	if errs[1] != nil || errs[2] != nil {
		t.Fatalf("connect: %v / %v", errs[1], errs[2])
	}
	if ok, _ := m2.MayGoLive(); ok {
		t.Fatal("target may go live before the hand-over")
	}
	// Node 2 joins only after its Connect returned.
	rep2 := &diskRep{id: 2, dev: m2, rec: tr}
	newNode(2, lockstep.RoleJoining, rep2, func(uint64) error { return m2.FlushPending() }, func(e lockstep.Event) {
		if e.Kind == lockstep.EventRestored {
			if err := m2.StartLockstep(); err != nil {
				t.Error(err)
			}
			if err := m2.SetDeferFlush(true); err != nil {
				t.Error(err)
			}
		}
	})
	deadline := time.After(30 * time.Second)
	for synced := false; !synced; {
		select {
		case e := <-events:
			synced = e.Kind == lockstep.EventPeerSynced
		case <-deadline:
			t.Fatal("node 2 never synced")
		}
	}
	submit(300, 10)
	for got := 0; got < submitted; {
		select {
		case <-outs:
			got++
		case <-deadline:
			t.Fatalf("%d of %d replies", got, submitted)
		}
	}
	// Every reply is out: node 2 applied and flushed the last input.
	a, b := m1.Disk().Metadata(), m2.Disk().Metadata()
	if b.State != vdisk.UpToDate || a.Gens != b.Gens {
		t.Fatalf("after hand-over: node 1 %+v, node 2 %+v %v", a.Gens, b.Gens, b.State)
	}
	if ok, why := m2.MayGoLive(); !ok {
		t.Fatalf("node 2 after hand-over: %s", why)
	}
	p.assertIdentical()
	if c := m1.ResyncStats().Copied; c == 0 || c > 600*4096 {
		t.Fatalf("resync copied %d bytes for 500 solo writes", c)
	}
}

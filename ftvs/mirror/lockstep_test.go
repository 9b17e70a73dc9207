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
)

// diskRep is a replica whose inputs are block writes and flushes on its
// mirrored disk: what the NBD service does inside the real machine.
type diskRep struct {
	id  uint8
	dev *Mirror
	rec *trace
	n   uint64
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
func (r *diskRep) NextDeadline() int64    { return 0 }
func (r *diskRep) Snapshot() []byte       { return binary.LittleEndian.AppendUint64(nil, r.n) }
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

package state

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"time"
)

// Source is what the daemon implements to feed the Model.
type Source interface {
	// Snapshot reports the pair now. Version and Events are ignored: the
	// Model numbers versions and keeps the event ring itself.
	Snapshot() Snapshot
	// Events delivers the daemon's events as they happen (nil: none). The
	// Model is its only reader.
	Events() <-chan Event
}

// Controller carries out the operator's controls. The daemon implements it;
// every call returns once the request is accepted (or refused with a reason).
type Controller interface {
	// SetInService takes a CoServer out of service (false) or brings it back.
	SetInService(ctx context.Context, node int, in bool) error
	// MovePort moves the VS's network port to node's redirected NIC.
	MovePort(ctx context.Context, node int) error
	StartVS(ctx context.Context) error
	StopVS(ctx context.Context) error
	StartResync(ctx context.Context, disk string) error
	StartVerify(ctx context.Context, disk string) error
	// ResolveSplitBrain keeps survivor's data and makes the other node
	// discard its changes and resync from it.
	ResolveSplitBrain(ctx context.Context, survivor int) error
}

// DefaultEventRing is how many events the Model keeps.
const DefaultEventRing = 200

// Model holds the latest snapshot, the event ring and the subscribers.
type Model struct {
	mu      sync.Mutex
	cur     Snapshot
	events  []Event // ring, oldest first
	maxEvs  int
	subs    map[int]chan struct{}
	nextSub int
	hooks   []func(Event)
	poll    chan struct{}
}

// NewModel returns an empty Model keeping at most ringSize events (0: default).
func NewModel(ringSize int) *Model {
	if ringSize <= 0 {
		ringSize = DefaultEventRing
	}
	return &Model{maxEvs: ringSize, subs: map[int]chan struct{}{}, poll: make(chan struct{}, 1)}
}

// OnEvent registers fn to receive every event (the daemon's and the derived
// ones), from the Model's goroutine. fn must not block: the alert
// dispatcher's Notify only queues. Register before Run.
func (m *Model) OnEvent(fn func(Event)) {
	m.mu.Lock()
	m.hooks = append(m.hooks, fn)
	m.mu.Unlock()
}

// Current returns a copy of the latest snapshot with the event ring.
func (m *Model) Current() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.cur.Clone()
	s.Events = append([]Event(nil), m.events...)
	return s
}

// Subscribe returns a channel that receives a tick after each change (ticks
// coalesce: a slow reader sees the latest state, never a backlog) and a
// cancel function.
func (m *Model) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	m.mu.Lock()
	id := m.nextSub
	m.nextSub++
	m.subs[id] = ch
	m.mu.Unlock()
	return ch, func() {
		m.mu.Lock()
		delete(m.subs, id)
		m.mu.Unlock()
	}
}

// Refresh asks Run to poll the Source now (after a control, say).
func (m *Model) Refresh() {
	select {
	case m.poll <- struct{}{}:
	default:
	}
}

// Run polls src every interval and reads its events until ctx ends.
func (m *Model) Run(ctx context.Context, src Source, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("state: poll interval %s must be positive", every)
	}
	m.Update(src.Snapshot())
	t := time.NewTicker(every)
	defer t.Stop()
	evs := src.Events()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			m.Update(src.Snapshot())
		case <-m.poll:
			m.Update(src.Snapshot())
		case e, ok := <-evs:
			if !ok {
				evs = nil
				continue
			}
			m.AddEvent(e)
		}
	}
}

// Update installs a new snapshot, records the events its differences imply
// (CoServer lost, link lost, ...) and wakes the subscribers if anything changed.
func (m *Model) Update(s Snapshot) {
	s = s.Clone()
	if s.At.IsZero() {
		s.At = time.Now().UTC()
	}
	m.mu.Lock()
	prev := m.cur
	first := prev.Version == 0
	a, b := prev, s
	a.Version, a.At, a.Events, b.Version, b.At, b.Events = 0, time.Time{}, nil, 0, time.Time{}, nil
	changed := first || !reflect.DeepEqual(a, b)
	s.Version, s.Events = prev.Version, nil
	if changed {
		s.Version++
	}
	m.cur = s
	// The first snapshot is compared with nothing: only what is wrong
	// without a before (a witness that never answered) is reported.
	derived := Diff(&prev, &s, s.At)
	m.mu.Unlock()
	for _, e := range derived {
		m.AddEvent(e)
	}
	if changed && len(derived) == 0 {
		m.wake()
	}
}

// AddEvent records an event, calls the hooks and wakes the subscribers.
func (m *Model) AddEvent(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	m.mu.Lock()
	if len(m.events) >= m.maxEvs {
		n := copy(m.events, m.events[len(m.events)-m.maxEvs+1:])
		m.events = m.events[:n]
	}
	m.events = append(m.events, e)
	m.cur.Version++
	hooks := append([]func(Event){}, m.hooks...)
	m.mu.Unlock()
	for _, h := range hooks {
		h(e)
	}
	m.wake()
}

func (m *Model) wake() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

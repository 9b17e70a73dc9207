package alert

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type blockingChannel struct{ release chan struct{} }

func (b *blockingChannel) Name() string { return "blocking" }
func (b *blockingChannel) Send(ctx context.Context, a Alert) error {
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return nil
}

type flakyChannel struct {
	mu    sync.Mutex
	fails int
	got   []Alert
	perm  bool
}

func (f *flakyChannel) Name() string { return "flaky" }
func (f *flakyChannel) Send(ctx context.Context, a Alert) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.perm {
		return Permanent(errors.New("refused"))
	}
	if f.fails > 0 {
		f.fails--
		return errors.New("try again")
	}
	f.got = append(f.got, a)
	return nil
}

func TestNotifyNeverBlocksAndCountsDrops(t *testing.T) {
	b := &blockingChannel{release: make(chan struct{})}
	d := NewDispatcher(Options{Queue: 4, PerKind: 1 << 20}, b)
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	defer func() { cancel(); d.Wait() }()
	done := make(chan struct{})
	go func() {
		for i := 0; i < 1000; i++ {
			d.Notify(New(LinkLost, 0, "link1", "x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Notify blocked behind a stuck channel")
	}
	st := d.Stats().Channels[0]
	// At most one alert is inside Send, four wait in the queue.
	if st.Dropped < 1000-5 || st.Dropped > 1000-4 {
		t.Fatalf("dropped %d of 1000 with a queue of 4", st.Dropped)
	}
	close(b.release)
}

func TestRateLimitPerKind(t *testing.T) {
	f := &flakyChannel{}
	d := NewDispatcher(Options{PerKind: 3, Window: time.Hour}, f)
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if !d.Notify(New(SplitBrain, 0, "", "")) {
			t.Fatalf("alert %d limited", i)
		}
	}
	if d.Notify(New(SplitBrain, 0, "", "")) {
		t.Fatal("fourth split-brain within the window was not limited")
	}
	if !d.Notify(New(CoServerLost, 2, "", "")) {
		t.Fatal("another kind was limited")
	}
	now = now.Add(time.Hour)
	if !d.Notify(New(SplitBrain, 0, "", "")) {
		t.Fatal("still limited after the window")
	}
	if got := d.Stats().RateLimited; got != 1 {
		t.Fatalf("rate_limited = %d", got)
	}
}

func TestRetryWithBackoffThenPermanent(t *testing.T) {
	f := &flakyChannel{fails: 3}
	d := NewDispatcher(Options{RetryInitial: time.Millisecond, RetryMax: 4 * time.Millisecond, Attempts: 5}, f)
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	defer func() { cancel(); d.Wait() }()
	d.Notify(New(Divergence, 0, "vs", "hash mismatch"))
	waitFor(t, func() bool { return d.Stats().Channels[0].Sent == 1 })
	if st := d.Stats().Channels[0]; st.Retries != 3 || st.Failed != 0 {
		t.Fatalf("stats %+v", st)
	}
	f.mu.Lock()
	f.perm = true
	f.mu.Unlock()
	d.Notify(New(Divergence, 0, "vs", "again"))
	waitFor(t, func() bool { return d.Stats().Channels[0].Failed == 1 })
	if st := d.Stats().Channels[0]; st.Retries != 3 {
		t.Fatalf("a permanent error was retried: %+v", st)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

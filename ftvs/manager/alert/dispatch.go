package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Channel delivers one alert to one receiver. Send may fail; the Dispatcher
// retries with backoff unless the error is Permanent.
type Channel interface {
	Name() string
	Send(ctx context.Context, a Alert) error
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks an error that a retry cannot fix (a 4xx answer, a refused
// recipient).
func Permanent(err error) error { return permanentError{err} }

// Options tune the Dispatcher. Zero values take the defaults.
type Options struct {
	Queue        int           // alerts waiting per channel (default 256)
	PerKind      int           // alerts of one kind allowed per Window (default 10)
	Window       time.Duration // default 1 minute
	Attempts     int           // tries per alert and channel (default 6)
	RetryInitial time.Duration // first backoff (default 1s), doubled each retry
	RetryMax     time.Duration // backoff cap (default 1 minute)
	SendTimeout  time.Duration // one try (default 10s)
	Log          *slog.Logger
}

func (o *Options) defaults() {
	if o.Queue <= 0 {
		o.Queue = 256
	}
	if o.PerKind <= 0 {
		o.PerKind = 10
	}
	if o.Window <= 0 {
		o.Window = time.Minute
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.RetryInitial <= 0 {
		o.RetryInitial = time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = time.Minute
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// ChannelStats counts one channel's deliveries.
type ChannelStats struct {
	Name    string `json:"name"`
	Sent    uint64 `json:"sent"`
	Retries uint64 `json:"retries"`
	Failed  uint64 `json:"failed"`  // gave up after the last attempt or a permanent error
	Dropped uint64 `json:"dropped"` // queue full
	Queued  int    `json:"queued"`
}

// Stats is the Dispatcher's counters.
type Stats struct {
	RateLimited uint64         `json:"rate_limited"`
	Channels    []ChannelStats `json:"channels"`
}

type worker struct {
	ch                             Channel
	q                              chan Alert
	sent, retries, failed, dropped atomic.Uint64
}

// Dispatcher fans alerts out to channels.
type Dispatcher struct {
	opt     Options
	workers []*worker
	mu      sync.Mutex
	window  map[Kind][]time.Time // send times within the window, per kind
	limited atomic.Uint64
	now     func() time.Time
	wg      sync.WaitGroup
}

// NewDispatcher returns a Dispatcher for the channels; call Start.
func NewDispatcher(opt Options, chans ...Channel) *Dispatcher {
	opt.defaults()
	d := &Dispatcher{opt: opt, window: map[Kind][]time.Time{}, now: time.Now}
	for _, c := range chans {
		d.workers = append(d.workers, &worker{ch: c, q: make(chan Alert, opt.Queue)})
	}
	return d
}

// Start runs one goroutine per channel until ctx ends; Wait waits for them.
func (d *Dispatcher) Start(ctx context.Context) {
	for _, w := range d.workers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.run(ctx, w)
		}()
	}
}

// Wait returns when every channel goroutine has stopped.
func (d *Dispatcher) Wait() { d.wg.Wait() }

// Notify queues a for every channel. It never blocks: it returns false when
// the kind is over its rate limit; a full channel queue drops and counts.
func (d *Dispatcher) Notify(a Alert) bool {
	if a.Severity == "" {
		a.Severity = kinds[a.Kind].severity
	}
	now := d.now()
	d.mu.Lock()
	recent := d.window[a.Kind]
	i := 0
	for i < len(recent) && now.Sub(recent[i]) >= d.opt.Window {
		i++
	}
	recent = recent[i:]
	if len(recent) >= d.opt.PerKind {
		d.window[a.Kind] = recent
		d.mu.Unlock()
		d.limited.Add(1)
		return false
	}
	d.window[a.Kind] = append(recent, now)
	d.mu.Unlock()
	for _, w := range d.workers {
		select {
		case w.q <- a:
		default:
			w.dropped.Add(1)
		}
	}
	return true
}

// Stats reports the counters.
func (d *Dispatcher) Stats() Stats {
	s := Stats{RateLimited: d.limited.Load()}
	for _, w := range d.workers {
		s.Channels = append(s.Channels, ChannelStats{Name: w.ch.Name(), Sent: w.sent.Load(), Retries: w.retries.Load(),
			Failed: w.failed.Load(), Dropped: w.dropped.Load(), Queued: len(w.q)})
	}
	return s
}

func (d *Dispatcher) run(ctx context.Context, w *worker) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-w.q:
			d.deliver(ctx, w, a)
		}
	}
}

func (d *Dispatcher) deliver(ctx context.Context, w *worker, a Alert) {
	wait := d.opt.RetryInitial
	for attempt := 1; ; attempt++ {
		sctx, cancel := context.WithTimeout(ctx, d.opt.SendTimeout)
		err := w.ch.Send(sctx, a)
		cancel()
		if err == nil {
			w.sent.Add(1)
			return
		}
		var perm permanentError
		if errors.As(err, &perm) || attempt >= d.opt.Attempts || ctx.Err() != nil {
			w.failed.Add(1)
			d.opt.Log.Warn("alert not delivered", "channel", w.ch.Name(), "kind", string(a.Kind), "attempts", attempt, "err", err)
			return
		}
		w.retries.Add(1)
		d.opt.Log.Info("alert delivery failed, retrying", "channel", w.ch.Name(), "kind", string(a.Kind), "in", wait, "err", err)
		select {
		case <-ctx.Done():
			w.failed.Add(1)
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, d.opt.RetryMax)
	}
}

// String names the channels, for logs.
func (d *Dispatcher) String() string {
	names := make([]string, len(d.workers))
	for i, w := range d.workers {
		names[i] = w.ch.Name()
	}
	return fmt.Sprintf("alerts to %v", names)
}

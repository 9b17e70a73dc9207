package vdisk

import (
	"context"
	"sync"
	"time"
)

// ClientFirst is a Yielder that holds resync back while client requests are
// in flight on the source: the runtime brackets each client request with
// Begin and End. MaxWait (DRBD's c-min-rate idea) lets the resync take one
// chunk after waiting that long even under constant client load, so it
// always finishes; 0 means wait for idle without limit.
type ClientFirst struct {
	MaxWait time.Duration

	mu     sync.Mutex
	active int
	idle   chan struct{} // closed when active drops to zero
}

// Begin records a client request starting.
func (c *ClientFirst) Begin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == 0 {
		c.idle = make(chan struct{})
	}
	c.active++
}

// End records a client request finishing.
func (c *ClientFirst) End() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active == 0 {
		return // unbalanced End: ignore rather than go negative
	}
	if c.active--; c.active == 0 {
		close(c.idle)
	}
}

// Yield returns at once when no client request is in flight, otherwise when
// the last one ends, MaxWait passes, or ctx ends.
func (c *ClientFirst) Yield(ctx context.Context) error {
	c.mu.Lock()
	if c.active == 0 {
		c.mu.Unlock()
		return nil
	}
	idle := c.idle
	c.mu.Unlock()
	var timeout <-chan time.Time
	if c.MaxWait > 0 {
		t := time.NewTimer(c.MaxWait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-idle:
		return nil
	case <-timeout:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

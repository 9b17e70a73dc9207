package vdisk

import (
	"context"
	"fmt"
	"time"
)

// TokenBucket is a Pacer: Rate bytes per second, bursts up to Burst bytes.
// The clock and the sleep are injectable so tests count bytes per token in
// virtual time instead of measuring wall time.
type TokenBucket struct {
	Rate  int64 // bytes per second; must be positive
	Burst int64 // bucket size in bytes; 0: Rate/10 (100 ms worth)
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	tokens float64
	last   time.Time
	primed bool
}

// NewTokenBucket returns a bucket on the real clock.
func NewTokenBucket(rate, burst int64) *TokenBucket {
	return &TokenBucket{Rate: rate, Burst: burst, Now: time.Now, Sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (b *TokenBucket) burst() float64 {
	if b.Burst > 0 {
		return float64(b.Burst)
	}
	return max(float64(b.Rate)/10, 1)
}

// Take waits until n bytes' worth of tokens are available and consumes
// them. A request larger than the bucket drives the balance negative: it
// is paid back before the next one, so the average never exceeds Rate.
func (b *TokenBucket) Take(ctx context.Context, n int64) error {
	if b.Rate <= 0 {
		return fmt.Errorf("token bucket rate %d is not positive", b.Rate)
	}
	now := b.Now()
	if !b.primed {
		b.tokens, b.last, b.primed = b.burst(), now, true
	}
	b.refill(now)
	for b.tokens < 0 || (b.tokens < float64(n) && b.tokens < b.burst()) {
		need := min(float64(n), b.burst()) - b.tokens
		d := time.Duration(need / float64(b.Rate) * float64(time.Second))
		if d <= 0 {
			d = time.Nanosecond
		}
		if err := b.Sleep(ctx, d); err != nil {
			return err
		}
		b.refill(b.Now())
	}
	b.tokens -= float64(n)
	return nil
}

func (b *TokenBucket) refill(now time.Time) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.tokens+dt.Seconds()*float64(b.Rate), b.burst())
		b.last = now
	}
}

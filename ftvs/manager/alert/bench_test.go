package alert

import (
	"context"
	"testing"
	"time"
)

// BenchmarkNotify: the cost the runtime pays per alert (queue for every
// channel; the channels run elsewhere).
func BenchmarkNotify(b *testing.B) {
	f := &flakyChannel{}
	d := NewDispatcher(Options{PerKind: 1 << 30, Window: time.Hour, Queue: 1 << 16}, f, &flakyChannel{}, &flakyChannel{})
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	defer func() { cancel(); d.Wait() }()
	a := New(LinkLost, 1, "link1", "bench")
	b.ResetTimer()
	for range b.N {
		d.Notify(a)
	}
}

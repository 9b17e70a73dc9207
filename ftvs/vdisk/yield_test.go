package vdisk

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientFirstWaitsForIdle(t *testing.T) {
	var c ClientFirst
	if err := c.Yield(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Begin()
	c.Begin()
	var ended atomic.Bool
	done := make(chan struct{})
	go func() {
		c.Yield(context.Background())
		if !ended.Load() {
			t.Error("Yield returned while client requests were in flight")
		}
		close(done)
	}()
	time.Sleep(20 * time.Millisecond) // give a broken Yield the chance to return early
	c.End()
	time.Sleep(20 * time.Millisecond)
	ended.Store(true)
	c.End()
	<-done
	c.End() // unbalanced: ignored
	if err := c.Yield(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestClientFirstMinimumProgress(t *testing.T) {
	c := ClientFirst{MaxWait: time.Millisecond}
	c.Begin() // a client that never goes idle
	if err := c.Yield(context.Background()); err != nil {
		t.Fatalf("Yield under constant load: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (&ClientFirst{}).Yield(ctx); err != nil {
		t.Fatalf("idle gate with a cancelled context: %v", err)
	}
	busy := &ClientFirst{}
	busy.Begin()
	if err := busy.Yield(ctx); err == nil {
		t.Fatal("Yield ignored a cancelled context")
	}
}

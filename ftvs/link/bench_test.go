package link_test

import (
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/link/linktest"
)

// benchPair is two sessions over one veth link between two namespaces.
func benchPair(b *testing.B, prefix string, net8 int) (*link.Session, *link.Session) {
	p := linktest.NewPair(b, prefix, 1, net8)
	c1 := link.Config{Node: 1, Key: testKey, Links: p.LinksA, Net: linktest.Net{NS: p.A}, MaxUnacked: 512 << 20, Log: quiet}
	c2 := link.Config{Node: 2, Key: testKey, Links: p.LinksB, Net: linktest.Net{NS: p.B}, MaxUnacked: 512 << 20, Log: quiet}
	s2, err := link.Start(c2)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s2.Close() })
	s1, err := link.Start(c1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s1.Close() })
	for _, s := range []*link.Session{s1, s2} {
		for d := range s.Incoming() {
			if d.Event != nil && d.Event.Kind == link.EventPeerUp {
				break
			}
		}
	}
	return s1, s2
}

func nextMessage(b *testing.B, s *link.Session) link.Delivery {
	for d := range s.Incoming() {
		if d.Event == nil {
			return d
		}
	}
	b.Fatal("session closed")
	return link.Delivery{}
}

// BenchmarkLinkRTT: one message to the peer and its echo back, through
// the whole session (AEAD, framing, queues): ns/op is the round trip.
func BenchmarkLinkRTT(b *testing.B) {
	s1, s2 := benchPair(b, "fl6r", 71)
	go func() {
		for d := range s2.Incoming() {
			if d.Event == nil {
				s2.Send(d.Type, d.Payload)
			}
		}
	}()
	msg := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		s1.Send(1, msg)
		nextMessage(b, s1)
	}
	b.StopTimer()
	b.ReportMetric(float64(s1.Status().Links[0].RTT.Microseconds()), "heartbeat-rtt-µs")
}

func benchStream(b *testing.B, prefix string, net8, size int) {
	s1, s2 := benchPair(b, prefix, net8)
	msg := make([]byte, size)
	b.SetBytes(int64(size))
	done := make(chan struct{})
	go func() {
		for range b.N {
			nextMessage(b, s2)
		}
		close(done)
	}()
	b.ResetTimer()
	t0 := time.Now()
	for range b.N {
		for s1.Send(1, msg) != nil {
			time.Sleep(50 * time.Microsecond)
		}
	}
	<-done
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "msgs/s")
}

// BenchmarkLinkSmall: 64-byte messages (a lockstep input per frame).
func BenchmarkLinkSmall(b *testing.B) { benchStream(b, "fl6s", 72, 64) }

// BenchmarkLinkBulk: 64 KiB messages (batches, snapshot chunks).
func BenchmarkLinkBulk(b *testing.B) { benchStream(b, "fl6k", 73, 64<<10) }

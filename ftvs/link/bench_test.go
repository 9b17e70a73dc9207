package link_test

import (
	"os"
	"os/exec"
	"strings"
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

// BenchmarkLinkRTTProcess is BenchmarkLinkRTT with the echoing peer in a
// child process (this test binary again), as the two CoServer daemons are:
// each round trip then also pays two process wake-ups, which the lockstep
// daemon's output rule pays too.
func BenchmarkLinkRTTProcess(b *testing.B) {
	p := linktest.NewPair(b, "fl6x", 1, 76)
	lb := p.LinksB[0]
	cmd := exec.Command(os.Args[0], "-test.run=^TestLinkEchoChild$")
	cmd.Env = append(os.Environ(), "FTVS_LINK_ECHO="+strings.Join([]string{p.B, lb.Interface, lb.Local, lb.Peer}, ","))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c1 := link.Config{Node: 1, Key: testKey, Links: p.LinksA, Net: linktest.Net{NS: p.A}, Log: quiet}
	s1, err := link.Start(c1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s1.Close() })
	for d := range s1.Incoming() {
		if d.Event != nil && d.Event.Kind == link.EventPeerUp {
			break
		}
	}
	msg := make([]byte, 64)
	for range 100 { // warm up both processes
		s1.Send(1, msg)
		nextMessage(b, s1)
	}
	b.ResetTimer()
	for range b.N {
		s1.Send(1, msg)
		nextMessage(b, s1)
	}
}

// TestLinkEchoChild is BenchmarkLinkRTTProcess's peer: it runs only in the
// child process the benchmark starts, and echoes every message.
func TestLinkEchoChild(t *testing.T) {
	v := os.Getenv("FTVS_LINK_ECHO")
	if v == "" {
		t.Skip("the echo peer of BenchmarkLinkRTTProcess (runs in its child process)")
	}
	f := strings.Split(v, ",")
	lc := []link.LinkConfig{{Interface: f[1], Local: f[2], Peer: f[3]}}
	s2, err := link.Start(link.Config{Node: 2, Key: testKey, Links: lc, Net: linktest.Net{NS: f[0]}, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for d := range s2.Incoming() {
		if d.Event == nil {
			s2.Send(d.Type, d.Payload)
		}
	}
}

package link_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/link/linktest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// quiet drops the sessions' logs (tests assert on events and status).
var quiet = slog.New(slog.DiscardHandler)

// syncBuf is a log sink the session writes from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func fastTimers(c *link.Config) {
	if c.Log == nil {
		c.Log = quiet
	}
	c.Heartbeat = 10 * time.Millisecond
	c.LinkTimeout = 100 * time.Millisecond
	c.PeerTimeout = 200 * time.Millisecond
	c.Reconnect = 30 * time.Millisecond
	c.HandshakeTimeout = 500 * time.Millisecond
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func start(t *testing.T, cfg link.Config) *link.Session {
	t.Helper()
	s, err := link.Start(cfg)
	if err != nil {
		t.Fatalf("start node %d: %v", cfg.Node, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// waitEvent reads deliveries until an event of kind k (failing on timeout,
// which only guards against a hang: nothing here measures time).
func waitEvent(t *testing.T, s *link.Session, k link.EventKind) *link.Event {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case d, ok := <-s.Incoming():
			if !ok {
				t.Fatalf("session closed while waiting for %v", k)
			}
			if d.Event != nil && d.Event.Kind == k {
				return d.Event
			}
		case <-deadline:
			t.Fatalf("no %v event", k)
		}
	}
}

func localPair(t *testing.T, key1, key2 []byte, log2 *slog.Logger) (*link.Session, *link.Session) {
	port := freePort(t)
	lc := []link.LinkConfig{{Local: "127.0.0.1", Peer: "127.0.0.1", Port: port}}
	c1 := link.Config{Node: 1, Key: key1, Links: lc}
	c2 := link.Config{Node: 2, Key: key2, Links: lc, Log: log2}
	fastTimers(&c1)
	fastTimers(&c2)
	s2 := start(t, c2)
	s1 := start(t, c1)
	return s1, s2
}

func TestMessagesInOrder(t *testing.T) {
	s1, s2 := localPair(t, testKey, testKey, nil)
	const n = 5000
	go func() {
		for i := range n {
			p := binary.BigEndian.AppendUint64(nil, uint64(i))
			p = append(p, bytes.Repeat([]byte{byte(i)}, i%3000)...)
			for {
				err := s1.Send(7, p)
				if !errors.Is(err, link.ErrWindowFull) {
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
	}()
	expectSequence(t, s2, 0, n, nil)
	if st := s1.Status(); st.Links[0].RTT <= 0 {
		t.Errorf("no RTT measured on link 0: %+v", st.Links[0])
	}
	// Byte counters: at least the payloads went out of s1 and into s2.
	payload := uint64(0)
	for i := range n {
		payload += 8 + uint64(i%3000)
	}
	if out, in := s1.Status().BytesOut, s2.Status().BytesIn; out < payload || in < payload {
		t.Errorf("bytes out of s1 %d, into s2 %d: want both at least the %d payload bytes", out, in, payload)
	}
}

// expectSequence reads messages numbered from..to-1 and fails on any gap,
// duplicate or corruption; events go to onEvent.
func expectSequence(t *testing.T, s *link.Session, from, to int, onEvent func(*link.Event)) {
	t.Helper()
	next := from
	deadline := time.After(60 * time.Second)
	for next < to {
		select {
		case d := <-s.Incoming():
			if d.Event != nil {
				if onEvent != nil {
					onEvent(d.Event)
				}
				continue
			}
			if d.Type != 7 || len(d.Payload) < 8 {
				t.Fatalf("message %d: type %d, %d bytes", next, d.Type, len(d.Payload))
			}
			got := int(binary.BigEndian.Uint64(d.Payload))
			if got != next {
				t.Fatalf("got message %d, want %d (gap or duplicate)", got, next)
			}
			for _, b := range d.Payload[8:] {
				if b != byte(got) {
					t.Fatalf("message %d corrupted", got)
				}
			}
			next++
		case <-deadline:
			t.Fatalf("stuck at message %d of %d", next, to)
		}
	}
}

func TestWrongKeyRefusedAndLogged(t *testing.T) {
	var logs syncBuf
	log2 := slog.New(slog.NewTextHandler(&logs, nil))
	s1, s2 := localPair(t, []byte("not-the-pair-key-at-all"), testKey, log2)
	deadline := time.Now().Add(20 * time.Second)
	for s2.Status().Links[0].AuthFails < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal recorded; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "peer refused") || !strings.Contains(logs.String(), "pair key") {
		t.Errorf("refusal not logged with its reason:\n%s", logs.String())
	}
	for _, s := range []*link.Session{s1, s2} {
		if st := s.Status(); st.PeerAlive || st.Links[0].Up {
			t.Errorf("session came up with a wrong key: %+v", st)
		}
	}
	if err := s1.Send(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-s2.Incoming():
		t.Fatalf("node 2 received %+v from a peer without the key", d)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestPeerRestartResetsStream(t *testing.T) {
	port := freePort(t)
	lc := []link.LinkConfig{{Local: "127.0.0.1", Peer: "127.0.0.1", Port: port}}
	c1 := link.Config{Node: 1, Key: testKey, Links: lc}
	c2 := link.Config{Node: 2, Key: testKey, Links: lc}
	fastTimers(&c1)
	fastTimers(&c2)
	s1 := start(t, c1)
	s2 := start(t, c2)
	if e := waitEvent(t, s1, link.EventPeerUp); e.Restarted {
		t.Fatal("first contact reported as restart")
	}
	s1.Send(7, binary.BigEndian.AppendUint64(nil, 0))
	expectSequence(t, s2, 0, 1, nil)
	s2.Close()
	waitEvent(t, s1, link.EventPeerSilent)
	s2b := start(t, c2)
	if e := waitEvent(t, s1, link.EventPeerUp); !e.Restarted {
		t.Fatal("new peer process not reported as restarted")
	}
	// The new incarnation's stream starts at its own beginning.
	s1.Send(7, binary.BigEndian.AppendUint64(nil, 0))
	expectSequence(t, s2b, 0, 1, nil)
}

func TestHeartbeatSilenceAndReconnect(t *testing.T) {
	p := linktest.NewPair(t, "fl6h", 1, 61)
	c1 := link.Config{Node: 1, Key: testKey, Links: p.LinksA, Net: linktest.Net{NS: p.A}}
	c2 := link.Config{Node: 2, Key: testKey, Links: p.LinksB, Net: linktest.Net{NS: p.B}}
	fastTimers(&c1)
	fastTimers(&c2)
	s2 := start(t, c2)
	s1 := start(t, c1)
	waitEvent(t, s2, link.EventPeerUp)
	waitEvent(t, s1, link.EventPeerUp)
	// Cut the cable without closing anything: only heartbeats can tell.
	linktest.Run(t, "ip", "-n", p.A, "link", "set", p.IfA[0], "down")
	e := waitEvent(t, s2, link.EventLinkDown)
	if !strings.Contains(e.Reason, "silent") {
		t.Errorf("link down for %q, want silence", e.Reason)
	}
	waitEvent(t, s2, link.EventPeerSilent)
	if s2.Status().PeerAlive {
		t.Error("peer still alive in status after silence")
	}
	linktest.Run(t, "ip", "-n", p.A, "link", "set", p.IfA[0], "up")
	if e := waitEvent(t, s2, link.EventPeerUp); e.Restarted {
		t.Error("reconnect of the same process reported as restart")
	}
	if st := s2.Status(); !st.Links[0].Up || st.Links[0].Connects < 2 {
		t.Errorf("link not reconnected: %+v", st.Links[0])
	}
}

// streamAcrossCut sends n messages from node 1 while cut() runs half-way,
// and checks node 2 sees every one exactly once, in order, with no
// peer-silent event (one link left is no failure of the peer).
func streamAcrossCut(t *testing.T, p *linktest.Pair, n int, cut func(active int)) {
	c1 := link.Config{Node: 1, Key: testKey, Links: p.LinksA, Net: linktest.Net{NS: p.A}}
	c2 := link.Config{Node: 2, Key: testKey, Links: p.LinksB, Net: linktest.Net{NS: p.B}}
	fastTimers(&c1)
	fastTimers(&c2)
	c1.PeerTimeout, c2.PeerTimeout = 2*time.Second, 2*time.Second
	s2 := start(t, c2)
	s1 := start(t, c1)
	for range 2 {
		waitEvent(t, s1, link.EventLinkUp)
	}
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if i == n/3 && cut != nil {
				k := 0 // cut the link carrying the stream
				if s1.Status().Links[1].Active {
					k = 1
				}
				cut(k)
			}
			p := binary.BigEndian.AppendUint64(nil, uint64(i))
			p = append(p, bytes.Repeat([]byte{byte(i)}, (i*37)%1500)...)
			for {
				err := s1.Send(7, p)
				if err == nil {
					break
				}
				if !errors.Is(err, link.ErrWindowFull) {
					errc <- err
					return
				}
				time.Sleep(time.Millisecond)
			}
			if i%200 == 0 {
				time.Sleep(time.Millisecond) // spread the stream over the cut
			}
		}
		errc <- nil
	}()
	var downs int
	expectSequence(t, s2, 0, n, func(e *link.Event) {
		switch e.Kind {
		case link.EventPeerSilent:
			t.Errorf("peer declared silent with one link left")
		case link.EventLinkDown:
			downs++
		}
	})
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if cut != nil && downs == 0 {
		t.Error("cut link never reported down")
	}
	st := s1.Status()
	t.Logf("node 1 status after: %+v", st)
	for i, l := range st.Links {
		// A healthy link is never replaced in a loop (a stale down signal
		// once made the dialer redial every good connection).
		if l.Connects > 5 {
			t.Errorf("link %d connected %d times: reconnect storm", i, l.Connects)
		}
	}
}

func TestLinkCutNoLoss(t *testing.T) {
	p := linktest.NewPair(t, "fl6c", 2, 62)
	streamAcrossCut(t, p, 20000, func(k int) {
		linktest.Run(t, "ip", "-n", p.A, "link", "set", p.IfA[k], "down")
	})
}

func TestLinkDeletedNoLoss(t *testing.T) {
	p := linktest.NewPair(t, "fl6d", 2, 63)
	streamAcrossCut(t, p, 20000, func(k int) {
		linktest.Run(t, "ip", "-n", p.B, "link", "del", p.IfB[k])
	})
}

func TestNetemDelayLoss(t *testing.T) {
	p, how := linktest.NewImpairedPair(t, "fl6n", 2, 64,
		netnstest.Impairment{Delay: 5 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.02, Seed: 6})
	t.Log(how)
	streamAcrossCut(t, p, 5000, nil)
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  link.Config
		want string
	}{
		{link.Config{Node: 3, Key: testKey, Links: []link.LinkConfig{{Peer: "x"}}}, "node 3"},
		{link.Config{Node: 1, Key: []byte("short"), Links: []link.LinkConfig{{Peer: "x"}}}, "pair key"},
		{link.Config{Node: 1, Key: testKey}, "0 links"},
		{link.Config{Node: 1, Key: testKey, Links: []link.LinkConfig{{}}}, "peer address"},
	} {
		_, err := link.Start(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want %q", c.cfg, err, c.want)
		}
	}
	_ = fmt.Sprint()
}

// TestConcurrentSendersDirectAndQueued: several goroutines send at once,
// small and large messages, pausing now and then so that the link goes
// idle (Send writes itself) and fills up (the writer batches); the peer
// echoes each small message (its acks ride lazily). Every sender's
// messages arrive complete and in its order, every echo comes back, and
// every message is finally acknowledged.
func TestConcurrentSendersDirectAndQueued(t *testing.T) {
	s1, s2 := localPair(t, testKey, testKey, nil)
	const senders, per = 4, 400
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				size := 16
				if i%7 == 3 {
					size = 20 << 10
				}
				p := binary.BigEndian.AppendUint64([]byte{byte(g)}, uint64(i))
				p = append(p, bytes.Repeat([]byte{byte(g + i)}, size)...)
				for errors.Is(s1.Send(7, p), link.ErrWindowFull) {
					time.Sleep(time.Millisecond)
				}
				if i%50 == 0 {
					time.Sleep(2 * time.Millisecond)
				}
			}
		}()
	}
	echoes := make(chan int, senders*per)
	go func() {
		for d := range s1.Incoming() {
			if d.Event == nil && d.Type == 8 {
				echoes <- 1
			}
		}
	}()
	next := make([]int, senders)
	want := 0
	deadline := time.After(60 * time.Second)
	for got := 0; got < senders*per; {
		select {
		case d := <-s2.Incoming():
			if d.Event != nil {
				continue
			}
			if d.Type != 7 || len(d.Payload) < 9 {
				t.Fatalf("message type %d, %d bytes", d.Type, len(d.Payload))
			}
			g, i := int(d.Payload[0]), int(binary.BigEndian.Uint64(d.Payload[1:]))
			if g >= senders || i != next[g] {
				t.Fatalf("sender %d: got message %d, want %d (reordered, lost or duplicated)", g, i, next[min(g, senders-1)])
			}
			for _, b := range d.Payload[9:] {
				if b != byte(g+i) {
					t.Fatalf("sender %d message %d corrupted", g, i)
				}
			}
			next[g]++
			got++
			if len(d.Payload) < 100 {
				if err := s2.Send(8, d.Payload[:9]); err != nil {
					t.Fatal(err)
				}
				want++
			}
		case <-deadline:
			t.Fatalf("stuck: received %v of %d per sender", next, per)
		}
	}
	wg.Wait()
	for range want {
		select {
		case <-echoes:
		case <-deadline:
			t.Fatal("echoes missing")
		}
	}
	for st := s1.Status(); st.Acked != st.Sent; st = s1.Status() {
		select {
		case <-deadline:
			t.Fatalf("node 1: %d messages sent, only %d acknowledged", st.Sent, st.Acked)
		case <-time.After(5 * time.Millisecond):
		}
	}
	for st := s2.Status(); st.Acked != st.Sent; st = s2.Status() {
		select {
		case <-deadline:
			t.Fatalf("node 2: %d messages sent, only %d acknowledged", st.Sent, st.Acked)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

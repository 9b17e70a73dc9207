package netstack

import (
	"testing"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Many short connections: 50 clients at a time, each sending a request and
// reading a response until the server closes, with a small socket table so
// TIME-WAIT recycling and every limit are exercised.
func TestManyShortConnections(t *testing.T) {
	ca := cfgA()
	ca.MaxSockets = 120
	p := newPair(t, ca, cfgB())
	l, err := p.a.Listen(80, 64)
	if err != nil {
		t.Fatal(err)
	}
	resp := pattern(20000)
	// Server: accept, read the 4-byte request, answer, close.
	p.evA = func(ev sockapi.Event) {
		switch ev.Kind {
		case sockapi.EvAccept:
			for {
				id, ok := p.a.Accept(l)
				if !ok {
					return
				}
				_ = id
			}
		case sockapi.EvReadable:
			b, _ := readAll(p.a, ev.Sock)
			if len(b) > 0 {
				if n, _ := p.a.Write(ev.Sock, resp); n != len(resp) {
					t.Errorf("short write %d", n)
				}
				p.a.Close(ev.Sock)
			}
		}
	}
	type client struct {
		id  sockapi.SockID
		got []byte
	}
	clients := map[sockapi.SockID]*client{}
	done := 0
	p.evB = func(ev sockapi.Event) {
		c := clients[ev.Sock]
		if c == nil {
			return
		}
		switch ev.Kind {
		case sockapi.EvWritable:
			if len(c.got) == 0 {
				p.b.Write(ev.Sock, []byte("GET\n"))
			}
		case sockapi.EvReadable:
			b, err := readAll(p.b, ev.Sock)
			c.got = append(c.got, b...)
			if err == sockapi.ErrEOF {
				mustEqual(t, "response", c.got, resp)
				p.b.Close(ev.Sock)
				delete(clients, ev.Sock)
				done++
			}
		case sockapi.EvClosed:
			t.Errorf("client %d reset", ev.Sock)
			delete(clients, ev.Sock)
		}
	}
	const total = 600
	started := 0
	for round := 0; done < total && round < 100000; round++ {
		for len(clients) < 50 && started < total {
			id, err := p.b.Dial(sockapi.Addr{IP: ipA, Port: 80})
			if err != nil {
				t.Fatal(err)
			}
			clients[id] = &client{id: id}
			started++
		}
		p.advance(p.now + 1e6)
	}
	if done != total {
		t.Fatalf("%d of %d exchanges completed", done, total)
	}
	c := p.a.Counters()
	if c.TCPTimeWaitRecycled == 0 || len(p.a.order) > ca.MaxSockets {
		t.Fatalf("recycled %d, sockets %d", c.TCPTimeWaitRecycled, len(p.a.order))
	}
	t.Logf("server counters: established %d, TIME-WAIT recycled %d, listen overflows %d", c.TCPEstablished, c.TCPTimeWaitRecycled, c.TCPListenOverflows)
}

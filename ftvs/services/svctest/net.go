// Package svctest holds what the services' tests share: Net, a minimal
// in-memory sockapi.Sockets with one listener, where the test plays the
// client. Only tests import it.
package svctest

import "github.com/ftvs/ftvs/ftvs/sockapi"

// Net is a minimal in-test sockapi.Sockets: the test plays the client by
// appending to a socket's input and taking its output. Send space is a
// per-socket budget the test refills, like ACKs would.
type Net struct {
	Listener sockapi.SockID
	Next     sockapi.SockID
	Socks    map[sockapi.SockID]*Sock
	Queue    []sockapi.SockID
	Space    int // budget given to a new socket and on each refill
}

// Sock is one connection as the client sees it.
type Sock struct {
	In      []byte
	EOF     bool
	Out     []byte
	Space   int
	Closed  bool // Close called
	Aborted bool
	Gone    bool         // reset by the peer
	Sink    func([]byte) // when set, written bytes go here instead of Out
}

// NewNet makes a Net whose sockets start with space bytes of send space.
func NewNet(space int) *Net {
	return &Net{Next: 100, Socks: map[sockapi.SockID]*Sock{}, Space: space}
}

func (f *Net) Listen(port uint16, backlog int) (sockapi.SockID, error) {
	f.Listener = 1
	return 1, nil
}

func (f *Net) Accept(l sockapi.SockID) (sockapi.SockID, bool) {
	if len(f.Queue) == 0 {
		return 0, false
	}
	id := f.Queue[0]
	f.Queue = f.Queue[1:]
	return id, true
}

func (f *Net) sock(id sockapi.SockID) *Sock {
	s := f.Socks[id]
	if s == nil {
		panic("service used an unknown socket")
	}
	if s.Closed || s.Aborted {
		panic("service used a socket after Close/Abort")
	}
	return s
}

func (f *Net) Read(id sockapi.SockID, p []byte) (int, error) {
	s := f.sock(id)
	if s.Gone {
		return 0, sockapi.ErrReset
	}
	if len(s.In) == 0 {
		if s.EOF {
			return 0, sockapi.ErrEOF
		}
		return 0, sockapi.ErrWouldBlock
	}
	n := copy(p, s.In)
	s.In = s.In[n:]
	return n, nil
}

func (f *Net) Write(id sockapi.SockID, p []byte) (int, error) {
	s := f.sock(id)
	if s.Gone {
		return 0, sockapi.ErrReset
	}
	n := len(p)
	if n > s.Space {
		n = s.Space
	}
	if s.Sink != nil {
		s.Sink(p[:n])
	} else {
		s.Out = append(s.Out, p[:n]...)
	}
	s.Space -= n
	return n, nil
}

func (f *Net) SendSpace(id sockapi.SockID) int { return f.sock(id).Space }
func (f *Net) Close(id sockapi.SockID) error   { f.sock(id).Closed = true; return nil }
func (f *Net) Abort(id sockapi.SockID)         { f.sock(id).Aborted = true }
func (f *Net) RemoteAddr(id sockapi.SockID) sockapi.Addr {
	return sockapi.Addr{IP: [4]byte{10, 0, 0, 1}, Port: 40000}
}
func (f *Net) LocalAddr(id sockapi.SockID) sockapi.Addr {
	return sockapi.Addr{IP: [4]byte{10, 0, 0, 2}, Port: 80}
}

// Connect queues a new connection and lets the service accept it.
func (f *Net) Connect(svc sockapi.Service, now int64) sockapi.SockID {
	f.Next++
	id := f.Next
	f.Socks[id] = &Sock{Space: f.Space}
	f.Queue = append(f.Queue, id)
	svc.Handle(f, sockapi.Event{Kind: sockapi.EvAccept, Sock: f.Listener, Listener: f.Listener}, now)
	return id
}

// Send delivers client bytes and a readable event.
func (f *Net) Send(svc sockapi.Service, id sockapi.SockID, data string, now int64) {
	s := f.Socks[id]
	s.In = append(s.In, data...)
	svc.Handle(f, sockapi.Event{Kind: sockapi.EvReadable, Sock: id, Listener: f.Listener}, now)
}

// Drain refills send space until the service stops writing, and returns
// (and clears) everything it wrote.
func (f *Net) Drain(svc sockapi.Service, id sockapi.SockID, now int64) []byte {
	s := f.Socks[id]
	for i := 0; i < 1<<20; i++ {
		before := len(s.Out)
		if s.Closed || s.Aborted {
			break
		}
		s.Space = f.Space
		svc.Handle(f, sockapi.Event{Kind: sockapi.EvWritable, Sock: id, Listener: f.Listener}, now)
		if len(s.Out) == before {
			break
		}
	}
	out := s.Out
	s.Out = nil
	return out
}

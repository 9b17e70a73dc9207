package nbd

import (
	"testing"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// fakeNet is a minimal in-test sockapi.Sockets: the test plays the client by
// appending to a socket's input and taking its output. Send space is a
// per-socket budget the test refills, like ACKs would.
type fakeNet struct {
	listener sockapi.SockID
	next     sockapi.SockID
	socks    map[sockapi.SockID]*fakeSock
	queue    []sockapi.SockID
	space    int // budget given to a new socket and on each refill
}

type fakeSock struct {
	in      []byte
	eof     bool
	out     []byte
	space   int
	closed  bool // Close called
	aborted bool
	gone    bool         // reset by the peer
	sink    func([]byte) // when set, written bytes go here instead of out
}

func newFakeNet(space int) *fakeNet {
	return &fakeNet{next: 100, socks: map[sockapi.SockID]*fakeSock{}, space: space}
}

func (f *fakeNet) Listen(port uint16, backlog int) (sockapi.SockID, error) {
	f.listener = 1
	return 1, nil
}

func (f *fakeNet) Accept(l sockapi.SockID) (sockapi.SockID, bool) {
	if len(f.queue) == 0 {
		return 0, false
	}
	id := f.queue[0]
	f.queue = f.queue[1:]
	return id, true
}

func (f *fakeNet) sock(id sockapi.SockID) *fakeSock {
	s := f.socks[id]
	if s == nil {
		panic("service used an unknown socket")
	}
	if s.closed || s.aborted {
		panic("service used a socket after Close/Abort")
	}
	return s
}

func (f *fakeNet) Read(id sockapi.SockID, p []byte) (int, error) {
	s := f.sock(id)
	if s.gone {
		return 0, sockapi.ErrReset
	}
	if len(s.in) == 0 {
		if s.eof {
			return 0, sockapi.ErrEOF
		}
		return 0, sockapi.ErrWouldBlock
	}
	n := copy(p, s.in)
	s.in = s.in[n:]
	return n, nil
}

func (f *fakeNet) Write(id sockapi.SockID, p []byte) (int, error) {
	s := f.sock(id)
	if s.gone {
		return 0, sockapi.ErrReset
	}
	n := len(p)
	if n > s.space {
		n = s.space
	}
	if s.sink != nil {
		s.sink(p[:n])
	} else {
		s.out = append(s.out, p[:n]...)
	}
	s.space -= n
	return n, nil
}

func (f *fakeNet) SendSpace(id sockapi.SockID) int { return f.sock(id).space }
func (f *fakeNet) Close(id sockapi.SockID) error   { f.sock(id).closed = true; return nil }
func (f *fakeNet) Abort(id sockapi.SockID)         { f.sock(id).aborted = true }
func (f *fakeNet) RemoteAddr(id sockapi.SockID) sockapi.Addr {
	return sockapi.Addr{IP: [4]byte{10, 0, 0, 1}, Port: 40000}
}
func (f *fakeNet) LocalAddr(id sockapi.SockID) sockapi.Addr {
	return sockapi.Addr{IP: [4]byte{10, 0, 0, 2}, Port: 80}
}

// connect queues a new connection and lets the service accept it.
func (f *fakeNet) connect(t *testing.T, svc sockapi.Service, now int64) sockapi.SockID {
	t.Helper()
	f.next++
	id := f.next
	f.socks[id] = &fakeSock{space: f.space}
	f.queue = append(f.queue, id)
	svc.Handle(f, sockapi.Event{Kind: sockapi.EvAccept, Sock: f.listener, Listener: f.listener}, now)
	return id
}

// send delivers client bytes and a readable event.
func (f *fakeNet) send(svc sockapi.Service, id sockapi.SockID, data string, now int64) {
	s := f.socks[id]
	s.in = append(s.in, data...)
	svc.Handle(f, sockapi.Event{Kind: sockapi.EvReadable, Sock: id, Listener: f.listener}, now)
}

// drain refills send space until the service stops writing, and returns
// (and clears) everything it wrote.
func (f *fakeNet) drain(svc sockapi.Service, id sockapi.SockID, now int64) []byte {
	s := f.socks[id]
	for i := 0; i < 1<<20; i++ {
		before := len(s.out)
		if s.closed || s.aborted {
			break
		}
		s.space = f.space
		svc.Handle(f, sockapi.Event{Kind: sockapi.EvWritable, Sock: id, Listener: f.listener}, now)
		if len(s.out) == before {
			break
		}
	}
	out := s.out
	s.out = nil
	return out
}

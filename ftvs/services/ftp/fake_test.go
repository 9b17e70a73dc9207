package ftp

import (
	"sort"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// fakeNet is a small in-test sockapi.Sockets with several listeners: the
// test plays the clients. Events are delivered by the helpers below.
type fakeNet struct {
	next      sockapi.SockID
	listeners map[uint16]sockapi.SockID
	lports    map[sockapi.SockID]uint16
	queues    map[sockapi.SockID][]sockapi.SockID
	socks     map[sockapi.SockID]*fakeSock
	space     int
	foreignIP bool // next connection comes from another address
}

type fakeSock struct {
	listener sockapi.SockID
	remote   [4]byte
	in       []byte
	eof      bool
	out      []byte
	space    int
	closed   bool
	aborted  bool
	gone     bool
	dialedTo sockapi.Addr
}

func newFakeNet(space int) *fakeNet {
	return &fakeNet{next: 10, listeners: map[uint16]sockapi.SockID{}, lports: map[sockapi.SockID]uint16{},
		queues: map[sockapi.SockID][]sockapi.SockID{}, socks: map[sockapi.SockID]*fakeSock{}, space: space}
}

func (f *fakeNet) Listen(port uint16, backlog int) (sockapi.SockID, error) {
	if _, ok := f.listeners[port]; ok {
		return 0, sockapi.ErrPortInUse
	}
	f.next++
	f.listeners[port] = f.next
	f.lports[f.next] = port
	return f.next, nil
}

func (f *fakeNet) Accept(l sockapi.SockID) (sockapi.SockID, bool) {
	q := f.queues[l]
	if len(q) == 0 {
		return 0, false
	}
	f.queues[l] = q[1:]
	return q[0], true
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
	n := min(len(p), s.space)
	s.out = append(s.out, p[:n]...)
	s.space -= n
	return n, nil
}

func (f *fakeNet) SendSpace(id sockapi.SockID) int { return f.sock(id).space }

func (f *fakeNet) Close(id sockapi.SockID) error {
	if port, ok := f.lports[id]; ok {
		delete(f.listeners, port)
		delete(f.lports, id)
		return nil
	}
	f.sock(id).closed = true
	return nil
}

func (f *fakeNet) Abort(id sockapi.SockID) {
	if _, ok := f.lports[id]; ok {
		f.Close(id)
		return
	}
	f.sock(id).aborted = true
}

func (f *fakeNet) RemoteAddr(id sockapi.SockID) sockapi.Addr {
	return sockapi.Addr{IP: f.socks[id].remote, Port: 40000}
}

func (f *fakeNet) LocalAddr(id sockapi.SockID) sockapi.Addr {
	return sockapi.Addr{IP: [4]byte{10, 0, 0, 2}, Port: 21}
}

// Connect is the fake's sockapi.Dialer: the socket is established at once
// (the test plays the peer); its events carry Listener 0.
func (f *fakeNet) Connect(dst sockapi.Addr) (sockapi.SockID, error) {
	f.next++
	f.socks[f.next] = &fakeSock{space: f.space, remote: dst.IP, dialedTo: dst}
	return f.next, nil
}

// dial connects to port and lets the service accept it.
func (f *fakeNet) dial(t *testing.T, svc *Service, port uint16, now int64) sockapi.SockID {
	t.Helper()
	l, ok := f.listeners[port]
	if !ok {
		t.Fatalf("nothing listens on port %d", port)
	}
	f.next++
	id := f.next
	remote := [4]byte{10, 0, 0, 1}
	if f.foreignIP {
		remote = [4]byte{10, 0, 0, 9}
		f.foreignIP = false
	}
	f.socks[id] = &fakeSock{listener: l, space: f.space, remote: remote}
	f.queues[l] = append(f.queues[l], id)
	svc.Handle(f, sockapi.Event{Kind: sockapi.EvAccept, Sock: l, Listener: l}, now)
	return id
}

func (f *fakeNet) ev(svc *Service, kind sockapi.EventKind, id sockapi.SockID, now int64) {
	svc.Handle(f, sockapi.Event{Kind: kind, Sock: id, Listener: f.socks[id].listener}, now)
}

// run refills send space on every open socket and delivers readable and
// writable events until nothing changes.
func (f *fakeNet) run(svc *Service, now int64) {
	for i := 0; i < 1<<16; i++ {
		changed := false
		ids := make([]sockapi.SockID, 0, len(f.socks))
		for id := range f.socks {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		for _, id := range ids {
			s := f.socks[id]
			if s.closed || s.aborted {
				continue
			}
			before, inBefore := len(s.out), len(s.in)
			s.space = f.space
			f.ev(svc, sockapi.EvWritable, id, now)
			if !s.closed && !s.aborted {
				f.ev(svc, sockapi.EvReadable, id, now)
			}
			if len(s.out) != before || len(s.in) != inBefore {
				changed = true
			}
		}
		if !changed {
			return
		}
	}
}

// cmd sends one control line and returns the reply lines produced.
func (f *fakeNet) cmd(svc *Service, ctl sockapi.SockID, line string, now int64) string {
	s := f.socks[ctl]
	s.in = append(s.in, line+"\r\n"...)
	f.run(svc, now)
	return f.take(ctl)
}

func (f *fakeNet) take(id sockapi.SockID) string {
	s := f.socks[id]
	out := string(s.out)
	s.out = nil
	return out
}

func code(t *testing.T, reply string, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(reply, "\r\n"), "\r\n")
	if !strings.HasPrefix(lines[len(lines)-1], want) {
		t.Fatalf("reply %q, want %s", reply, want)
	}
}

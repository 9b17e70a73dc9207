package http

import (
	"testing"

	"github.com/ftvs/ftvs/ftvs/services/svctest"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// fakeNet is the shared in-test sockapi.Sockets (ftvs/services/svctest)
// with this package's helper names.
type fakeNet struct{ *svctest.Net }

type fakeSock = svctest.Sock

func newFakeNet(space int) *fakeNet { return &fakeNet{svctest.NewNet(space)} }

// connect queues a new connection and lets the service accept it.
func (f *fakeNet) connect(t *testing.T, svc *Service, now int64) sockapi.SockID {
	t.Helper()
	return f.Connect(svc, now)
}

// send delivers client bytes and a readable event.
func (f *fakeNet) send(svc *Service, id sockapi.SockID, data string, now int64) {
	f.Send(svc, id, data, now)
}

// drain refills send space until the service stops writing, and returns
// (and clears) everything it wrote.
func (f *fakeNet) drain(svc *Service, id sockapi.SockID, now int64) []byte {
	return f.Drain(svc, id, now)
}

package svcutil

import (
	"fmt"

	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Listener is a service's listening socket, opened by the service's Start.
// Its snapshot encoding (a bool, then the SockID as u32) is the one the
// services have always written.
type Listener struct {
	ID      sockapi.SockID
	Started bool
}

// Open listens on port; the error names the service and the port.
func (l *Listener) Open(sk sockapi.Sockets, service string, port uint16, backlog int) error {
	id, err := sk.Listen(port, backlog)
	if err != nil {
		return fmt.Errorf("%s: listen on port %d: %w", service, port, err)
	}
	l.ID, l.Started = id, true
	return nil
}

// Is reports whether id is this listener (false before Open).
func (l Listener) Is(id sockapi.SockID) bool { return l.Started && id == l.ID }

// Encode appends the listener to a snapshot section.
func (l Listener) Encode(w *snap.Writer) {
	w.Bool(l.Started)
	w.U32(uint32(l.ID))
}

// DecodeListener reads what Encode wrote.
func DecodeListener(r *snap.Reader) Listener {
	started := r.Bool()
	id := sockapi.SockID(r.U32())
	return Listener{ID: id, Started: started}
}

package machine

import (
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// stackEngine is the part of *netstack.Stack the machine drives.
type stackEngine interface {
	sockapi.Sockets
	Input(frame []byte, now int64)
	Poll(now int64)
	NextDeadline() int64
	DrainFrames(emit func(frame []byte, gso uint16))
	DrainEvents(handle func(sockapi.Event))
	GratuitousARP()
	Snapshot(w *snap.Writer)
	Restore(r *snap.Reader) error
}

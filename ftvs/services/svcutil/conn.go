package svcutil

import "github.com/ftvs/ftvs/ftvs/sockapi"

// AcceptAll drains listener l, calling admit for each accepted socket until
// Accept reports no more pending connections.
func AcceptAll(sk sockapi.Sockets, l sockapi.SockID, admit func(id sockapi.SockID)) {
	for {
		id, ok := sk.Accept(l)
		if !ok {
			return
		}
		admit(id)
	}
}

// Dispatch routes one connection event by kind: EvAccept to accept,
// EvReadable and EvWritable to ready, EvClosed to closed.
func Dispatch(ev sockapi.Event, accept func(), ready, closed func(id sockapi.SockID)) {
	switch ev.Kind {
	case sockapi.EvAccept:
		accept()
	case sockapi.EvReadable, sockapi.EvWritable:
		ready(ev.Sock)
	case sockapi.EvClosed:
		closed(ev.Sock)
	}
}

// SendChunk trims p to the send space of id. With no space at all it keeps
// one byte: only a Write that falls short arms EvWritable, so a one-byte
// Write still has to be tried.
func SendChunk(sk sockapi.Sockets, id sockapi.SockID, p []byte) []byte {
	if space := sk.SendSpace(id); space < len(p) {
		p = p[:max(space, 1)]
	}
	return p
}

// EarliestDeadline is the smallest deadline(v) over m, 0 when m is empty.
func EarliestDeadline[V any](m map[sockapi.SockID]V, deadline func(V) int64) int64 {
	var d int64
	//detcheck:orderless: a minimum
	for _, v := range m {
		if t := deadline(v); d == 0 || t < d {
			d = t
		}
	}
	return d
}

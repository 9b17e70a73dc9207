// Package sockapi is the contract between the deterministic TCP/IP stack
// (ftvs/netstack) and the services that run on it (ftvs/services/...).
//
// Everything here is called from inside machine.Step on one goroutine: there
// are no blocking calls. The stack reports readiness as Events, queued in a
// deterministic order while it processes an input; the machine drains the
// queue after the stack has run and hands each event to the service that owns
// the socket's listener. A service reacts by calling the Sockets methods.
package sockapi

import "errors"

// SockID names a socket for its whole life. IDs are allocated by the stack
// deterministically (never reused while the socket exists) and are part of
// the snapshot, so services may keep them in their own state.
type SockID uint32

// EventKind says what became true of a socket.
type EventKind uint8

const (
	// EvAccept: a listener has at least one established connection waiting in
	// its accept queue. Sock is the listener.
	EvAccept EventKind = iota + 1
	// EvReadable: data (or the peer's FIN, seen as ErrEOF from Read) is waiting.
	EvReadable
	// EvWritable: send buffer space was freed (by ACKs) since the last Write
	// that could not take everything. Edge-triggered.
	EvWritable
	// EvClosed: the connection is gone (reset, timed out, or fully closed);
	// the SockID is invalid after the handler returns.
	EvClosed
)

// Event is one readiness notification. Listener is the listening socket the
// connection was accepted from (equal to Sock for EvAccept), so the machine
// can route every event to the service that owns the listener.
type Event struct {
	Kind     EventKind
	Sock     SockID
	Listener SockID
}

// Errors returned by Sockets methods.
var (
	ErrEOF        = errors.New("peer closed its sending side")
	ErrClosed     = errors.New("socket closed")
	ErrReset      = errors.New("connection reset")
	ErrNoSocket   = errors.New("no such socket")
	ErrPortInUse  = errors.New("port already has a listener")
	ErrTooMany    = errors.New("socket table full")
	ErrWouldBlock = errors.New("no data now")
)

// Addr is an IPv4 endpoint.
type Addr struct {
	IP   [4]byte
	Port uint16
}

// Sockets is what a service may do. Implemented by *netstack.Stack.
type Sockets interface {
	// Listen opens a TCP listener on the VS address. backlog bounds the
	// accept queue (and the SYN queue); connections beyond it are refused.
	Listen(port uint16, backlog int) (SockID, error)
	// Accept takes one established connection from a listener's queue; ok is
	// false when the queue is empty.
	Accept(listener SockID) (s SockID, ok bool)
	// Read copies received in-order bytes into p. It returns (0, ErrWouldBlock)
	// when nothing is buffered, (0, ErrEOF) once the peer's FIN has been read
	// past, ErrReset/ErrClosed when the connection is gone.
	Read(s SockID, p []byte) (int, error)
	// Write queues up to len(p) bytes for sending and returns how many were
	// taken (bounded by the send buffer; may be 0). When it takes fewer than
	// len(p), an EvWritable follows once space frees up.
	Write(s SockID, p []byte) (int, error)
	// SendSpace is how many bytes Write would take now.
	SendSpace(s SockID) int
	// Close sends FIN after all queued data (graceful). The socket lingers in
	// the stack until the close handshake ends; the service must forget it.
	Close(s SockID) error
	// Abort sends RST and frees the socket at once.
	Abort(s SockID)
	// RemoteAddr and LocalAddr of a connection.
	RemoteAddr(s SockID) Addr
	LocalAddr(s SockID) Addr
}

// Service is a protocol server (HTTP, FTP, NBD) living inside the machine.
// Every method is called from machine.Step; none may block, spawn goroutines,
// read clocks or touch the OS (see DESIGN.md, "The deterministic core").
type Service interface {
	// Name is a short stable identifier ("http"), used as the snapshot tag.
	Name() string
	// Start opens the service's listeners. Called once on a fresh machine
	// (not after Restore: listeners are part of the stack's snapshot).
	Start(sk Sockets) error
	// Handle reacts to one event on a socket this service owns. now is the
	// virtual time of the input being processed, in nanoseconds.
	Handle(sk Sockets, ev Event, now int64)
	// Owns reports whether a listener belongs to this service.
	Owns(listener SockID) bool
	// NextDeadline is the virtual time (ns) of the service's earliest timer
	// (idle timeouts), or 0 for none. The machine folds it into its own.
	NextDeadline() int64
	// Timer runs the service's timers that are due at now.
	Timer(sk Sockets, now int64)
	// Snapshot and Restore the service's state with the snap encoding. The
	// encoding is versioned by the service (snap.Writer.Section).
	Snapshot() []byte
	Restore(b []byte) error
}

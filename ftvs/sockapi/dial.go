package sockapi

// Dialer is the optional active-open half of the contract, for services
// that must connect out (FTP's PORT/EPRT data connections). A service
// finds it with a type assertion on the Sockets it is handed and refuses
// the feature cleanly when it is absent.
//
// A dialed socket has no listener: its events carry Listener 0, and the
// machine routes them to the service whose OwnsSock reports the socket.
type Dialer interface {
	// Connect opens a TCP connection to dst from an ephemeral port chosen
	// deterministically. EvWritable follows once it is established (Write
	// takes nothing before), EvClosed if it fails.
	Connect(dst Addr) (SockID, error)
}

// SockOwner is implemented by services that dial, so the machine can route
// the events of sockets that came from no listener.
type SockOwner interface {
	OwnsSock(s SockID) bool
}

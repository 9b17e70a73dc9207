package netstack

import (
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

var _ sockapi.Sockets = (*Stack)(nil)

// Listen opens a TCP listener on port; backlog bounds the SYN and accept queues.
func (s *Stack) Listen(port uint16, backlog int) (sockapi.SockID, error) {
	if port == 0 {
		return 0, sockapi.ErrPortInUse
	}
	if s.listeners[port] != nil {
		return 0, sockapi.ErrPortInUse
	}
	if !s.roomForSocket() {
		return 0, sockapi.ErrTooMany
	}
	if backlog <= 0 {
		backlog = 1
	}
	if backlog > s.cfg.MaxBacklog {
		backlog = s.cfg.MaxBacklog
	}
	l := &tcb{state: stListen, lport: port, backlog: backlog, accepted: true, heapIdx: -1}
	s.newSock(l)
	s.listeners[port] = l
	return l.id, nil
}

// Accept takes one established connection from the listener's queue.
func (s *Stack) Accept(listener sockapi.SockID) (sockapi.SockID, bool) {
	l := s.socks[listener]
	if l == nil || l.state != stListen || len(l.acceptQ) == 0 {
		return 0, false
	}
	id := l.acceptQ[0]
	copy(l.acceptQ, l.acceptQ[1:])
	l.acceptQ = l.acceptQ[:len(l.acceptQ)-1]
	c := s.socks[id]
	if c == nil {
		return s.Accept(listener)
	}
	c.accepted = true
	if c.rcv.Len() > 0 || c.peerFin {
		s.queueEvent(c, sockapi.EvReadable)
	}
	return id, true
}

func (s *Stack) conn(id sockapi.SockID) *tcb {
	c := s.socks[id]
	if c == nil || c.state == stListen || c.appClosed {
		return nil
	}
	return c
}

func (c *tcb) endErr() error {
	switch c.end {
	case endReset:
		return sockapi.ErrReset
	case endTimeout:
		return sockapi.ErrReset
	}
	return sockapi.ErrClosed
}

// Read copies in-order received bytes into p.
func (s *Stack) Read(id sockapi.SockID, p []byte) (int, error) {
	c := s.conn(id)
	if c == nil {
		return 0, sockapi.ErrNoSocket
	}
	if c.rcv.Len() > 0 {
		if len(p) == 0 {
			return 0, nil
		}
		n := c.rcv.Read(p) // the buffer is kept: a busy reader would only regrow it
		if s.windowUpdateDue(c) {
			s.markPending(c)
		}
		return n, nil
	}
	if c.state == stClosed {
		return 0, c.endErr()
	}
	if c.peerFin {
		return 0, sockapi.ErrEOF
	}
	return 0, sockapi.ErrWouldBlock
}

// Write queues bytes for sending; it takes what fits in the send buffer.
func (s *Stack) Write(id sockapi.SockID, p []byte) (int, error) {
	c := s.conn(id)
	if c == nil {
		return 0, sockapi.ErrNoSocket
	}
	switch c.state {
	case stEstablished, stCloseWait:
	case stClosed:
		return 0, c.endErr()
	case stSynSent, stSynRcvd:
		c.wantWritable = true
		return 0, nil
	default:
		return 0, sockapi.ErrClosed
	}
	if c.finQueued {
		return 0, sockapi.ErrClosed
	}
	// sendRoom is at most the buffer's free space: Write takes all of p.
	if room := c.sendRoom(s.cfg.SendAhead); len(p) > room {
		p = p[:room]
		c.wantWritable = true
	}
	n := c.snd.Write(p)
	if n > 0 {
		s.markPending(c)
	}
	return n, nil
}

// SendSpace is how many bytes Write would take now.
func (s *Stack) SendSpace(id sockapi.SockID) int {
	c := s.conn(id)
	if c == nil {
		return 0
	}
	if c.state != stEstablished && c.state != stCloseWait || c.finQueued {
		return 0
	}
	return c.sendRoom(s.cfg.SendAhead)
}

// Close closes gracefully: FIN after the queued data. The service forgets id.
func (s *Stack) Close(id sockapi.SockID) error {
	if l := s.socks[id]; l != nil && l.state == stListen {
		s.closeListener(l)
		return nil
	}
	c := s.conn(id)
	if c == nil {
		return sockapi.ErrNoSocket
	}
	c.appClosed = true
	c.rcv = ring{max: c.rcv.max}
	c.ooo = nil
	c.oooFin = false
	switch c.state {
	case stEstablished:
		c.state = stFinWait1
	case stCloseWait:
		c.state = stLastAck
	case stSynRcvd:
		c.state = stFinWait1
	default:
		s.free(c)
		return nil
	}
	c.finQueued = true
	c.finSeq = c.sndDataEnd()
	s.markPending(c)
	return nil
}

// Abort sends RST and frees the socket at once.
func (s *Stack) Abort(id sockapi.SockID) {
	c := s.socks[id]
	if c == nil {
		return
	}
	if c.state == stListen {
		s.closeListener(c)
		return
	}
	s.ctr.TCPAborts++
	s.abortConn(c)
}

// closeListener resets every connection still waiting on l and frees it.
func (s *Stack) closeListener(l *tcb) {
	var waiting []*tcb
	for _, c := range s.order {
		if c.listener == l.id && !c.accepted {
			waiting = append(waiting, c)
		}
	}
	l.acceptQ = nil
	s.free(l)
	for _, c := range waiting {
		s.abortConn(c)
	}
}

// RemoteAddr is the peer's endpoint.
func (s *Stack) RemoteAddr(id sockapi.SockID) sockapi.Addr {
	c := s.socks[id]
	if c == nil {
		return sockapi.Addr{}
	}
	return sockapi.Addr{IP: c.rip, Port: c.rport}
}

// LocalAddr is our endpoint.
func (s *Stack) LocalAddr(id sockapi.SockID) sockapi.Addr {
	c := s.socks[id]
	if c == nil {
		return sockapi.Addr{}
	}
	return sockapi.Addr{IP: s.cfg.IP, Port: c.lport}
}

package netstack

import (
	"sort"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// roomForSocket makes room for one more socket, recycling the oldest
// TIME-WAIT connection when the table is full.
func (s *Stack) roomForSocket() bool {
	if len(s.order) < s.cfg.MaxSockets {
		return true
	}
	if s.timewaits == 0 {
		return false
	}
	var victim *tcb
	for _, c := range s.order {
		if c.state == stTimeWait && (victim == nil || c.endAt < victim.endAt) {
			victim = c
		}
	}
	s.ctr.TCPTimeWaitRecycled++
	s.free(victim)
	return true
}

// newSock allocates a socket id and registers the tcb.
func (s *Stack) newSock(c *tcb) {
	c.id = s.nextID
	s.nextID++
	if s.nextID == 0 {
		s.nextID = 1
	}
	s.socks[c.id] = c
	s.order = append(s.order, c) // ids only grow: order stays sorted
}

// newConn makes a connection tcb for the 4-tuple with default parameters.
func (s *Stack) newConn(rip [4]byte, rport, lport uint16) *tcb {
	c := &tcb{rip: rip, rport: rport, lport: lport, heapIdx: -1}
	c.snd.max = s.cfg.SendBuf
	for (s.cfg.RecvBuf>>c.rcvScale) > 65535 && c.rcvScale < 14 {
		c.rcvScale++
	}
	c.rcv.max = s.cfg.RecvBuf + 2<<c.rcvScale
	c.rto = s.cfg.InitialRTO
	c.peerMSS = 536
	c.mss = 536
	c.ssthresh = cwndMax
	c.tsOff = uint32(tupleHash(s.cfg.ISNKey, 't', s.cfg.IP, lport, rip, rport))
	s.newSock(c)
	s.conns[tuple{rip, rport, lport}] = c
	return c
}

// isn is RFC 6528: a 4 µs clock plus a keyed hash of the connection id.
func (s *Stack) isn(c *tcb) uint32 {
	if s.testISNOn {
		return s.testISN
	}
	return uint32(s.now/4000) + uint32(tupleHash(s.cfg.ISNKey, 'i', s.cfg.IP, c.lport, c.rip, c.rport))
}

// free forgets a socket entirely.
func (s *Stack) free(c *tcb) {
	if c.freed {
		return
	}
	c.freed = true
	if c.state == stTimeWait {
		s.timewaits--
	}
	if c.state == stListen {
		if s.listeners[c.lport] == c {
			delete(s.listeners, c.lport)
		}
	} else if s.conns[tuple{c.rip, c.rport, c.lport}] == c {
		delete(s.conns, tuple{c.rip, c.rport, c.lport})
	}
	if c.inSynQ || (!c.accepted && c.listener != 0) {
		if l := s.socks[c.listener]; l != nil {
			if c.inSynQ {
				l.synRcvd--
			}
			l.removeFromQueue(c.id)
		}
		c.inSynQ = false
	}
	delete(s.socks, c.id)
	i := sort.Search(len(s.order), func(i int) bool { return s.order[i].id >= c.id })
	if i < len(s.order) && s.order[i] == c {
		copy(s.order[i:], s.order[i+1:])
		s.order[len(s.order)-1] = nil
		s.order = s.order[:len(s.order)-1]
	}
	s.heapRemove(c)
	c.snd, c.rcv = ring{}, ring{}
}

// abortConn sends RST (when the peer knows the connection) and frees c.
func (s *Stack) abortConn(c *tcb) {
	switch c.state {
	case stSynRcvd, stEstablished, stFinWait1, stFinWait2, stCloseWait, stClosing, stLastAck:
		s.sendCtl(c.rip, c.lport, c.rport, c.nxt, c.rcvNxt, wire.FlagRST|wire.FlagACK)
	}
	s.free(c)
}

// updateDeadline recomputes c's earliest timer and keeps the stack's minimum.
func (s *Stack) updateDeadline(c *tcb) {
	d := int64(0)
	for _, t := range [...]int64{c.rtxAt, c.persistAt, c.delackAt, c.keepAt, c.endAt, c.tlpAt} {
		if t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	s.setDeadline(c, d)
}

// tcpTimers runs c's timers that are due.
func (s *Stack) tcpTimers(c *tcb) {
	now := s.now
	if c.endAt != 0 && c.endAt <= now {
		s.free(c)
		return
	}
	if c.rtxAt != 0 && c.rtxAt <= now {
		c.rtxAt = 0
		s.rtxTimeout(c)
		if c.freed {
			return
		}
	}
	if c.tlpAt != 0 && c.tlpAt <= now {
		c.tlpAt = 0
		s.tailLossProbe(c)
	}
	if c.persistAt != 0 && c.persistAt <= now {
		c.persistAt = 0
		if c.una == c.nxt && c.synchronized() && c.snd.Len() > 0 {
			if c.sndWnd > 0 {
				// SWS override: the window stayed too small; fill it.
				n := min(int(c.sndWnd), c.snd.Len(), c.mss)
				s.sendSegment(c, c.nxt, n, wire.FlagACK, false)
				c.nxt += uint32(n)
				c.maxNxt = seqMax(c.maxNxt, c.nxt)
				if c.rtxAt == 0 {
					c.rtxAt = now + c.rto
				}
			} else if c.appClosed && c.persistShift >= s.cfg.MaxRetries {
				// An orphan the peer never lets finish: give up (as Linux's
				// tcp_orphan_retries) rather than hold the socket forever.
				s.ctr.TCPTimeouts++
				s.abortConn(c)
				return
			} else {
				// Zero-window probe: a segment below the window elicits an
				// ACK carrying the current window.
				s.ctr.TCPWindowProbes++
				s.sendSegment(c, c.una-1, 0, wire.FlagACK, false)
				if c.persistShift < 16 {
					c.persistShift++
				}
				c.persistAt = now + s.persistInterval(c)
			}
		}
	}
	if c.delackAt != 0 && c.delackAt <= now {
		c.delackAt = 0
		c.ackNow = true
		s.markPending(c)
	}
	if c.keepAt != 0 && c.keepAt <= now {
		if c.keepProbes >= s.cfg.KeepAliveCount {
			s.ctr.TCPKeepAliveTimeouts++
			s.sendCtl(c.rip, c.lport, c.rport, c.nxt, c.rcvNxt, wire.FlagRST|wire.FlagACK)
			s.connEnd(c, endTimeout)
			return
		}
		if c.state == stEstablished || c.state == stCloseWait {
			s.ctr.TCPKeepAliveProbes++
			c.keepProbes++
			s.sendSegment(c, c.una-1, 0, wire.FlagACK, false)
			c.keepAt = now + s.cfg.KeepAliveIntvl
		} else {
			c.keepAt = 0
		}
	}
	s.updateDeadline(c)
}

// rtxTimeout is RFC 6298 5.4-5.7 plus RFC 5681 loss-window reduction.
func (s *Stack) rtxTimeout(c *tcb) {
	if c.una == c.maxNxt && !(c.state == stSynSent || c.state == stSynRcvd) {
		return
	}
	c.retries++
	limit := s.cfg.MaxRetries
	if c.state == stSynSent || c.state == stSynRcvd {
		limit = s.cfg.SynRetries
	}
	if c.retries > limit {
		s.ctr.TCPTimeouts++
		if c.state == stSynRcvd && c.listener != 0 {
			s.free(c)
			return
		}
		s.sendCtl(c.rip, c.lport, c.rport, c.nxt, c.rcvNxt, wire.FlagRST|wire.FlagACK)
		s.connEnd(c, endTimeout)
		return
	}
	s.ctr.TCPRTOs++
	c.rto *= 2
	if c.rto > s.cfg.MaxRTO {
		c.rto = s.cfg.MaxRTO
	}
	c.rttTiming = false
	if c.state == stSynSent || c.state == stSynRcvd {
		c.nxt = c.iss // resend the SYN
		s.markPending(c)
		return
	}
	if c.retries == 1 {
		s.ccOnLoss(c)
	}
	c.cwnd = uint32(c.mss)
	c.inRecovery = false
	c.lossAll, c.tlpOut, c.tlpAt = false, false, 0
	c.recover = c.maxNxt
	c.dupacks = 0
	c.sacked = nil // RFC 2018 8: the receiver may have reneged
	c.highRxt = c.una
	c.nxt = c.una // go back N
	s.markPending(c)
	s.tcpOutput(c)
}

// dial opens an active connection (the VS never dials; tests and tools do).
func (s *Stack) dial(dst sockapi.Addr, lport uint16) (sockapi.SockID, error) {
	if !s.roomForSocket() {
		return 0, sockapi.ErrTooMany
	}
	if lport == 0 {
		for i := 0; i < 64; i++ {
			p := uint16(32768 + s.nextRand()%28232)
			if s.conns[tuple{dst.IP, dst.Port, p}] == nil && s.listeners[p] == nil {
				lport = p
				break
			}
		}
	}
	if lport == 0 || s.conns[tuple{dst.IP, dst.Port, lport}] != nil {
		return 0, sockapi.ErrPortInUse
	}
	c := s.newConn(dst.IP, dst.Port, lport)
	c.state = stSynSent
	c.accepted = true
	c.iss = s.isn(c)
	c.una, c.nxt, c.maxNxt = c.iss, c.iss, c.iss
	s.ctr.TCPActiveOpens++
	s.markPending(c)
	return c.id, nil
}

// Dial opens a TCP connection to dst from an ephemeral port. The VS itself
// never dials out; this serves tests and tools. EvWritable reports success,
// EvClosed failure.
func (s *Stack) Dial(dst sockapi.Addr) (sockapi.SockID, error) { return s.dial(dst, 0) }

package netstack

import (
	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// segment is a parsed incoming TCP segment.
type segment struct {
	h       wire.TCP
	payload []byte
	src     [4]byte
}

func (g *segment) len() uint32 {
	n := uint32(len(g.payload))
	if g.h.Flags&wire.FlagSYN != 0 {
		n++
	}
	if g.h.Flags&wire.FlagFIN != 0 {
		n++
	}
	return n
}

func (s *Stack) tcpInput(ip *wire.IPv4, b []byte) {
	h, err := wire.ParseTCP(b)
	if err != nil {
		s.ctr.TCPBadHeader++
		return
	}
	if !wire.VerifyTCP(ip.Src, ip.Dst, b) {
		s.ctr.TCPBadChecksum++
		return
	}
	s.ctr.TCPSegsIn++
	g := segment{h: h, payload: b[h.DataOff:], src: ip.Src}
	if c := s.conns[tuple{ip.Src, h.SrcPort, h.DstPort}]; c != nil {
		if c.state == stTimeWait && h.Flags&(wire.FlagSYN|wire.FlagACK|wire.FlagRST) == wire.FlagSYN &&
			seqGT(h.Seq, c.rcvNxt) && s.listeners[h.DstPort] != nil {
			// RFC 9293 3.10.7.4 / RFC 6191: a new incarnation may reuse the pair.
			s.ctr.TCPTimeWaitReused++
			s.free(c)
		} else {
			s.tcpSegment(c, &g)
			return
		}
	}
	if l := s.listeners[h.DstPort]; l != nil {
		s.listenInput(l, &g)
		return
	}
	s.ctr.TCPNoSocket++
	s.replyRST(&g)
}

// replyRST answers a segment that belongs to no connection (RFC 9293 3.10.7.1).
func (s *Stack) replyRST(g *segment) {
	if g.h.Flags&wire.FlagRST != 0 {
		return
	}
	if g.h.Flags&wire.FlagACK != 0 {
		s.sendCtl(g.src, g.h.DstPort, g.h.SrcPort, g.h.Ack, 0, wire.FlagRST)
	} else {
		s.sendCtl(g.src, g.h.DstPort, g.h.SrcPort, 0, g.h.Seq+g.len(), wire.FlagRST|wire.FlagACK)
	}
}

func (s *Stack) listenInput(l *tcb, g *segment) {
	f := g.h.Flags
	switch {
	case f&wire.FlagRST != 0:
		s.ctr.TCPDropped++
		return
	case f&wire.FlagACK != 0:
		s.ctr.TCPNoSocket++
		s.replyRST(g)
		return
	case f&wire.FlagSYN == 0:
		s.ctr.TCPDropped++
		return
	}
	if l.synRcvd+len(l.acceptQ) >= l.backlog {
		s.ctr.TCPListenOverflows++
		return // the client retries its SYN
	}
	if !s.roomForSocket() {
		s.ctr.TCPSocketTableFull++
		return
	}
	c := s.newConn(g.src, g.h.SrcPort, g.h.DstPort)
	c.listener = l.id
	c.state = stSynRcvd
	l.synRcvd++
	c.inSynQ = true
	c.irs = g.h.Seq
	c.rcvNxt = g.h.Seq + 1
	c.rcvAdv, c.rcvAdvSent = c.rcvNxt, c.rcvNxt
	s.negotiate(c, &g.h)
	c.iss = s.isn(c)
	c.una, c.nxt, c.maxNxt = c.iss, c.iss, c.iss
	c.wl1, c.wl2 = g.h.Seq, c.iss
	c.sndWnd = uint32(g.h.Window) // never scaled in a SYN
	c.maxSndWnd = c.sndWnd
	s.ctr.TCPPassiveOpens++
	s.markPending(c)
}

// negotiate applies the options of the peer's SYN.
func (s *Stack) negotiate(c *tcb, h *wire.TCP) {
	c.peerMSS = 536
	if h.HasMSS && h.MSS >= 64 {
		c.peerMSS = int(h.MSS)
	}
	if h.HasWScale && !s.cfg.NoWindowScale {
		c.wsOK = true
		c.sndScale = h.WScale
		if c.sndScale > 14 {
			c.sndScale = 14
		}
	} else {
		c.rcvScale = 0
	}
	if h.HasTS && !s.cfg.NoTimestamps {
		c.tsOK = true
		c.tsRecent = h.TSVal
		c.tsRecentAge = s.now
	}
	c.sackOK = h.SACKPerm && !s.cfg.NoSACK
	c.setMSS(s)
}

func (c *tcb) setMSS(s *Stack) {
	m := s.cfg.MTU - 40
	if c.peerMSS < m {
		m = c.peerMSS
	}
	if c.tsOK {
		m -= 12
	}
	c.mss = m
	if c.cwnd == 0 {
		c.cwnd = uint32(min(10*m, max(2*m, 14600)))
	}
}

// tcpSegment is RFC 9293 3.10.7.3/3.10.7.4 for a known connection.
func (s *Stack) tcpSegment(c *tcb, g *segment) {
	h := &g.h
	f := h.Flags
	if c.state == stSynSent {
		s.synSentInput(c, g)
		return
	}
	if c.state == stSynRcvd && f&(wire.FlagSYN|wire.FlagACK|wire.FlagRST) == wire.FlagSYN && h.Seq == c.irs {
		// The peer did not get our SYN-ACK: send it again now.
		s.ctr.TCPDupData++
		c.nxt = c.iss
		s.markPending(c)
		return
	}
	// RFC 7323 PAWS.
	if c.tsOK && h.HasTS && f&wire.FlagRST == 0 && c.tsRecent != 0 && seqLT(h.TSVal, c.tsRecent) &&
		s.now-c.tsRecentAge < 24*86400e9 {
		s.ctr.TCPPAWSDrops++
		s.ackNowSend(c)
		return
	}
	// Sequence acceptability (the four cases).
	segLen := g.len()
	wnd := c.rcvAdvSent - c.rcvNxt
	if seqLT(c.rcvAdvSent, c.rcvNxt) {
		wnd = 0
	}
	ok := false
	switch {
	case segLen == 0 && wnd == 0:
		ok = h.Seq == c.rcvNxt
	case segLen == 0:
		ok = seqLEQ(c.rcvNxt, h.Seq) && seqLT(h.Seq, c.rcvNxt+wnd)
	case wnd == 0:
		ok = false
	default:
		end := h.Seq + segLen - 1
		ok = seqLEQ(c.rcvNxt, h.Seq) && seqLT(h.Seq, c.rcvNxt+wnd) ||
			seqLEQ(c.rcvNxt, end) && seqLT(end, c.rcvNxt+wnd)
	}
	if !ok && wnd == 0 && segLen > 0 && h.Seq == c.rcvNxt {
		// Zero window: still process ACK/RST (RFC 9293), drop the data.
		ok = true
		s.ctr.TCPRcvWindowDrops++
		g.payload = nil
		g.h.Flags &^= wire.FlagFIN | wire.FlagSYN
		s.ackNowSend(c)
	}
	if !ok {
		if f&wire.FlagRST == 0 {
			if segLen > 0 && seqLT(h.Seq, c.rcvNxt) {
				s.ctr.TCPDupData++
			} else {
				s.ctr.TCPOutOfWindow++
			}
			if c.state == stTimeWait && f&wire.FlagFIN != 0 {
				c.endAt = s.now + s.cfg.TimeWait
				s.updateDeadline(c)
			}
			s.ackNowSend(c)
		}
		return
	}
	// Trim to the window.
	if seqLT(h.Seq, c.rcvNxt) {
		d := c.rcvNxt - h.Seq
		if f&wire.FlagSYN != 0 {
			h.Flags &^= wire.FlagSYN
			f = h.Flags
			d--
			h.Seq++
		}
		if int(d) > len(g.payload) {
			d = uint32(len(g.payload))
		}
		g.payload = g.payload[d:]
		h.Seq += d
		if len(g.payload) > 0 || f&wire.FlagFIN == 0 {
			s.ctr.TCPDupData++
		}
	}
	if right := c.rcvNxt + wnd; seqGT(h.Seq+uint32(len(g.payload)), right) {
		g.payload = g.payload[:right-h.Seq]
		h.Flags &^= wire.FlagFIN
		f = h.Flags
	}
	// RFC 7323 3.4: remember the timestamp of in-order segments.
	if c.tsOK && h.HasTS && seqLEQ(h.Seq, c.lastAckSent) && seqGEQ(h.Seq+g.len(), c.lastAckSent) && seqGEQ(h.TSVal, c.tsRecent) {
		c.tsRecent = h.TSVal
		c.tsRecentAge = s.now
	}
	// RST (RFC 5961 3.2).
	if f&wire.FlagRST != 0 {
		if h.Seq != c.rcvNxt {
			s.ctr.TCPChallengeACKs++
			s.ackNowSend(c)
			return
		}
		s.ctr.TCPResetsIn++
		s.connReset(c)
		return
	}
	// SYN in a synchronized state (RFC 5961 4.2): challenge ACK.
	if f&wire.FlagSYN != 0 {
		s.ctr.TCPChallengeACKs++
		s.ackNowSend(c)
		return
	}
	if f&wire.FlagACK == 0 {
		s.ctr.TCPDropped++
		return
	}
	c.keepProbes = 0
	if s.cfg.KeepAliveIdle > 0 && c.synchronized() {
		c.keepAt = s.now + s.cfg.KeepAliveIdle
	}
	if c.state == stSynRcvd {
		if !(seqLT(c.una, h.Ack) && seqLEQ(h.Ack, c.nxt)) {
			s.sendCtl(c.rip, c.lport, c.rport, h.Ack, 0, wire.FlagRST)
			return
		}
		s.established(c, h)
		if c.freed {
			return
		}
	}
	if !s.ackInput(c, g) {
		return
	}
	if c.freed {
		return
	}
	// Data.
	if len(g.payload) > 0 {
		switch c.state {
		case stEstablished, stFinWait1, stFinWait2:
			s.dataInput(c, g)
		default:
			s.ctr.TCPDataAfterFin++
		}
	}
	if f&wire.FlagFIN != 0 {
		fin := h.Seq + uint32(len(g.payload))
		if fin == c.rcvNxt {
			s.finInput(c)
		} else if seqGT(fin, c.rcvNxt) && !c.peerFin {
			c.oooFin, c.oooFinSeq = true, fin
			s.ackNowSend(c)
		}
	}
	s.updateDeadline(c)
}

// established moves a SYN-RECEIVED connection to ESTABLISHED.
func (s *Stack) established(c *tcb, h *wire.TCP) {
	c.state = stEstablished
	c.una = c.iss + 1
	c.sndWnd = uint32(h.Window) << c.sndScale
	c.maxSndWnd = c.sndWnd
	c.wl1, c.wl2 = h.Seq, h.Ack
	c.retries = 0
	c.rtxAt = 0
	if c.rttTiming {
		s.rttSample(c, s.now-c.rttStart)
		c.rttTiming = false
	}
	if s.cfg.KeepAliveIdle > 0 {
		c.keepAt = s.now + s.cfg.KeepAliveIdle
	}
	s.ctr.TCPEstablished++
	if c.listener == 0 {
		s.queueEvent(c, sockapi.EvWritable)
		return
	}
	l := s.socks[c.listener]
	if l == nil || l.state != stListen {
		s.abortConn(c)
		return
	}
	l.synRcvd--
	c.inSynQ = false
	l.acceptQ = append(l.acceptQ, c.id)
	if !l.evAccept {
		l.evAccept = true
		s.events = append(s.events, sockapi.Event{Kind: sockapi.EvAccept, Sock: l.id, Listener: l.id})
	}
}

func (s *Stack) synSentInput(c *tcb, g *segment) {
	h := &g.h
	f := h.Flags
	if f&wire.FlagACK != 0 && (seqLEQ(h.Ack, c.iss) || seqGT(h.Ack, c.nxt)) {
		s.ctr.TCPDropped++
		if f&wire.FlagRST == 0 {
			s.sendCtl(c.rip, c.lport, c.rport, h.Ack, 0, wire.FlagRST)
		}
		return
	}
	if f&wire.FlagRST != 0 {
		if f&wire.FlagACK != 0 {
			s.ctr.TCPResetsIn++
			s.connReset(c)
		} else {
			s.ctr.TCPDropped++
		}
		return
	}
	if f&wire.FlagSYN == 0 {
		s.ctr.TCPDropped++
		return
	}
	c.irs = h.Seq
	c.rcvNxt = h.Seq + 1
	c.rcvAdv, c.rcvAdvSent = c.rcvNxt, c.rcvNxt
	scale := c.rcvScale
	s.negotiate(c, h)
	if c.wsOK {
		c.rcvScale = scale
	} else {
		c.rcvScale = 0
		c.sndScale = 0
	}
	c.ackNow = true
	if f&wire.FlagACK != 0 {
		c.una = h.Ack
		c.sndWnd = uint32(h.Window) << c.sndScale
		c.maxSndWnd = c.sndWnd
		c.wl1, c.wl2 = h.Seq, h.Ack
		c.state = stEstablished
		c.retries, c.rtxAt = 0, 0
		if c.rttTiming {
			s.rttSample(c, s.now-c.rttStart)
			c.rttTiming = false
		}
		if s.cfg.KeepAliveIdle > 0 {
			c.keepAt = s.now + s.cfg.KeepAliveIdle
		}
		s.ctr.TCPEstablished++
		s.queueEvent(c, sockapi.EvWritable)
	} else {
		c.state = stSynRcvd // simultaneous open
		c.nxt = c.iss
		c.sndWnd = uint32(h.Window)
	}
	s.markPending(c)
	s.updateDeadline(c)
}

// ackInput processes the ACK field (RFC 9293 3.10.7.4 fifth check). It
// returns false when the segment must be dropped.
func (s *Stack) ackInput(c *tcb, g *segment) bool {
	h := &g.h
	ack := h.Ack
	if seqGT(ack, c.maxNxt) {
		s.ctr.TCPAckTooNew++
		s.ackNowSend(c)
		return false
	}
	if seqLT(ack, c.una-c.maxSndWnd) {
		s.ctr.TCPAckTooOld++
		s.ackNowSend(c)
		return false
	}
	wnd := uint32(h.Window) << c.sndScale
	oldWnd := c.sndWnd
	if seqGT(ack, c.una) {
		if seqGT(ack, c.nxt) {
			c.nxt = ack // acked what we sent before an RTO rewound nxt
		}
		s.newAck(c, ack, h)
	} else if ack == c.una && len(g.payload) == 0 && h.Flags&(wire.FlagFIN|wire.FlagSYN) == 0 && c.una != c.maxNxt {
		if c.sackOK && h.NSACK > 0 {
			// RFC 6675: an ACK is a duplicate when it SACKs new data (the
			// window may have moved: Linux opens it as its reader drains).
			before := s.sackedAbove(c, c.una)
			s.sackUpdate(c, h)
			if s.sackedAbove(c, c.una) > before {
				s.dupAck(c, h)
			}
		} else if wnd == oldWnd {
			s.dupAck(c, h)
		}
	} else if c.sackOK && h.NSACK > 0 {
		s.sackUpdate(c, h)
	}
	// Window update (RFC 9293 3.10.7.4).
	if seqLT(c.wl1, h.Seq) || c.wl1 == h.Seq && seqLEQ(c.wl2, ack) {
		c.sndWnd = wnd
		if wnd > c.maxSndWnd {
			c.maxSndWnd = wnd
		}
		c.wl1, c.wl2 = h.Seq, ack
		if wnd > oldWnd {
			s.markPending(c)
		}
		if wnd > 0 {
			c.persistAt, c.persistShift = 0, 0
		}
	}
	finAcked := c.finQueued && seqGT(c.una, c.finSeq)
	switch c.state {
	case stFinWait1:
		if finAcked {
			c.state = stFinWait2
			if c.appClosed {
				c.endAt = s.now + s.cfg.FinWait2
			}
		}
	case stClosing:
		if finAcked {
			s.enterTimeWait(c)
		}
	case stLastAck:
		if finAcked {
			s.ctr.TCPClosed++
			s.free(c)
			return false
		}
	case stTimeWait:
		if h.Flags&wire.FlagFIN != 0 {
			c.endAt = s.now + s.cfg.TimeWait
			s.ackNowSend(c)
		}
	}
	return true
}

// newAck handles an ACK that advances SND.UNA.
func (s *Stack) newAck(c *tcb, ack uint32, h *wire.TCP) {
	acked := ack - c.una
	oldFlight := c.flight()
	dataAcked := acked
	if c.finQueued && seqGT(ack, c.finSeq) {
		dataAcked-- // the FIN's sequence number
	}
	if int(dataAcked) > c.snd.Len() {
		dataAcked = uint32(c.snd.Len())
	}
	c.snd.Discard(int(dataAcked))
	c.una = ack
	// If the new first hole was already retransmitted in this recovery,
	// watch for that retransmission's loss too (from now on: conservative).
	c.rxtUnaOn = c.inRecovery && c.sackOK && seqGT(c.highRxt, ack) && seqLT(ack, c.maxNxt)
	c.rxtUnaNxt = c.nxt
	c.tlpOut = false
	c.tlpAt = 0 // re-armed from now by the output that follows (RFC 8985 7.2)
	if c.snd.Len() == 0 && !c.wantWritable {
		c.snd.release() // idle: a writer waiting for space keeps its buffer
	}
	if seqLT(c.highRxt, c.una) {
		c.highRxt = c.una
	}
	// RTT (Karn: timing is cancelled on retransmission).
	if c.rttTiming && seqGEQ(ack, c.rttSeq) {
		s.rttSample(c, s.now-c.rttStart)
		c.rttTiming = false
	}
	c.retries = 0
	if c.sackOK {
		s.sackUpdate(c, h)
	}
	if c.una == c.maxNxt {
		c.rtxAt = 0
	} else {
		c.rtxAt = s.now + c.rto
	}
	// Congestion control.
	if c.inRecovery {
		if seqGEQ(ack, c.recover) {
			c.inRecovery = false
			c.lossAll = false
			c.cwnd = c.ssthresh
			c.dupacks = 0
		} else {
			// Partial ACK (RFC 6582 3.2 step 3): retransmit the next hole now.
			if !c.sackOK {
				c.dupacks = 0
				c.rxtForce = true
				c.highRxt = c.una
			}
		}
	} else {
		c.dupacks = 0
		if uint64(oldFlight)*2 >= uint64(c.cwnd) { // grow only when cwnd-limited (RFC 7661)
			s.ccOnAck(c, acked)
		}
	}
	// Wake a writer when a good share of the buffer is free.
	if c.wantWritable && (c.sendRoom(s.cfg.SendAhead) >= min(s.cfg.SendBuf, s.cfg.SendAhead)/4 || c.snd.Len() == 0) {
		c.wantWritable = false
		s.queueEvent(c, sockapi.EvWritable)
	}
	s.markPending(c)
}

// dupAck counts a duplicate ACK and enters fast recovery (RFC 5681/6582/6675).
func (s *Stack) dupAck(c *tcb, h *wire.TCP) {
	s.ctr.TCPDupAcks++
	c.dupacks++
	if c.inRecovery {
		// Lost retransmission (as Linux detected it before RACK): data sent
		// after we retransmitted the first hole has been SACKed well past
		// the dupthresh, yet the hole is still open.
		if c.rxtUnaOn && c.sackOK && s.sackedAbove(c, c.rxtUnaNxt) > uint32(2*c.mss) {
			s.ctr.TCPLostRetrans++
			c.rxtUnaOn = false
			c.highRxt = c.una
			c.rxtForce = true
		}
		s.markPending(c) // pipe shrank: maybe send
		return
	}
	if c.tlpOut && c.sackOK && seqLT(c.una, c.tlpSeq) && s.sackedAbove(c, c.tlpSeq) > 0 {
		// The tail probe arrived but what was sent before it did not:
		// treat every hole as lost (RFC 8985's RACK, in its simplest form).
		c.lossAll = true
		s.enterRecovery(c)
		return
	}
	if c.dupacks >= 3 || c.sackOK && s.sackedAbove(c, c.una) > uint32(2*c.mss) {
		s.enterRecovery(c)
	}
}

func (s *Stack) enterRecovery(c *tcb) {
	s.ctr.TCPFastRecoveries++
	s.ccOnLoss(c)
	c.cwnd = c.ssthresh
	c.inRecovery = true
	c.recover = c.maxNxt
	c.highRxt = c.una
	c.rxtForce = true
	c.rttTiming = false
	s.markPending(c)
}

// dataInput takes in-window payload (already trimmed) at g.h.Seq.
func (s *Stack) dataInput(c *tcb, g *segment) {
	seq := g.h.Seq
	p := g.payload
	if c.appClosed {
		// Nobody will read: acknowledge and discard.
		if seq == c.rcvNxt {
			c.rcvNxt += uint32(len(p))
			c.unacked += len(p)
			s.scheduleAck(c)
		} else {
			s.ackNowSend(c)
		}
		return
	}
	if seq == c.rcvNxt {
		n := len(p)
		if n > c.rcv.Free() {
			s.ctr.TCPRcvWindowDrops++
			n = c.rcv.Free()
		}
		c.rcv.WriteAt(p[:n], 0)
		c.rcv.Commit(n)
		c.rcvNxt += uint32(n)
		c.unacked += n
		hadOOO := len(c.ooo) > 0
		s.pullOOO(c)
		s.queueEvent(c, sockapi.EvReadable)
		if hadOOO {
			c.ackNow = true // RFC 5681 4.2: ACK at once when a hole fills
			s.markPending(c)
		} else {
			s.scheduleAck(c)
		}
		return
	}
	// Out of order: store in place, remember the range.
	off := int(seq - c.rcvNxt)
	if off+len(p) > c.rcv.Free() {
		p = p[:max(0, c.rcv.Free()-off)]
	}
	if len(p) == 0 || !s.addOOO(c, seqRange{seq, seq + uint32(len(p))}) {
		s.ctr.TCPOOODrops++
		s.ackNowSend(c)
		return
	}
	c.rcv.WriteAt(p, off)
	s.ctr.TCPOOOSegs++
	s.ackNowSend(c) // duplicate ACK with SACK blocks
}

// addOOO merges r into the sorted out-of-order list; false when full.
func (s *Stack) addOOO(c *tcb, r seqRange) bool {
	c.oooLast = r
	i := 0
	for i < len(c.ooo) && seqLT(c.ooo[i].end, r.start) {
		i++
	}
	j := i
	for j < len(c.ooo) && seqLEQ(c.ooo[j].start, r.end) {
		r.start = seqMin(r.start, c.ooo[j].start)
		r.end = seqMax(r.end, c.ooo[j].end)
		j++
	}
	if i == j {
		if len(c.ooo) >= s.cfg.OOORanges {
			return false
		}
		c.ooo = append(c.ooo, seqRange{})
		copy(c.ooo[i+1:], c.ooo[i:])
		c.ooo[i] = r
	} else {
		c.ooo[i] = r
		c.ooo = append(c.ooo[:i+1], c.ooo[j:]...)
	}
	c.oooLast = r
	return true
}

// pullOOO makes stored out-of-order data readable once the hole before it fills.
func (s *Stack) pullOOO(c *tcb) {
	for len(c.ooo) > 0 && seqLEQ(c.ooo[0].start, c.rcvNxt) {
		r := c.ooo[0]
		if seqGT(r.end, c.rcvNxt) {
			n := r.end - c.rcvNxt
			c.rcv.Commit(int(n))
			c.rcvNxt = r.end
			c.unacked += int(n)
		}
		c.ooo = c.ooo[1:]
	}
	if len(c.ooo) == 0 {
		c.ooo = nil
	}
	if c.oooFin && c.oooFinSeq == c.rcvNxt {
		c.oooFin = false
		s.finInput(c)
	}
}

func (s *Stack) finInput(c *tcb) {
	if c.peerFin {
		s.ackNowSend(c)
		return
	}
	c.peerFin = true
	c.rcvNxt++
	c.ackNow = true
	s.markPending(c)
	s.queueEvent(c, sockapi.EvReadable)
	switch c.state {
	case stSynRcvd, stEstablished:
		c.state = stCloseWait
	case stFinWait1:
		if c.finQueued && seqGT(c.una, c.finSeq) {
			s.enterTimeWait(c)
		} else {
			c.state = stClosing
		}
	case stFinWait2:
		s.enterTimeWait(c)
	}
}

func (s *Stack) enterTimeWait(c *tcb) {
	c.state = stTimeWait
	c.endAt = s.now + s.cfg.TimeWait
	c.rtxAt, c.persistAt, c.keepAt, c.delackAt = 0, 0, 0, 0
	c.snd = ring{max: c.snd.max}
	c.rcv = ring{max: c.rcv.max}
	c.ooo, c.sacked = nil, nil
	s.timewaits++
	s.ctr.TCPClosed++
	if !c.appClosed {
		// Only reachable if the service never closed: tell it the peer is gone.
		s.queueEvent(c, sockapi.EvReadable)
	}
	s.updateDeadline(c)
}

// scheduleAck arranges a delayed ACK (RFC 1122/5681: at least every second full segment).
func (s *Stack) scheduleAck(c *tcb) {
	if c.unacked >= 2*c.mss {
		c.ackNow = true
		s.markPending(c)
		return
	}
	if c.delackAt == 0 {
		c.delackAt = s.now + s.cfg.DelayedACK
		s.updateDeadline(c)
	}
}

// ackNowSend sends an ACK immediately (duplicate ACKs must not wait for Poll).
func (s *Stack) ackNowSend(c *tcb) {
	if c.state == stSynSent || c.state == stClosed || c.state == stListen {
		return
	}
	if c.state == stSynRcvd {
		return // the SYN-ACK retransmission covers it
	}
	s.sendSegment(c, c.nxt, 0, wire.FlagACK, false)
}

// connReset ends a connection because of a RST.
func (s *Stack) connReset(c *tcb) {
	switch c.state {
	case stSynRcvd:
		if c.listener != 0 {
			s.free(c) // back to LISTEN: forget it
			return
		}
	case stClosing, stLastAck, stTimeWait:
		s.free(c)
		return
	}
	s.connEnd(c, endReset)
}

// connEnd moves a connection to CLOSED and tells the service; the socket is
// freed once the service has seen EvClosed (or at once when nobody listens).
func (s *Stack) connEnd(c *tcb, why uint8) {
	c.state = stClosed
	c.end = why
	c.rtxAt, c.persistAt, c.keepAt, c.delackAt, c.endAt = 0, 0, 0, 0, 0
	delete(s.conns, tuple{c.rip, c.rport, c.lport})
	s.updateDeadline(c)
	if c.appClosed || !c.accepted {
		if !c.accepted && c.listener != 0 {
			if l := s.socks[c.listener]; l != nil {
				l.removeFromQueue(c.id)
			}
		}
		s.free(c)
		return
	}
	s.queueEvent(c, sockapi.EvClosed)
}

func (l *tcb) removeFromQueue(id sockapi.SockID) {
	for i, x := range l.acceptQ {
		if x == id {
			l.acceptQ = append(l.acceptQ[:i], l.acceptQ[i+1:]...)
			return
		}
	}
}

// queueEvent records an event for the service, at most one of each kind pending.
func (s *Stack) queueEvent(c *tcb, k sockapi.EventKind) {
	if c.appClosed || !c.accepted {
		return
	}
	switch k {
	case sockapi.EvReadable:
		if c.evReadable {
			return
		}
		c.evReadable = true
	case sockapi.EvWritable:
		if c.evWritable {
			return
		}
		c.evWritable = true
	case sockapi.EvClosed:
		if c.evClosed {
			return
		}
		c.evClosed = true
	}
	s.events = append(s.events, sockapi.Event{Kind: k, Sock: c.id, Listener: c.listener})
}

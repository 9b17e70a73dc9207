package netstack

import (
	"encoding/binary"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
)

// tcpOutput sends what c may send now: SYN, data, FIN, retransmissions, ACKs.
func (s *Stack) tcpOutput(c *tcb) {
	switch c.state {
	case stSynSent, stSynRcvd:
		if c.nxt == c.iss {
			flags := uint8(wire.FlagSYN)
			if c.state == stSynRcvd {
				flags |= wire.FlagACK
			}
			s.sendSegment(c, c.iss, 0, flags, false)
			c.nxt = c.iss + 1
			c.maxNxt = seqMax(c.maxNxt, c.nxt)
			if c.rtxAt == 0 {
				c.rtxAt = s.now + c.rto
			}
			if c.retries == 0 && !c.rttTiming {
				c.rttTiming, c.rttSeq, c.rttStart = true, c.nxt, s.now
			}
		} else if c.ackNow && c.state == stSynSent {
			c.ackNow = false
		}
		s.updateDeadline(c)
		return
	case stEstablished, stCloseWait, stFinWait1, stClosing, stLastAck:
	case stFinWait2, stTimeWait:
		if c.ackNow {
			s.sendSegment(c, c.nxt, 0, wire.FlagACK, false)
		}
		return
	default:
		return
	}
	sent := false
	for guard := 0; guard < 1<<16; guard++ {
		if c.inRecovery {
			if s.recoverySend(c) {
				sent = true
				continue
			}
			if s.pipe(c)+uint32(c.mss) > c.cwnd {
				break
			}
		}
		if !s.sendNewData(c) {
			break
		}
		sent = true
	}
	if !sent && (c.ackNow || s.windowUpdateDue(c)) {
		s.sendSegment(c, c.nxt, 0, wire.FlagACK, false)
	}
	// Data waiting, nothing in flight, and the window too small to send
	// (zero, or below the SWS threshold): persist timer (RFC 9293 3.8.6.1,
	// and the SWS override timeout of 3.8.6.2.1).
	if !sent && c.una == c.nxt && (c.snd.Len() > int(c.nxt-c.una) || c.finQueued && c.nxt == c.finSeq) {
		if c.persistAt == 0 {
			c.persistAt = s.now + s.persistInterval(c)
		}
	} else if sent || c.una != c.nxt {
		c.persistAt = 0
	}
	s.armTLP(c, sent)
	s.updateDeadline(c)
}

// armTLP schedules a tail loss probe (RFC 8985 7.2) two smoothed RTTs after
// the last transmission, so a lost tail is repaired without waiting for the RTO.
func (s *Stack) armTLP(c *tcb, sent bool) {
	if !c.sackOK || c.inRecovery || c.tlpOut || c.una == c.maxNxt || c.srtt == 0 || c.retries > 0 {
		c.tlpAt = 0
		return
	}
	if !sent && c.tlpAt != 0 {
		return
	}
	// RFC 8985 adds the peer's delayed-ACK time only for a one-segment
	// flight; an odd last segment is delayed just the same, so always add it
	// (no spurious probes on a clean path, still far below the 200 ms RTO).
	pto := 2*c.srtt + s.cfg.DelayedACK
	if pto < 10e6 {
		pto = 10e6
	}
	if at := s.now + pto; c.rtxAt == 0 || at < c.rtxAt {
		c.tlpAt = at
	} else {
		c.tlpAt = 0
	}
}

// tailLossProbe retransmits the last segment sent (RFC 8985 7.3).
func (s *Stack) tailLossProbe(c *tcb) {
	if c.inRecovery || c.una == c.maxNxt || !c.synchronized() {
		return
	}
	end := c.maxNxt
	start := c.una
	if f := end - c.una; f > uint32(c.mss) {
		start = end - uint32(c.mss)
	}
	s.ctr.TCPTailLossProbes++
	c.tlpOut, c.tlpSeq = true, start
	s.retransmit(c, start, end)
}

func (s *Stack) persistInterval(c *tcb) int64 {
	d := c.rto << c.persistShift
	if d > 60e9 || d <= 0 {
		d = 60e9
	}
	return d
}

// sendNewData sends one (super-)segment of new data or the FIN. It reports
// whether anything was sent.
func (s *Stack) sendNewData(c *tcb) bool {
	off := int(c.nxt - c.una)
	avail := c.snd.Len() - off
	if avail < 0 {
		avail = 0
	}
	finPending := c.finQueued && seqLEQ(c.nxt, c.finSeq)
	if avail == 0 && !finPending {
		return false
	}
	wnd := c.sndWnd
	if !c.inRecovery && c.cwnd < wnd {
		wnd = c.cwnd
	}
	usable := int64(int32(c.una + wnd - c.nxt))
	if c.inRecovery {
		room := int64(c.cwnd) - int64(s.pipe(c))
		if room < usable {
			usable = room
		}
	}
	n := avail
	if int64(n) > usable {
		if usable < 0 {
			n = 0
		} else {
			n = int(usable)
		}
	}
	maxSeg := c.mss
	if s.cfg.TSOMax > c.mss {
		maxSeg = s.cfg.TSOMax / c.mss * c.mss
	}
	if n > maxSeg {
		n = maxSeg
	}
	if n < avail {
		// Sender SWS avoidance (RFC 9293 3.8.6.2.1): no small segments while
		// more data waits, unless the peer's window is small anyway.
		if n < c.mss && uint32(n) < c.maxSndWnd/2 {
			n = 0
		} else if n > c.mss {
			n -= n % c.mss
		}
	}
	fin := finPending && off+n == c.snd.Len()
	if n == 0 && (!fin || avail > 0) {
		return false
	}
	flags := uint8(wire.FlagACK)
	if fin {
		flags |= wire.FlagFIN
	}
	if n > 0 && off+n == c.snd.Len() {
		flags |= wire.FlagPSH
	}
	seq := c.nxt
	retrans := seqLT(seq, c.maxNxt)
	s.sendSegment(c, seq, n, flags, retrans)
	c.nxt = seq + uint32(n)
	if fin {
		c.nxt++
	}
	if seqGT(c.nxt, c.maxNxt) {
		c.maxNxt = c.nxt
	}
	if !retrans && !c.rttTiming {
		c.rttTiming, c.rttSeq, c.rttStart = true, c.nxt, s.now
	}
	if c.rtxAt == 0 {
		c.rtxAt = s.now + c.rto
	}
	return true
}

// sendSegment builds and queues one TCP segment carrying n bytes of queued
// data starting at seq (n may exceed the MSS: a TSO super-segment).
func (s *Stack) sendSegment(c *tcb, seq uint32, n int, flags uint8, retrans bool) {
	o := &s.opt
	*o = wire.TCPOptions{WScale: -1}
	syn := flags&wire.FlagSYN != 0
	if syn {
		o.MSS = uint16(s.cfg.MTU - 40)
		dial := c.state == stSynSent
		if dial && !s.cfg.NoWindowScale || c.wsOK {
			o.WScale = int(c.rcvScale)
		}
		o.SACKPerm = dial && !s.cfg.NoSACK || c.sackOK
		o.HasTS = dial && !s.cfg.NoTimestamps || c.tsOK
	} else {
		o.HasTS = c.tsOK
	}
	if o.HasTS {
		o.TSVal = s.tsNow(c)
		o.TSEcr = c.tsRecent
		if c.state == stSynSent {
			o.TSEcr = 0
		}
	}
	if c.sackOK && len(c.ooo) > 0 && !syn {
		o.SACK = s.sackBlocks(c, o.HasTS)
	}
	optLen := o.Len()
	hdr := wire.TCPLen + optLen
	f := s.frame(wire.EthLen + wire.IPv4Len + hdr + n)
	t := f[wire.EthLen+wire.IPv4Len:]
	win := s.rcvWindow(c, syn)
	wire.PutTCP(t, c.lport, c.rport, seq, c.rcvNxt, hdr, flags, win)
	if flags&wire.FlagACK == 0 {
		binary.BigEndian.PutUint32(t[8:12], 0)
	}
	wire.PutTCPOptions(t[wire.TCPLen:], o)
	if n > 0 {
		c.snd.Peek(t[hdr:], int(seq-c.una))
	}
	s.tcpChecksum(t, c.rip)
	gso := uint16(0)
	if n > c.mss {
		gso = uint16(c.mss)
	}
	if flags&wire.FlagACK != 0 {
		c.lastAckSent = c.rcvNxt
		c.ackNow = false
		c.unacked = 0
		c.delackAt = 0
	}
	s.ctr.TCPSegsOut++
	if retrans {
		s.ctr.TCPRetransSegs++
		if c.rttTiming && seqLT(seq, c.rttSeq) {
			c.rttTiming = false // Karn
		}
	}
	s.sendIP(f, c.rip, wire.ProtoTCP, true, gso)
}

// sendCtl sends a bare control segment (RST) that belongs to no connection.
func (s *Stack) sendCtl(dst [4]byte, sport, dport uint16, seq, ack uint32, flags uint8) {
	f := make([]byte, wire.EthLen+wire.IPv4Len+wire.TCPLen)
	t := f[wire.EthLen+wire.IPv4Len:]
	wire.PutTCP(t, sport, dport, seq, ack, wire.TCPLen, flags, 0)
	s.tcpChecksum(t, dst)
	if flags&wire.FlagRST != 0 {
		s.ctr.TCPResetsOut++
	}
	s.sendIP(f, dst, wire.ProtoTCP, true, 0)
}

// tcpChecksum fills the checksum of segment t (field zero) to dst: complete,
// or with ChecksumOffload only the folded pseudo-header sum for the NIC/TAP.
func (s *Stack) tcpChecksum(t []byte, dst [4]byte) {
	ps := wire.PseudoSum(s.cfg.IP, dst, wire.ProtoTCP, len(t))
	if s.cfg.ChecksumOffload {
		binary.BigEndian.PutUint16(t[16:18], wire.Fold(ps))
		return
	}
	binary.BigEndian.PutUint16(t[16:18], ^wire.Fold(wire.Sum(t, ps)))
}

// tsNow is the RFC 7323 timestamp clock: 1 ms ticks plus a per-connection offset.
func (s *Stack) tsNow(c *tcb) uint32 { return uint32(s.now/1e6) + c.tsOff }

// rcvWindow computes the window to advertise, with receiver SWS avoidance
// and never shrinking the right edge (RFC 9293 3.8.6.2.2).
func (s *Stack) rcvWindow(c *tcb, syn bool) uint16 {
	free := uint32(c.rcvFree(s))
	if c.appClosed {
		free = uint32(s.cfg.RecvBuf)
	}
	if syn {
		if free > 65535 {
			free = 65535
		}
		c.rcvAdv = c.rcvNxt + free
		c.rcvAdvSent = c.rcvAdv
		return uint16(free)
	}
	edge := c.rcvNxt + free
	if seqLT(edge, c.rcvAdv) {
		edge = c.rcvAdv
	} else if grow := edge - c.rcvAdv; seqGT(c.rcvAdv, c.rcvNxt) && grow < uint32(min(s.cfg.RecvBuf/2, c.mss)) {
		edge = c.rcvAdv // too small an increase to announce
	}
	w := (edge - c.rcvNxt) >> c.rcvScale
	if w<<c.rcvScale != edge-c.rcvNxt {
		w++ // round up so the edge never moves left; the ring has slack for it
	}
	if w > 65535 {
		w = 65535
		edge = c.rcvNxt + w<<c.rcvScale
	}
	c.rcvAdv = edge // the true edge: rounding never accumulates
	if sent := c.rcvNxt + w<<c.rcvScale; seqGT(sent, c.rcvAdvSent) {
		c.rcvAdvSent = sent
	}
	return uint16(w)
}

// windowUpdateDue reports whether reading opened the window enough to tell the peer.
func (s *Stack) windowUpdateDue(c *tcb) bool {
	if !c.synchronized() || c.peerFin {
		return false
	}
	free := uint32(c.rcvFree(s))
	adv := c.rcvAdv - c.rcvNxt
	if seqLT(c.rcvAdv, c.rcvNxt) {
		adv = 0
	}
	if free <= adv {
		return false
	}
	inc := free - adv
	return inc >= uint32(2*c.mss) && (adv < uint32(c.mss) || inc >= uint32(s.cfg.RecvBuf/2))
}

// sackBlocks lists SACK blocks: the newest arrival first (RFC 2018 4), then
// the other ranges from the highest down.
func (s *Stack) sackBlocks(c *tcb, ts bool) []wire.SACKBlock {
	maxN := 4
	if ts {
		maxN = 3
	}
	out := s.sb[:0]
	first := seqRange{}
	for _, r := range c.ooo {
		if seqLEQ(r.start, c.oooLast.start) && seqGEQ(r.end, c.oooLast.end) {
			first = r
			out = append(out, wire.SACKBlock{Left: r.start, Right: r.end})
			break
		}
	}
	for i := len(c.ooo) - 1; i >= 0 && len(out) < maxN; i-- {
		if c.ooo[i] == first {
			continue
		}
		out = append(out, wire.SACKBlock{Left: c.ooo[i].start, Right: c.ooo[i].end})
	}
	return out
}

package netstack

import "github.com/ftvs/ftvs/ftvs/netstack/wire"

// rcvFree is the receive space we may advertise (the ring keeps a little
// slack beyond it for window-scale rounding).
func (c *tcb) rcvFree(s *Stack) int {
	f := s.cfg.RecvBuf - c.rcv.Len()
	if f < 0 {
		return 0
	}
	return f
}

// rttSample feeds one measurement into RFC 6298.
func (s *Stack) rttSample(c *tcb, r int64) {
	if r <= 0 {
		r = 1000 // 1 µs: virtual clocks can stand still
	}
	if c.srtt == 0 {
		c.srtt = r
		c.rttvar = r / 2
	} else {
		d := c.srtt - r
		if d < 0 {
			d = -d
		}
		c.rttvar = (3*c.rttvar + d) / 4
		c.srtt = (7*c.srtt + r) / 8
	}
	k := 4 * c.rttvar
	if k < 1e6 { // clock granularity G = 1 ms
		k = 1e6
	}
	c.rto = c.srtt + k
	if c.rto < s.cfg.MinRTO {
		c.rto = s.cfg.MinRTO
	}
	if c.rto > s.cfg.MaxRTO {
		c.rto = s.cfg.MaxRTO
	}
}

const cwndMax = 1 << 30

// ccOnAck grows cwnd: slow start, then CUBIC (RFC 9438) with its
// Reno-friendly floor.
func (s *Stack) ccOnAck(c *tcb, acked uint32) {
	mss := uint32(c.mss)
	if c.cwnd < c.ssthresh {
		c.cwnd += acked
		if c.cwnd > c.ssthresh {
			c.cwnd = c.ssthresh
		}
		return
	}
	if c.cubEpoch == 0 {
		c.cubEpoch = s.now
		c.cubWest = c.cwnd
		if c.cwnd < c.cubWmax {
			// K = cbrt((Wmax - cwnd) / C) seconds, C = 0.4 segments/s^3; in ms.
			segs := uint64(c.cubWmax-c.cwnd) / uint64(mss)
			c.cubK = int64(icbrt(segs * 25e8))
			c.cubOrigin = c.cubWmax
		} else {
			c.cubK = 0
			c.cubOrigin = c.cwnd
		}
	}
	t := (s.now - c.cubEpoch + c.srtt) / 1e6
	d := t - c.cubK
	if d > 100000 {
		d = 100000
	} else if d < -100000 {
		d = -100000
	}
	// W(t) = C (t-K)^3 + Wmax, in 1/1024 segments.
	delta := 4 * d * d * d * 1024 / 1e10
	target := int64(c.cubOrigin) + delta*int64(mss)/1024
	// Reno-friendly estimate: alpha = 3(1-beta)/(1+beta) = 0.529 segments per RTT.
	c.cubWest += uint32(uint64(529) * uint64(mss) * uint64(acked) / (1000 * uint64(c.cwnd)))
	if target < int64(c.cubWest) {
		target = int64(c.cubWest)
	}
	if lim := int64(c.cwnd) * 3 / 2; target > lim {
		target = lim
	}
	var inc uint32
	if target > int64(c.cwnd) {
		inc = uint32((target - int64(c.cwnd)) * int64(acked) / int64(c.cwnd))
	} else {
		inc = uint32(uint64(mss) * uint64(acked) / (100 * uint64(c.cwnd)))
	}
	c.cwnd += inc
	if c.cwnd > cwndMax {
		c.cwnd = cwndMax
	}
}

// ccOnLoss applies CUBIC's multiplicative decrease (beta 0.7, fast convergence).
func (s *Stack) ccOnLoss(c *tcb) {
	cw := c.cwnd
	if f := c.flight(); f < cw && !c.inRecovery {
		cw = max(f, cw/2)
	}
	if cw < c.cubWmax {
		c.cubWmax = uint32(uint64(cw) * 17 / 20) // (1+beta)/2
	} else {
		c.cubWmax = cw
	}
	c.ssthresh = max(uint32(uint64(cw)*7/10), uint32(2*c.mss))
	c.cubEpoch = 0
}

// icbrt is the integer cube root.
func icbrt(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	lo, hi := uint64(0), uint64(2642246) // cbrt(2^64)
	for lo < hi {
		m := (lo + hi + 1) / 2
		if m*m*m <= x {
			lo = m
		} else {
			hi = m - 1
		}
	}
	return lo
}

// sackUpdate merges the peer's SACK blocks into the scoreboard (RFC 2018).
func (s *Stack) sackUpdate(c *tcb, h *wire.TCP) {
	for i := 0; i < h.NSACK; i++ {
		b := h.SACK[i]
		if !seqLT(b.Left, b.Right) || seqLEQ(b.Right, c.una) || seqGT(b.Right, c.maxNxt) {
			continue // D-SACK or bogus
		}
		r := seqRange{seqMax(b.Left, c.una), b.Right}
		j := 0
		for j < len(c.sacked) && seqLT(c.sacked[j].end, r.start) {
			j++
		}
		k := j
		for k < len(c.sacked) && seqLEQ(c.sacked[k].start, r.end) {
			r.start = seqMin(r.start, c.sacked[k].start)
			r.end = seqMax(r.end, c.sacked[k].end)
			k++
		}
		if j == k {
			if len(c.sacked) >= s.cfg.SACKRanges {
				s.ctr.TCPSACKDrops++
				continue
			}
			c.sacked = append(c.sacked, seqRange{})
			copy(c.sacked[j+1:], c.sacked[j:])
			c.sacked[j] = r
		} else {
			c.sacked[j] = r
			c.sacked = append(c.sacked[:j+1], c.sacked[k:]...)
		}
	}
	// Forget what the cumulative ACK covers.
	n := 0
	for n < len(c.sacked) && seqLEQ(c.sacked[n].end, c.una) {
		n++
	}
	if n > 0 {
		c.sacked = append(c.sacked[:0], c.sacked[n:]...)
	}
	if len(c.sacked) > 0 && seqLT(c.sacked[0].start, c.una) {
		c.sacked[0].start = c.una
	}
	if len(c.sacked) == 0 {
		c.sacked = nil
	}
}

// sackedAbove is the number of SACKed bytes above seq.
func (s *Stack) sackedAbove(c *tcb, seq uint32) uint32 {
	var n uint32
	for i := len(c.sacked) - 1; i >= 0; i-- {
		r := c.sacked[i]
		if seqLEQ(r.end, seq) {
			break
		}
		n += r.end - seqMax(r.start, seq)
	}
	return n
}

// isLost is RFC 6675 IsLost for the hole ending at end, given the SACKed
// bytes and blocks above it.
func (c *tcb) isLost(above uint32, blocksAbove int) bool {
	return c.lossAll || blocksAbove >= 3 || above > uint32(2*c.mss)
}

// pipe is RFC 6675 SetPipe: bytes believed in flight.
func (s *Stack) pipe(c *tcb) uint32 {
	if !c.sackOK {
		// NewReno: every duplicate ACK is a segment that left the network.
		f := c.flight()
		d := uint32(c.dupacks * c.mss)
		if d >= f {
			f = 0
		} else {
			f -= d
		}
		return f
	}
	var p uint32
	cur := c.una
	above := s.sackedAbove(c, c.una)
	for i, r := range c.sacked {
		if seqLT(cur, r.start) {
			holeEnd := seqMin(r.start, c.nxt)
			if seqLT(cur, holeEnd) {
				if c.isLost(above, len(c.sacked)-i) {
					if seqGT(c.highRxt, cur) {
						p += seqMin(c.highRxt, holeEnd) - cur
					}
				} else {
					p += holeEnd - cur
				}
			}
		}
		above -= r.end - r.start
		cur = r.end
	}
	if seqLT(cur, c.nxt) {
		p += c.nxt - cur
	}
	return p
}

// recoverySend retransmits the next lost segment if the pipe allows
// (RFC 6675 NextSeg rule 1; NewReno retransmits the first unacked segment).
func (s *Stack) recoverySend(c *tcb) bool {
	if !c.rxtForce && s.pipe(c)+uint32(c.mss) > c.cwnd {
		return false
	}
	start, end, ok := s.nextLost(c)
	if !ok {
		return false
	}
	c.rxtForce = false
	if n := end - start; int(n) > c.mss {
		end = start + uint32(c.mss)
	}
	s.ctr.TCPFastRetrans++
	s.retransmit(c, start, end)
	c.highRxt = end
	if start == c.una {
		c.rxtUnaOn, c.rxtUnaNxt = true, c.nxt
	}
	return true
}

func (s *Stack) nextLost(c *tcb) (uint32, uint32, bool) {
	from := seqMax(c.highRxt, c.una)
	if !c.sackOK {
		if from == c.una && seqLT(c.una, c.nxt) {
			return c.una, seqMin(c.nxt, c.una+uint32(c.mss)), true
		}
		return 0, 0, false
	}
	cur := c.una
	above := s.sackedAbove(c, c.una)
	for i, r := range c.sacked {
		if seqLT(cur, r.start) && c.isLost(above, len(c.sacked)-i) {
			st := seqMax(cur, from)
			if seqLT(st, r.start) {
				return st, r.start, true
			}
		}
		above -= r.end - r.start
		cur = r.end
	}
	if c.rxtForce && from == c.una && seqLT(c.una, c.nxt) {
		// Entering recovery on three duplicate ACKs without enough SACK
		// evidence: retransmit the first segment anyway (RFC 6675 step 4.3).
		end := c.una + uint32(c.mss)
		if len(c.sacked) > 0 {
			end = seqMin(end, c.sacked[0].start)
		}
		return c.una, seqMin(end, c.nxt), true
	}
	return 0, 0, false
}

// retransmit resends [start, end) (data and possibly the FIN).
func (s *Stack) retransmit(c *tcb, start, end uint32) {
	n := int(end - start)
	flags := uint8(wire.FlagACK)
	dataEnd := c.sndDataEnd()
	if c.finQueued && seqGEQ(end, c.finSeq+1) {
		flags |= wire.FlagFIN
		n = int(dataEnd - start)
	}
	if n < 0 {
		n = 0
	}
	s.sendSegment(c, start, n, flags, true)
	if c.rtxAt == 0 {
		c.rtxAt = s.now + c.rto
	}
}

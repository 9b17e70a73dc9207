package netstack

import (
	"fmt"

	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// snapVersion is the version of the "netstack" snapshot section.
const snapVersion = 1

// codec walks the state once for both directions, so encoder and decoder
// cannot drift apart: w != nil encodes, otherwise it decodes from r.
type codec struct {
	w *snap.Writer
	r *snap.Reader
}

func (c *codec) u8(p *uint8) {
	if c.w != nil {
		c.w.U8(*p)
	} else {
		*p = c.r.U8()
	}
}
func (c *codec) u16(p *uint16) {
	if c.w != nil {
		c.w.U16(*p)
	} else {
		*p = c.r.U16()
	}
}
func (c *codec) u32(p *uint32) {
	if c.w != nil {
		c.w.U32(*p)
	} else {
		*p = c.r.U32()
	}
}
func (c *codec) u64(p *uint64) {
	if c.w != nil {
		c.w.U64(*p)
	} else {
		*p = c.r.U64()
	}
}
func (c *codec) i64(p *int64) {
	if c.w != nil {
		c.w.I64(*p)
	} else {
		*p = c.r.I64()
	}
}
func (c *codec) int(p *int) {
	if c.w != nil {
		c.w.Int(*p)
	} else {
		*p = c.r.Int()
	}
}
func (c *codec) bool(p *bool) {
	if c.w != nil {
		c.w.Bool(*p)
	} else {
		*p = c.r.Bool()
	}
}
func (c *codec) ip(p *[4]byte) {
	for i := range p {
		c.u8(&p[i])
	}
}
func (c *codec) mac(p *[6]byte) {
	for i := range p {
		c.u8(&p[i])
	}
}
func (c *codec) id(p *sockapi.SockID) {
	v := uint32(*p)
	c.u32(&v)
	*p = sockapi.SockID(v)
}

// count encodes a slice length, refusing absurd values when decoding.
func (c *codec) count(n int, limit int, what string) int {
	v := uint32(n)
	c.u32(&v)
	if c.r != nil && int(v) > limit {
		c.r.Fail(fmt.Errorf("%s: %d entries exceed limit %d", what, v, limit))
		return 0
	}
	return int(v)
}

// ringData encodes a ring's first extent bytes (readable data plus any
// out-of-order bytes stored beyond it).
func (c *codec) ringData(r *ring, extent int, limit int) {
	if c.w != nil {
		// Straight from the ring's storage: the bytes are the same as a
		// contiguous copy's, whatever the ring's head (canonical state).
		c.w.Blob2(r.halves(extent))
		c.w.Int(r.n)
		return
	}
	b := c.r.Blob(limit)
	n := c.r.Int()
	if c.r.Err() != nil {
		return
	}
	if n < 0 || n > len(b) {
		c.r.Fail(fmt.Errorf("ring: readable %d of %d bytes", n, len(b)))
		return
	}
	r.buf, r.head, r.n = nil, 0, 0
	if len(b) > 0 {
		r.grow(len(b))
		r.copyIn(b, 0)
	}
	r.n = n
}

func (c *codec) seqRanges(p *[]seqRange, limit int, what string) {
	n := c.count(len(*p), limit, what)
	if c.r != nil {
		*p = nil
		if n > 0 {
			*p = make([]seqRange, n)
		}
	}
	for i := 0; i < n; i++ {
		c.u32(&(*p)[i].start)
		c.u32(&(*p)[i].end)
	}
}

// Snapshot writes the whole stack state.
func (s *Stack) Snapshot(w *snap.Writer) {
	w.Grow(s.snapshotSizeHint())
	w.Section("netstack", snapVersion, func(w *snap.Writer) {
		s.codec(&codec{w: w})
	})
}

// snapshotSizeHint is a little more than the encoding takes: the writer
// then grows once instead of doubling its way through megabytes of rings.
func (s *Stack) snapshotSizeHint() int {
	n := 4096 + 64*len(s.arp.entries) + 16*len(s.events)
	for _, f := range s.tx {
		n += len(f.b) + 16
	}
	for _, wt := range s.arp.waits {
		for _, f := range wt.frames {
			n += len(f.b) + 16
		}
	}
	for _, t := range s.order {
		n += 1024 + t.snd.Len() + t.rcv.Len() + 8*(len(t.ooo)+len(t.sacked)+len(t.acceptQ))
		if len(t.ooo) > 0 {
			n += int(t.ooo[len(t.ooo)-1].end - t.rcvNxt)
		}
	}
	return n
}

// Restore replaces the state with a snapshot taken from a stack with the
// same Config. On error the stack is left empty (as made by New).
func (s *Stack) Restore(r *snap.Reader) error {
	fresh, _ := New(s.cfg)
	*s = *fresh
	r.Section("netstack", snapVersion, func(r *snap.Reader, _ uint16) {
		s.codec(&codec{r: r})
	})
	if err := r.Err(); err != nil {
		*s = *fresh
		return fmt.Errorf("netstack restore: %w", err)
	}
	return nil
}

func (s *Stack) codec(c *codec) {
	// Config fingerprint: a snapshot only fits a stack with the same addresses.
	ip, mac := s.cfg.IP, s.cfg.MAC
	c.ip(&ip)
	c.mac(&mac)
	if c.r != nil && (ip != s.cfg.IP || mac != s.cfg.MAC) {
		c.r.Fail(fmt.Errorf("snapshot is for %v/%x, this stack is %v/%x", ip, mac, s.cfg.IP, s.cfg.MAC))
		return
	}
	c.i64(&s.now)
	c.u16(&s.ipID)
	c.u64(&s.rng)
	c.id(&s.nextID)
	for _, p := range s.ctr.fields() {
		c.u64(p)
	}
	s.codecARP(c)
	// TX queue and events (normally drained between steps).
	n := c.count(len(s.tx), s.cfg.TXQueue, "tx queue")
	if c.r != nil {
		s.tx = make([]txFrame, n)
	}
	for i := 0; i < n; i++ {
		if c.w != nil {
			c.w.Blob(s.tx[i].b)
		} else {
			s.tx[i].b = c.r.Blob(1 << 17)
		}
		c.u16(&s.tx[i].gso)
	}
	n = c.count(len(s.events), 4*s.cfg.MaxSockets+16, "events")
	if c.r != nil {
		s.events = make([]sockapi.Event, n)
	}
	for i := 0; i < n; i++ {
		k := uint8(s.events[i].Kind)
		c.u8(&k)
		s.events[i].Kind = sockapi.EventKind(k)
		c.id(&s.events[i].Sock)
		c.id(&s.events[i].Listener)
	}
	// Sockets in id order.
	n = c.count(len(s.order), s.cfg.MaxSockets, "sockets")
	if c.r != nil {
		s.order = make([]*tcb, 0, n)
	}
	for i := 0; i < n && (c.r == nil || c.r.Err() == nil); i++ {
		t := &tcb{heapIdx: -1}
		if c.w != nil {
			t = s.order[i]
		}
		s.codecTCB(c, t)
		if c.r != nil {
			if c.r.Err() != nil {
				return
			}
			if len(s.order) > 0 && s.order[len(s.order)-1].id >= t.id || t.id == 0 {
				c.r.Fail(fmt.Errorf("socket %d out of order", t.id))
				return
			}
			s.order = append(s.order, t)
			s.socks[t.id] = t
			switch {
			case t.state == stListen:
				s.listeners[t.lport] = t
			default:
				s.conns[tuple{t.rip, t.rport, t.lport}] = t
			}
			if t.state == stTimeWait {
				s.timewaits++
			}
		}
	}
	// Sockets awaiting output, in order.
	n = c.count(len(s.pending), s.cfg.MaxSockets, "pending")
	for i := 0; i < n; i++ {
		var id sockapi.SockID
		if c.w != nil {
			id = s.pending[i].id
		}
		c.id(&id)
		if c.r != nil {
			t := s.socks[id]
			if t == nil {
				c.r.Fail(fmt.Errorf("pending socket %d unknown", id))
				return
			}
			t.inPending = true
			s.pending = append(s.pending, t)
		}
	}
	if c.r != nil {
		for _, t := range s.order {
			d := t.deadline
			t.deadline, t.heapIdx = 0, -1
			s.setDeadline(t, d)
		}
	}
}

func (s *Stack) codecARP(c *codec) {
	a := &s.arp
	var ips [][4]byte
	if c.w != nil {
		ips = a.sortedIPs()
	}
	n := c.count(len(ips), s.cfg.ARPCacheSize, "arp cache")
	for i := 0; i < n; i++ {
		var ip [4]byte
		e := &arpEntry{}
		if c.w != nil {
			ip = ips[i]
			e = a.entries[ip]
		}
		c.ip(&ip)
		c.mac(&e.mac)
		c.i64(&e.expires)
		c.i64(&e.lastReq)
		if c.r != nil {
			a.entries[ip] = e
		}
	}
	n = c.count(len(a.waits), s.cfg.ARPPending, "arp waits")
	if c.r != nil {
		a.waits = make([]arpWait, n)
	}
	for i := 0; i < n; i++ {
		wt := &a.waits[i]
		c.ip(&wt.ip)
		c.int(&wt.tries)
		c.i64(&wt.next)
		m := c.count(len(wt.frames), 16, "arp held frames")
		if c.r != nil {
			wt.frames = make([]txFrame, m)
			a.held += m
		}
		for j := 0; j < m; j++ {
			if c.w != nil {
				c.w.Blob(wt.frames[j].b)
			} else {
				wt.frames[j].b = c.r.Blob(1 << 17)
			}
			c.u16(&wt.frames[j].gso)
		}
	}
	if c.r != nil {
		a.setDeadline()
	}
}

func (s *Stack) codecTCB(c *codec, t *tcb) {
	c.id(&t.id)
	st := uint8(t.state)
	c.u8(&st)
	if c.r != nil && st > uint8(stTimeWait) {
		c.r.Fail(fmt.Errorf("socket %d: state %d", t.id, st))
		return
	}
	t.state = tcpState(st)
	c.id(&t.listener)
	c.u16(&t.lport)
	c.u16(&t.rport)
	c.ip(&t.rip)
	c.int(&t.backlog)
	n := c.count(len(t.acceptQ), s.cfg.MaxBacklog, "accept queue")
	if c.r != nil && n > 0 {
		t.acceptQ = make([]sockapi.SockID, n)
	}
	for i := 0; i < n; i++ {
		c.id(&t.acceptQ[i])
	}
	c.int(&t.synRcvd)
	c.bool(&t.inSynQ)
	for _, p := range []*bool{&t.accepted, &t.appClosed, &t.wantWritable, &t.evAccept, &t.evReadable,
		&t.evWritable, &t.evClosed, &t.wsOK, &t.tsOK, &t.sackOK, &t.finQueued, &t.peerFin, &t.oooFin,
		&t.ackNow, &t.rttTiming, &t.inRecovery, &t.rxtForce, &t.rxtUnaOn, &t.tlpOut, &t.lossAll} {
		c.bool(p)
	}
	c.u8(&t.end)
	for _, p := range []*uint32{&t.iss, &t.una, &t.nxt, &t.maxNxt, &t.sndWnd, &t.maxSndWnd, &t.wl1, &t.wl2,
		&t.finSeq, &t.irs, &t.rcvNxt, &t.rcvAdv, &t.rcvAdvSent, &t.oooLast.start, &t.oooLast.end, &t.oooFinSeq,
		&t.tsRecent, &t.tsOff, &t.lastAckSent, &t.rttSeq, &t.cwnd, &t.ssthresh, &t.recover, &t.highRxt,
		&t.cubWmax, &t.cubOrigin, &t.cubWest, &t.rxtUnaNxt, &t.tlpSeq} {
		c.u32(p)
	}
	c.u8(&t.sndScale)
	c.u8(&t.rcvScale)
	for _, p := range []*int{&t.mss, &t.peerMSS, &t.unacked, &t.retries, &t.persistShift, &t.keepProbes, &t.dupacks,
		&t.snd.max, &t.rcv.max} {
		c.int(p)
	}
	for _, p := range []*int64{&t.delackAt, &t.tsRecentAge, &t.srtt, &t.rttvar, &t.rto, &t.rttStart,
		&t.rtxAt, &t.persistAt, &t.keepAt, &t.endAt, &t.deadline, &t.cubEpoch, &t.cubK, &t.tlpAt} {
		c.i64(p)
	}
	if c.r != nil && (t.snd.max > 1<<30 || t.rcv.max > 1<<30+1<<16 || t.snd.max < 0 || t.rcv.max < 0) {
		c.r.Fail(fmt.Errorf("socket %d: buffer sizes %d/%d", t.id, t.snd.max, t.rcv.max))
		return
	}
	c.ringData(&t.snd, t.snd.Len(), t.snd.max)
	ext := t.rcv.Len()
	if len(t.ooo) > 0 {
		ext += int(t.ooo[len(t.ooo)-1].end - t.rcvNxt)
	}
	c.ringData(&t.rcv, ext, t.rcv.max)
	c.seqRanges(&t.ooo, s.cfg.OOORanges, "out-of-order ranges")
	c.seqRanges(&t.sacked, s.cfg.SACKRanges, "sack scoreboard")
}

package link

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for the Config timeouts.
const (
	DefaultHeartbeat        = 20 * time.Millisecond
	DefaultLinkTimeout      = 150 * time.Millisecond
	DefaultPeerTimeout      = 250 * time.Millisecond
	DefaultReconnect        = 100 * time.Millisecond
	DefaultHandshakeTimeout = 2 * time.Second
	DefaultMaxUnacked       = 256 << 20
	DefaultMaxQueued        = 64 << 20
	DefaultPort             = 7470
)

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("link session closed")

// ErrWindowFull is returned by Send when the unacknowledged bytes would
// exceed Config.MaxUnacked. Send never blocks: the caller decides whether a
// peer that far behind is still worth having.
var ErrWindowFull = errors.New("link send window full: peer not acknowledging")

// LinkConfig is one CoServer link.
type LinkConfig struct {
	Name      string // for logs and status; default "link<i>"
	Interface string // local interface to bind to (SO_BINDTODEVICE); empty: none
	Local     string // this node's IP on the link
	Peer      string // the peer's IP on the link
	Port      int    // TCP port node 2 listens on; default DefaultPort
}

// Config configures a Session.
type Config struct {
	Node  int    // this node: 1 dials, 2 listens
	Key   []byte // the pair key, at least 16 bytes
	Links []LinkConfig

	Heartbeat        time.Duration // ping interval on every link
	LinkTimeout      time.Duration // a link silent this long is closed and redialled
	PeerTimeout      time.Duration // every link silent this long: EventPeerSilent
	Reconnect        time.Duration // pause between dial attempts
	HandshakeTimeout time.Duration
	MaxUnacked       int // bytes sent and not yet acknowledged
	MaxQueued        int // bytes delivered and not yet read by the user

	Log *slog.Logger
	Net Net // default SystemNet
}

func (c *Config) fill() error {
	if c.Node != 1 && c.Node != 2 {
		return fmt.Errorf("link config: node %d, want 1 or 2", c.Node)
	}
	if len(c.Key) < 16 {
		return fmt.Errorf("link config: pair key of %d bytes, need at least 16", len(c.Key))
	}
	if len(c.Links) < 1 || len(c.Links) > 2 {
		return fmt.Errorf("link config: %d links, want 1 or 2", len(c.Links))
	}
	for i := range c.Links {
		l := &c.Links[i]
		if l.Name == "" {
			l.Name = fmt.Sprintf("link%d", i)
		}
		if l.Port == 0 {
			l.Port = DefaultPort
		}
		if c.Node == 1 && l.Peer == "" {
			return fmt.Errorf("link config: %s: peer address missing", l.Name)
		}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Heartbeat, DefaultHeartbeat)
	def(&c.LinkTimeout, DefaultLinkTimeout)
	def(&c.PeerTimeout, DefaultPeerTimeout)
	def(&c.Reconnect, DefaultReconnect)
	def(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	if c.MaxUnacked <= 0 {
		c.MaxUnacked = DefaultMaxUnacked
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = DefaultMaxQueued
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.Net == nil {
		c.Net = SystemNet{}
	}
	return nil
}

// EventKind says what happened.
type EventKind uint8

const (
	EventLinkUp     EventKind = iota + 1 // a link finished its handshake
	EventLinkDown                        // a link closed (error or silence)
	EventPeerUp                          // the peer is heard again (or for the first time)
	EventPeerSilent                      // no link has heard the peer for PeerTimeout
)

func (k EventKind) String() string {
	return [...]string{"?", "link-up", "link-down", "peer-up", "peer-silent"}[min(int(k), 4)]
}

// Event is a change of link or peer state.
type Event struct {
	Kind   EventKind
	Link   int    // link index for link events
	Reason string // why a link went down
	// Restarted (EventPeerUp): the peer is a new incarnation (its process
	// restarted), so both directions of the message stream were reset:
	// messages queued for the old incarnation are dropped.
	Restarted bool
}

// Delivery is one item from Session.Incoming: a message or an event, in
// the order they happened.
type Delivery struct {
	Event   *Event
	Type    uint8
	Payload []byte
}

// LinkStatus is a snapshot of one link.
type LinkStatus struct {
	Name      string
	Up        bool
	Active    bool // carries the data stream
	RTT       time.Duration
	LastHeard time.Duration // ago
	Connects  int
	AuthFails int
}

// Status is a snapshot of the session.
type Status struct {
	PeerAlive   bool
	Links       []LinkStatus
	Sent, Acked uint64 // message sequence numbers
	Received    uint64
	// BytesOut and BytesIn are the bytes written to and read from every
	// link since the session started.
	BytesOut, BytesIn uint64
}

type outMsg struct {
	seq     uint64
	typ     uint8
	payload []byte
}

// conn is one authenticated TCP connection of a link.
type conn struct {
	c       net.Conn
	tx, rx  *codec
	wake    chan struct{}
	done    chan struct{}
	closeMu sync.Once
	// wmu serialises sealing and writing (the AEAD nonce is a counter):
	// held by the writer from picking messages until they are written, or
	// by a Send that writes itself (sendDirect). Order: wmu, then
	// Session.mu; Send, which holds Session.mu, only tries it.
	wmu  sync.Mutex
	dbuf []byte // sendDirect's frame buffer (under wmu)
}

func (c *conn) close() {
	c.closeMu.Do(func() { close(c.done); c.c.Close() })
}

func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

type linkState struct {
	cfg       LinkConfig
	cur       *conn
	cursor    uint64 // next message to send when this link is active
	lastHeard time.Time
	rtt       time.Duration
	ackDue    bool
	blocked   bool // reader waits for the user to read: not silence
	pongDue   []uint64
	connects  int
	authFails int
}

// Session is the message stream to the peer CoServer over 1 or 2 links:
// reliable, ordered, authenticated, surviving the loss of either link.
type Session struct {
	cfg   Config
	inc   uint64
	start time.Time
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	out   chan Delivery
	lns   []net.Listener

	// bytesOut, bytesIn count the frames' bytes on every link (headers,
	// tags and acks included), for the manager's link-bytes metrics.
	bytesOut, bytesIn atomic.Uint64

	mu        sync.Mutex
	qcond     *sync.Cond // queue gained an item or space
	closed    bool
	links     []*linkState
	active    int
	peerInc   uint64
	peerAlive bool
	heardAny  time.Time
	sendQ     []outMsg
	sendBase  uint64 // seq of sendQ[0]
	nextSeq   uint64
	unacked   int
	recvNext  uint64
	queue     []Delivery
	queued    int
	pumping   bool // the pump holds a delivery it has not handed over yet
}

// Start opens the links and returns at once; connections come up in the
// background and are reported as events.
func Start(cfg Config) (*Session, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	var ib [8]byte
	for binary.BigEndian.Uint64(ib[:]) == 0 {
		rand.Read(ib[:])
	}
	s := &Session{
		cfg:      cfg,
		inc:      binary.BigEndian.Uint64(ib[:]),
		start:    time.Now(),
		out:      make(chan Delivery),
		active:   -1,
		sendBase: 1,
		nextSeq:  1,
		recvNext: 1,
	}
	s.qcond = sync.NewCond(&s.mu)
	s.ctx, s.stop = context.WithCancel(context.Background())
	for _, lc := range cfg.Links {
		s.links = append(s.links, &linkState{cfg: lc})
	}
	for i, lc := range cfg.Links {
		if cfg.Node == 2 {
			ln, err := cfg.Net.Listen(lc)
			if err != nil {
				s.Close()
				return nil, fmt.Errorf("link %s: listen on %s:%d: %w", lc.Name, lc.Local, lc.Port, err)
			}
			s.lns = append(s.lns, ln)
			s.goRun(func() { s.acceptLoop(i, ln) })
		} else {
			s.goRun(func() { s.dialLoop(i) })
		}
	}
	s.goRun(s.monitor)
	s.goRun(s.pump)
	return s, nil
}

func (s *Session) goRun(f func()) {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); f() }()
}

// Incarnation identifies this Session to the peer; it changes on restart.
func (s *Session) Incarnation() uint64 { return s.inc }

// Incoming delivers messages and events in order. It is closed by Close.
func (s *Session) Incoming() <-chan Delivery { return s.out }

// lazyAckMax: a message up to this size handed straight to a waiting user
// is acked lazily (with the next thing sent, at the latest the heartbeat).
const lazyAckMax = 16 << 10

// directMax bounds sendDirect: a message is written by Send itself only
// when it is the only unacknowledged one (an idle link) and at most this
// big, so the socket takes the write at once. Under load (anything else
// in flight) the writer goroutine coalesces messages into fewer writes and
// the caller never pays a syscall per message.
const directMax = 64 << 10

// Send queues a message for the peer. The session owns payload afterwards.
// Messages are delivered once and in order to the current peer incarnation;
// ones not acknowledged when the peer restarts are dropped. On an idle link
// Send writes the message itself (no hand-off to the writer goroutine: the
// lockstep output rule waits for a round trip of these).
func (s *Session) Send(typ uint8, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("link send: message of %d bytes exceeds %d", len(payload), MaxPayload)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.unacked+len(payload) > s.cfg.MaxUnacked {
		s.mu.Unlock()
		return ErrWindowFull
	}
	s.sendQ = append(s.sendQ, outMsg{seq: s.nextSeq, typ: typ, payload: payload})
	s.nextSeq++
	s.unacked += len(payload) + dataOverhead
	if s.active >= 0 && s.links[s.active].cur != nil {
		cn := s.links[s.active].cur
		if s.sendBase == s.nextSeq-1 && s.unacked <= directMax && cn.wmu.TryLock() {
			s.sendDirect(s.active, cn) // unlocks s.mu and cn.wmu
			return nil
		}
		cn.poke()
	}
	s.mu.Unlock()
	return nil
}

// sendDirect writes link i's unsent messages (and a due ack) from the
// caller's goroutine. Called with s.mu and cn.wmu held; releases both. With
// wmu held the writer is not between picking and writing, so the stream
// stays in order.
func (s *Session) sendDirect(i int, cn *conn) {
	l := s.links[i]
	if l.cursor < s.sendBase {
		l.cursor = s.sendBase
	}
	out := cn.dbuf[:0]
	if l.ackDue {
		l.ackDue = false
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], s.recvNext-1)
		out = cn.tx.seal(out, frameAck, b[:])
	}
	var buf [9 + 256]byte
	plain := buf[:0]
	for ; l.cursor < s.nextSeq; l.cursor++ {
		out, plain = cn.tx.sealData(out, plain, s.sendQ[l.cursor-s.sendBase])
	}
	s.mu.Unlock()
	cn.c.SetWriteDeadline(time.Now().Add(10 * s.cfg.LinkTimeout))
	n, err := cn.c.Write(out)
	s.bytesOut.Add(uint64(n))
	if cap(out) <= 256<<10 {
		cn.dbuf = out[:0]
	}
	cn.wmu.Unlock()
	if err != nil {
		s.linkDown(i, cn, fmt.Sprintf("write: %v", err))
	}
}

// Close stops the session and closes every connection. The peer sees it as
// silence on every link (or a closed connection).
func (s *Session) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, l := range s.links {
		if l.cur != nil {
			l.cur.close()
		}
	}
	s.qcond.Broadcast()
	s.mu.Unlock()
	s.stop()
	for _, ln := range s.lns {
		ln.Close()
	}
	s.wg.Wait()
	return nil
}

// Status reports the state of the session and its links.
func (s *Session) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	st := Status{PeerAlive: s.peerAlive, Sent: s.nextSeq - 1, Acked: s.sendBase - 1, Received: s.recvNext - 1,
		BytesOut: s.bytesOut.Load(), BytesIn: s.bytesIn.Load()}
	for i, l := range s.links {
		ls := LinkStatus{Name: l.cfg.Name, Up: l.cur != nil, Active: i == s.active, RTT: l.rtt,
			Connects: l.connects, AuthFails: l.authFails}
		if !l.lastHeard.IsZero() {
			ls.LastHeard = now.Sub(l.lastHeard)
		}
		st.Links = append(st.Links, ls)
	}
	return st
}

// push appends a delivery; messages wait for queue space, events never do.
// It reports whether the user took d at once. Called with s.mu held.
func (s *Session) push(d Delivery) (handed bool) {
	if len(s.queue) == 0 && !s.pumping && !s.closed {
		// Hand over directly when the user is waiting: one goroutine hop
		// less on the latency path. Order holds: nothing is queued or in
		// the pump's hands.
		select {
		case s.out <- d:
			return true
		default:
		}
	}
	s.queue = append(s.queue, d)
	s.queued += len(d.Payload)
	s.qcond.Broadcast()
	return false
}

func (s *Session) pushEvent(e Event) {
	s.cfg.Log.Debug("link event", "event", e.Kind.String(), "link", e.Link, "reason", e.Reason)
	s.push(Delivery{Event: &e})
}

// pump hands queued deliveries to the user without holding the lock.
func (s *Session) pump() {
	defer close(s.out)
	for {
		s.mu.Lock()
		for len(s.queue) == 0 && !s.closed {
			s.qcond.Wait()
		}
		if s.closed {
			s.mu.Unlock()
			return
		}
		d := s.queue[0]
		s.queue[0] = Delivery{}
		s.queue = s.queue[1:]
		s.pumping = true
		s.mu.Unlock()
		select {
		case s.out <- d:
		case <-s.ctx.Done():
			return
		}
		s.mu.Lock()
		s.pumping = false
		s.queued -= len(d.Payload)
		s.qcond.Broadcast()
		s.mu.Unlock()
	}
}

func (s *Session) dialLoop(i int) {
	l := s.links[i]
	for s.ctx.Err() == nil {
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
		c, err := s.cfg.Net.Dial(ctx, l.cfg)
		cancel()
		var cn *conn
		if err == nil {
			if cn, err = s.handshake(i, c); err != nil {
				c.Close()
			}
		}
		if err == nil {
			// Wait until this very connection goes down, then redial.
			select {
			case <-cn.done:
			case <-s.ctx.Done():
				return
			}
		} else if s.ctx.Err() == nil {
			s.cfg.Log.Debug("link dial failed", "link", l.cfg.Name, "err", err)
		}
		select {
		case <-time.After(s.cfg.Reconnect):
		case <-s.ctx.Done():
		}
	}
}

func (s *Session) acceptLoop(i int, ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.cfg.Log.Warn("link accept failed", "link", s.links[i].cfg.Name, "err", err)
			time.Sleep(s.cfg.Reconnect)
			continue
		}
		s.goRun(func() {
			if _, err := s.handshake(i, c); err != nil {
				c.Close()
			}
		})
	}
}

// handshake authenticates a fresh connection and, on success, installs it
// as link i's connection. Failures are logged with the remote address.
func (s *Session) handshake(i int, c net.Conn) (*conn, error) {
	lc := s.links[i].cfg
	fail := func(auth bool, err error) (*conn, error) {
		s.cfg.Log.Warn("link: peer refused", "link", lc.Name, "remote", c.RemoteAddr().String(), "err", err)
		if auth {
			s.mu.Lock()
			s.links[i].authFails++
			s.mu.Unlock()
		}
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
		tuneRTO(tc)
	}
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	mine := hello{Version: wireVersion, Node: uint8(s.cfg.Node), Link: uint8(i), Incarnation: s.inc}
	rand.Read(mine.Nonce[:])
	mb := mine.marshal()
	if _, err := c.Write(mb); err != nil {
		return fail(false, fmt.Errorf("write hello: %w", err))
	}
	pb := make([]byte, helloLen)
	if _, err := io.ReadFull(c, pb); err != nil {
		return fail(false, fmt.Errorf("read hello: %w", err))
	}
	peer, err := parseHello(pb)
	if err != nil {
		return fail(true, err)
	}
	if int(peer.Node) == s.cfg.Node {
		return fail(true, fmt.Errorf("peer claims to be node %d too", peer.Node))
	}
	if int(peer.Link) != i {
		return fail(true, fmt.Errorf("peer connected link %d to our link %d (cabling or config mismatch)", peer.Link, i))
	}
	h1, h2 := mb, pb
	if s.cfg.Node == 2 {
		h1, h2 = pb, mb
	}
	if _, err := c.Write(proofOf(s.cfg.Key, mine.Node, h1, h2)); err != nil {
		return fail(false, fmt.Errorf("write proof: %w", err))
	}
	got := make([]byte, proofLen)
	if _, err := io.ReadFull(c, got); err != nil {
		return fail(false, fmt.Errorf("read proof (peer refused our key?): %w", err))
	}
	if !hmac.Equal(got, proofOf(s.cfg.Key, peer.Node, h1, h2)) {
		return fail(true, errors.New("wrong proof: peer does not hold the pair key"))
	}
	txk, err := directionKey(s.cfg.Key, mine.Node, h1, h2)
	if err != nil {
		return fail(false, err)
	}
	rxk, err := directionKey(s.cfg.Key, peer.Node, h1, h2)
	if err != nil {
		return fail(false, err)
	}
	tx, err := newCodec(txk)
	if err != nil {
		return fail(false, err)
	}
	rx, err := newCodec(rxk)
	if err != nil {
		return fail(false, err)
	}
	c.SetDeadline(time.Time{})
	cn := &conn{c: c, tx: tx, rx: rx, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.install(i, cn, peer.Incarnation)
	return cn, nil
}

func (s *Session) install(i int, cn *conn, peerInc uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		cn.close()
		return
	}
	now := time.Now()
	restarted := false
	if s.peerInc != 0 && s.peerInc != peerInc {
		// A new peer process: both streams start over.
		restarted = true
		s.sendQ, s.unacked = nil, 0
		s.sendBase, s.nextSeq, s.recvNext = 1, 1, 1
		for j, l := range s.links {
			if l.cur != nil && j != i {
				s.linkDownLocked(j, l.cur, "peer restarted")
			}
		}
	}
	s.peerInc = peerInc
	l := s.links[i]
	if l.cur != nil {
		s.linkDownLocked(i, l.cur, "replaced by a new connection")
	}
	l.cur = cn
	l.connects++
	l.lastHeard = now
	l.ackDue = true
	s.heardAny = now
	if s.active < 0 || s.links[s.active].cur == nil {
		s.activate(i)
	}
	s.cfg.Log.Info("link up", "link", l.cfg.Name, "remote", cn.c.RemoteAddr().String())
	s.pushEvent(Event{Kind: EventLinkUp, Link: i})
	if !s.peerAlive || restarted {
		s.peerAlive = true
		s.pushEvent(Event{Kind: EventPeerUp, Link: i, Restarted: restarted})
	}
	s.goRun(func() { s.writer(i, cn) })
	s.goRun(func() { s.reader(i, cn) })
}

// activate makes link i carry the data stream, resending from the oldest
// unacknowledged message (go-back-N: the receiver drops duplicates).
func (s *Session) activate(i int) {
	s.active = i
	s.links[i].cursor = s.sendBase
	s.links[i].cur.poke()
}

// linkDownLocked closes cn if it is still link i's connection.
func (s *Session) linkDownLocked(i int, cn *conn, reason string) {
	l := s.links[i]
	if l.cur != cn {
		return
	}
	cn.close()
	l.cur = nil
	if !s.closed {
		s.cfg.Log.Info("link down", "link", l.cfg.Name, "reason", reason)
	}
	if s.active == i {
		s.active = -1
		for j, o := range s.links {
			if o.cur != nil {
				s.activate(j)
				break
			}
		}
	}
	if !s.closed {
		s.pushEvent(Event{Kind: EventLinkDown, Link: i, Reason: reason})
	}
}

func (s *Session) linkDown(i int, cn *conn, reason string) {
	s.mu.Lock()
	s.linkDownLocked(i, cn, reason)
	s.mu.Unlock()
}

func (s *Session) monitor() {
	t := time.NewTicker(s.cfg.Heartbeat / 2)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
		now := time.Now()
		s.mu.Lock()
		for i, l := range s.links {
			if l.cur != nil && !l.blocked && now.Sub(l.lastHeard) > s.cfg.LinkTimeout {
				s.linkDownLocked(i, l.cur, fmt.Sprintf("silent for %v", now.Sub(l.lastHeard).Round(time.Millisecond)))
			}
		}
		if s.peerAlive && now.Sub(s.heardAny) > s.cfg.PeerTimeout {
			s.peerAlive = false
			s.cfg.Log.Warn("link: peer silent", "for", now.Sub(s.heardAny).Round(time.Millisecond))
			s.pushEvent(Event{Kind: EventPeerSilent})
		}
		s.mu.Unlock()
	}
}

func (s *Session) clock() uint64 { return uint64(time.Since(s.start)) }

// writer sends pings, pongs, acks and (on the active link) data. It picks
// what to send under the lock and seals and writes outside it.
func (s *Session) writer(i int, cn *conn) {
	tick := time.NewTicker(s.cfg.Heartbeat)
	defer tick.Stop()
	bw := bufio.NewWriterSize(cn.c, 256<<10)
	var plain, out []byte
	var pongs []uint64
	var msgs []outMsg
	ping := true
	for {
		if !ping {
			select {
			case <-cn.wake:
			case <-tick.C:
				ping = true
			case <-cn.done:
				return
			}
		}
		pongs, msgs = pongs[:0], msgs[:0]
		ack := uint64(0)
		ackDue := false
		more := false
		cn.wmu.Lock()
		s.mu.Lock()
		l := s.links[i]
		if l.cur != cn {
			s.mu.Unlock()
			cn.wmu.Unlock()
			return
		}
		pongs = append(pongs, l.pongDue...)
		l.pongDue = l.pongDue[:0]
		if l.ackDue {
			ack, ackDue, l.ackDue = s.recvNext-1, true, false
		}
		if s.active == i {
			if l.cursor < s.sendBase {
				l.cursor = s.sendBase
			}
			size := 0
			for l.cursor < s.nextSeq {
				if size >= 256<<10 {
					more = true
					break
				}
				m := s.sendQ[l.cursor-s.sendBase]
				msgs = append(msgs, m)
				size += len(m.payload)
				l.cursor++
			}
		}
		s.mu.Unlock()

		out = out[:0]
		if ping {
			out = cn.tx.seal(out, framePing, binary.BigEndian.AppendUint64(plain[:0], s.clock()))
			ping = false
		}
		for _, v := range pongs {
			out = cn.tx.seal(out, framePong, binary.BigEndian.AppendUint64(plain[:0], v))
		}
		if ackDue {
			out = cn.tx.seal(out, frameAck, binary.BigEndian.AppendUint64(plain[:0], ack))
		}
		for _, m := range msgs {
			out, plain = cn.tx.sealData(out, plain, m)
		}
		clear(msgs)
		if len(out) == 0 {
			cn.wmu.Unlock()
			continue
		}
		// Only a backstop: silence closes a dead connection (and unblocks
		// this write) after LinkTimeout; a write blocked by the peer's flow
		// control is no silence.
		cn.c.SetWriteDeadline(time.Now().Add(10 * s.cfg.LinkTimeout))
		n, err := bw.Write(out)
		if err == nil {
			err = bw.Flush()
		}
		s.bytesOut.Add(uint64(n))
		cn.wmu.Unlock()
		if err != nil {
			s.linkDown(i, cn, fmt.Sprintf("write: %v", err))
			return
		}
		if more {
			cn.poke()
		}
		if cap(out) > 1<<20 {
			out = nil
		}
		if cap(plain) > 1<<20 {
			plain = nil
		}
	}
}

func (s *Session) reader(i int, cn *conn) {
	br := bufio.NewReaderSize(cn.c, 256<<10)
	var hdr [headerLen]byte
	var buf []byte
	sinceAck := 0
	for {
		t, plain, err := cn.rx.readFrame(br, &hdr, buf)
		if err != nil {
			reason := fmt.Sprintf("read: %v", err)
			if errors.Is(err, io.EOF) {
				reason = "peer closed the connection"
			}
			s.linkDown(i, cn, reason)
			return
		}
		s.bytesIn.Add(uint64(headerLen + binary.BigEndian.Uint32(hdr[:])))
		if cap(plain) > cap(buf) {
			buf = plain[:0]
		}
		f, err := parseBody(t, plain)
		if err != nil {
			s.cfg.Log.Warn("link: bad frame from authenticated peer", "link", s.links[i].cfg.Name, "err", err)
			s.linkDown(i, cn, err.Error())
			return
		}
		now := time.Now()
		s.mu.Lock()
		l := s.links[i]
		if l.cur != cn {
			s.mu.Unlock()
			return
		}
		l.lastHeard = now
		s.heardAny = now
		if !s.peerAlive {
			s.peerAlive = true
			s.pushEvent(Event{Kind: EventPeerUp, Link: i})
		}
		switch f.typ {
		case frameData:
			for s.queued > s.cfg.MaxQueued && !s.closed && l.cur == cn {
				l.blocked = true
				s.qcond.Wait()
				l.blocked = false
				l.lastHeard = time.Now()
			}
			handed := false
			if f.seq == s.recvNext {
				s.recvNext++
				// The body buffer is reused: the user gets a copy.
				handed = s.push(Delivery{Type: f.msgType, Payload: append([]byte(nil), f.payload...)})
			}
			sinceAck++
			if br.Buffered() == 0 || sinceAck >= 64 {
				l.ackDue = true
				// A small message the user took at once (an idle link):
				// its ack rides on the user's reply, or goes with the next
				// heartbeat; waking the writer now would put a write of
				// its own ahead of that reply. Bulk is acked at once.
				if !handed || len(f.payload) > lazyAckMax || sinceAck >= 64 {
					cn.poke()
					sinceAck = 0
				}
			}
		case frameAck:
			if f.seq >= s.sendBase && f.seq < s.nextSeq {
				n := int(f.seq - s.sendBase + 1)
				for _, m := range s.sendQ[:n] {
					s.unacked -= len(m.payload) + dataOverhead
				}
				clear(s.sendQ[:n])
				s.sendQ = s.sendQ[n:]
				s.sendBase = f.seq + 1
			}
		case framePing:
			if len(l.pongDue) < 16 {
				l.pongDue = append(l.pongDue, f.seq)
			}
			cn.poke()
		case framePong:
			if c := s.clock(); c >= f.seq {
				l.rtt = time.Duration(c - f.seq)
			}
		}
		if f.typ != frameData && sinceAck > 0 && br.Buffered() == 0 {
			// Data read just before this frame, with this frame already
			// buffered behind it, was not marked for an ack: mark it now,
			// else its ack waits for the next data frame (the sender's
			// window stalls when traffic stops). It goes with the next
			// heartbeat.
			l.ackDue = true
			sinceAck = 0
		}
		s.mu.Unlock()
	}
}

package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/services/svcutil"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Counters count the service's work and every refusal.
type Counters struct {
	Accepted     uint64
	RefusedConns uint64 // reset on accept: MaxConns reached
	Options      uint64
	Unsupported  uint64 // options answered NBD_REP_ERR_UNSUP
	Requests     uint64
	Reads        uint64
	Writes       uint64
	Flushes      uint64
	Trims        uint64
	Zeroes       uint64
	ErrReplies   uint64 // replies with a non-zero error
	ReadBytes    uint64
	WriteBytes   uint64
	ProtoErrors  uint64 // protocol violations: disconnected
	DevErrors    uint64 // device reads/writes/flushes that failed
	Timeouts     uint64
	Resets       uint64
}

func (c *Counters) fields() []*uint64 {
	return []*uint64{&c.Accepted, &c.RefusedConns, &c.Options, &c.Unsupported, &c.Requests, &c.Reads,
		&c.Writes, &c.Flushes, &c.Trims, &c.Zeroes, &c.ErrReplies, &c.ReadBytes, &c.WriteBytes,
		&c.ProtoErrors, &c.DevErrors, &c.Timeouts, &c.Resets}
}

// Connection phases.
const (
	phaseGreeted  = iota // server greeting queued, waiting for client flags
	phaseOptions         // option haggling
	phaseTransmit        // transmission
)

// reply is one reply queued for sending: head (bytes), then left bytes of the
// export read from off.
type reply struct {
	head []byte
	off  int64
	left int64
}

// conn is one client connection; everything in it is part of the snapshot.
type conn struct {
	sock       sockapi.SockID
	phase      uint8
	noZeroes   bool
	export     int // index into cfg.Exports once in transmission
	in         []byte
	replies    []reply
	closeAfter bool // close once every reply is written
	peerEOF    bool
	lastActive int64
	// WRITE payload still arriving.
	wActive bool
	wCookie uint64
	wFlags  uint16
	wOff    int64
	wLeft   int64
	wErr    uint32 // first error met while applying the payload
	// WRITE_ZEROES in progress: at most zeroPerStep bytes are zeroed per
	// Step, so a 4 GiB request cannot stall the machine; later requests
	// wait for it.
	zActive bool
	zCookie uint64
	zFlags  uint16
	zOff    int64
	zLeft   int64
}

func (c *conn) busy() bool { return len(c.replies) > 0 || c.wActive || c.zActive }

// zeroPerStep bounds the zeroes written for one connection in one Step.
const zeroPerStep = 16 << 20

// Service is the NBD server. Create it with New.
type Service struct {
	cfg   Config
	devs  []blockdev.Device
	lis   svcutil.Listener
	conns map[sockapi.SockID]*conn
	ctr   Counters

	scratch []byte // device and socket buffer; not state
}

const (
	scratchSize = 256 << 10
	// writeChunk is how much WRITE payload is gathered before it is
	// applied (whole requests up to this size go to the device at once).
	writeChunk = 1 << 20
)

// New makes the service; devs[i] backs cfg.Exports[i].
func New(cfg Config, devs []blockdev.Device) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(devs) != len(cfg.Exports) {
		return nil, fmt.Errorf("nbd: %d devices for %d exports", len(devs), len(cfg.Exports))
	}
	for i, d := range devs {
		if d == nil {
			return nil, fmt.Errorf("nbd: export %q has no device", cfg.Exports[i].Name)
		}
	}
	return &Service{cfg: cfg.WithDefaults(), devs: devs, conns: map[sockapi.SockID]*conn{}}, nil
}

// Name is the snapshot tag.
func (s *Service) Name() string { return "nbd" }

// Counters reports the service's counters.
func (s *Service) Counters() Counters { return s.ctr }

// Start opens the listener.
func (s *Service) Start(sk sockapi.Sockets) error {
	return s.lis.Open(sk, "nbd", s.cfg.Port, s.cfg.Backlog)
}

// Owns reports whether l is the service's listener.
func (s *Service) Owns(l sockapi.SockID) bool { return s.lis.Is(l) }

// Handle reacts to one socket event.
func (s *Service) Handle(sk sockapi.Sockets, ev sockapi.Event, now int64) {
	svcutil.Dispatch(ev, func() { s.accept(sk, now) }, func(id sockapi.SockID) {
		if c := s.conns[id]; c != nil {
			s.pump(sk, c, now)
		}
	}, func(id sockapi.SockID) {
		if _, ok := s.conns[id]; ok {
			s.ctr.Resets++
			delete(s.conns, id)
		}
	})
}

func (s *Service) accept(sk sockapi.Sockets, now int64) {
	svcutil.AcceptAll(sk, s.lis.ID, func(id sockapi.SockID) {
		if len(s.conns) >= s.cfg.MaxConns {
			s.ctr.RefusedConns++
			sk.Abort(id)
			return
		}
		s.ctr.Accepted++
		c := &conn{sock: id, lastActive: now}
		g := make([]byte, 18)
		binary.BigEndian.PutUint64(g, magicNBD)
		binary.BigEndian.PutUint64(g[8:], magicOpt)
		binary.BigEndian.PutUint16(g[16:], flagFixedNewstyle|flagNoZeroes)
		c.replies = append(c.replies, reply{head: g})
		s.conns[id] = c
		s.pump(sk, c, now)
	})
}

func (c *conn) deadline(cfg *Config) int64 {
	switch {
	case c.phase != phaseTransmit:
		return c.lastActive + int64(cfg.HandshakeTimeout)
	case c.busy():
		return c.lastActive + int64(cfg.StallTimeout)
	}
	return 0
}

// NextDeadline is the earliest timeout, 0 for none; 1 (at once) while a
// WRITE_ZEROES is being carried out in slices.
func (s *Service) NextDeadline() int64 {
	var d int64
	//detcheck:orderless: a minimum
	for _, c := range s.conns {
		if c.zActive {
			return 1
		}
		if t := c.deadline(&s.cfg); t != 0 && (d == 0 || t < d) {
			d = t
		}
	}
	return d
}

// Timer carries on WRITE_ZEROES slices and resets connections whose
// handshake or replies stalled.
func (s *Service) Timer(sk sockapi.Sockets, now int64) {
	zeroing := svcutil.DueIDs(s.conns, func(c *conn) bool { return c.zActive })
	for _, id := range zeroing {
		if c := s.conns[id]; c != nil {
			s.zeroSlice(c)
			c.lastActive = now
			s.pump(sk, c, now)
		}
	}
	due := svcutil.DueIDs(s.conns, func(c *conn) bool { t := c.deadline(&s.cfg); return t != 0 && t <= now })
	for _, id := range due {
		s.ctr.Timeouts++
		delete(s.conns, id)
		sk.Abort(id)
	}
}

func (s *Service) buf() []byte {
	if s.scratch == nil {
		s.scratch = make([]byte, scratchSize)
	}
	return s.scratch
}

// drop forgets a connection after a protocol violation and resets it.
func (s *Service) drop(sk sockapi.Sockets, c *conn) {
	s.ctr.ProtoErrors++
	delete(s.conns, c.sock)
	sk.Abort(c.sock)
}

// inLimit is how much input may be buffered: an option, or a request header
// plus a write chunk.
func (s *Service) inLimit(c *conn) int {
	if c.phase == phaseTransmit {
		return requestLen + writeChunk
	}
	return 16 + maxOptionLen
}

// pump moves a connection as far as it can go.
func (s *Service) pump(sk sockapi.Sockets, c *conn, now int64) {
	for {
		progress := false
		if !c.peerEOF && len(c.in) < s.inLimit(c) && len(c.replies) < s.cfg.MaxInFlight {
			p := s.buf()
			if room := s.inLimit(c) - len(c.in); room < len(p) {
				p = p[:room]
			}
			n, err := sk.Read(c.sock, p)
			if n > 0 {
				c.in = append(c.in, p[:n]...)
				c.lastActive = now
				progress = true
			}
			switch {
			case err == nil, errors.Is(err, sockapi.ErrWouldBlock):
			case errors.Is(err, sockapi.ErrEOF):
				c.peerEOF = true
				progress = true
			default:
				s.ctr.Resets++
				delete(s.conns, c.sock)
				return
			}
		}
		if !c.closeAfter {
			consumed, ok := s.parse(sk, c, now)
			if !ok {
				return
			}
			if consumed {
				progress = true
			}
		}
		if len(c.replies) > 0 {
			wrote, ok := s.write(sk, c)
			if !ok {
				return
			}
			if wrote {
				c.lastActive = now
				progress = true
			}
		}
		if len(c.replies) == 0 && (c.closeAfter || (c.peerEOF && !progress)) {
			// Done, or the client shut its side and nothing buffered
			// can complete a request any more.
			s.finish(sk, c)
			return
		}
		if !progress {
			return
		}
	}
}

// finish closes a connection gracefully, flushing its export first: a client
// that disconnects without FLUSH still finds its writes durable.
func (s *Service) finish(sk sockapi.Sockets, c *conn) {
	if c.phase == phaseTransmit && !s.cfg.Exports[c.export].ReadOnly {
		if err := s.devs[c.export].Flush(); err != nil {
			s.ctr.DevErrors++
		}
	}
	delete(s.conns, c.sock)
	_ = sk.Close(c.sock)
}

func (c *conn) consume(n int) { c.in = append(c.in[:0], c.in[n:]...) }

// parse handles buffered input. ok is false when the connection is gone.
func (s *Service) parse(sk sockapi.Sockets, c *conn, now int64) (consumed, ok bool) {
	for !c.closeAfter && len(c.replies) < s.cfg.MaxInFlight {
		switch c.phase {
		case phaseGreeted:
			if len(c.in) < 4 {
				return consumed, true
			}
			f := binary.BigEndian.Uint32(c.in)
			c.consume(4)
			consumed = true
			if f&^uint32(flagFixedNewstyle|flagNoZeroes) != 0 || f&flagFixedNewstyle == 0 {
				// Unknown flags, or a client that cannot take
				// error replies to options: the spec says close.
				s.drop(sk, c)
				return consumed, false
			}
			c.noZeroes = f&flagNoZeroes != 0
			c.phase = phaseOptions
		case phaseOptions:
			o, n, err := parseOption(c.in)
			if err != nil {
				s.drop(sk, c)
				return consumed, false
			}
			if n == 0 {
				return consumed, true
			}
			s.ctr.Options++
			s.option(c, o)
			c.consume(n)
			consumed = true
		case phaseTransmit:
			if c.zActive {
				return consumed, true // requests wait for the zeroing
			}
			if c.wActive {
				if !s.writePayload(c) {
					return consumed, true
				}
				consumed = true
				continue
			}
			r, n, err := parseRequest(c.in)
			if err != nil {
				s.drop(sk, c)
				return consumed, false
			}
			if n == 0 {
				return consumed, true
			}
			c.consume(n)
			consumed = true
			s.ctr.Requests++
			s.request(c, r)
		}
	}
	return consumed, true
}

func (s *Service) queue(c *conn, r reply) { c.replies = append(c.replies, r) }

func (s *Service) errReply(c *conn, cookie uint64, errno uint32) {
	s.ctr.ErrReplies++
	s.queue(c, reply{head: simpleReply(cookie, errno)})
}

// lookup finds an export by name ("" is the first).
func (s *Service) lookup(name string) int {
	if name == "" {
		return 0
	}
	for i, e := range s.cfg.Exports {
		if e.Name == name {
			return i
		}
	}
	return -1
}

// tflags are the transmission flags of an export, advertised honestly:
// every write is on the device when it is answered and FLUSH syncs the whole
// device, so a FLUSH on one connection covers writes answered on any other
// (CAN_MULTI_CONN).
func (s *Service) tflags(i int) uint16 {
	f := uint16(tfHasFlags | tfSendFlush | tfSendFUA | tfCanMultiConn)
	if s.cfg.Exports[i].ReadOnly {
		f |= tfReadOnly
	} else {
		f |= tfSendTrim | tfWriteZeroes
	}
	return f
}

func (s *Service) option(c *conn, o option) {
	switch o.code {
	case optExportName:
		i := -1
		if len(o.data) <= maxNameLen {
			i = s.lookup(string(o.data))
		}
		if i < 0 {
			// EXPORT_NAME has no error reply: the spec says close.
			c.closeAfter = true
			return
		}
		b := make([]byte, 10, 134)
		binary.BigEndian.PutUint64(b, uint64(s.devs[i].Size()))
		binary.BigEndian.PutUint16(b[8:], s.tflags(i))
		if !c.noZeroes {
			b = append(b, make([]byte, 124)...)
		}
		s.queue(c, reply{head: b})
		c.export, c.phase = i, phaseTransmit
	case optAbort:
		s.queue(c, reply{head: optReply(o.code, repAck, nil)})
		c.closeAfter = true
	case optList:
		if len(o.data) != 0 {
			s.ctr.ErrReplies++
			s.queue(c, reply{head: optReply(o.code, repErrInvalid, []byte("LIST takes no data"))})
			return
		}
		for _, e := range s.cfg.Exports {
			d := binary.BigEndian.AppendUint32(nil, uint32(len(e.Name)))
			d = append(d, e.Name...)
			d = append(d, e.Description...)
			s.queue(c, reply{head: optReply(o.code, repServer, d)})
		}
		s.queue(c, reply{head: optReply(o.code, repAck, nil)})
	case optInfo, optGo:
		req, err := parseInfo(o.data)
		if err != nil {
			s.ctr.ErrReplies++
			s.queue(c, reply{head: optReply(o.code, repErrInvalid, []byte(err.Error()))})
			return
		}
		i := s.lookup(req.name)
		if i < 0 {
			s.ctr.ErrReplies++
			s.queue(c, reply{head: optReply(o.code, repErrUnknown, []byte("no export named "+strconv.Quote(req.name)))})
			return
		}
		d := binary.BigEndian.AppendUint16(nil, infoExport)
		d = binary.BigEndian.AppendUint64(d, uint64(s.devs[i].Size()))
		d = binary.BigEndian.AppendUint16(d, s.tflags(i))
		s.queue(c, reply{head: optReply(o.code, repInfo, d)})
		for _, t := range req.infos {
			if t == infoBlockSize {
				// Any alignment works (unaligned writes are
				// read-modify-write); the sector is preferred.
				d := binary.BigEndian.AppendUint16(nil, infoBlockSize)
				d = binary.BigEndian.AppendUint32(d, 1)
				d = binary.BigEndian.AppendUint32(d, uint32(max(4096, s.devs[i].SectorSize())))
				d = binary.BigEndian.AppendUint32(d, MaxPayload)
				s.queue(c, reply{head: optReply(o.code, repInfo, d)})
				break
			}
		}
		s.queue(c, reply{head: optReply(o.code, repAck, nil)})
		if o.code == optGo {
			c.export, c.phase = i, phaseTransmit
		}
	default:
		s.ctr.Unsupported++
		s.queue(c, reply{head: optReply(o.code, repErrUnsup, nil)})
	}
}

// request carries out one command (a WRITE's payload follows).
func (s *Service) request(c *conn, r request) {
	exp := &s.cfg.Exports[c.export]
	dev := s.devs[c.export]
	size := uint64(dev.Size())
	inRange := r.off <= size && uint64(r.length) <= size-r.off
	switch r.typ {
	case cmdRead:
		s.ctr.Reads++
		switch {
		case r.length > MaxPayload:
			s.errReply(c, r.cookie, errInval)
		case !inRange:
			s.errReply(c, r.cookie, errInval)
		default:
			if r.flags&cmdFlagFUA != 0 {
				// FUA on a read: flush so the data read is durable.
				if err := dev.Flush(); err != nil {
					s.ctr.DevErrors++
					s.errReply(c, r.cookie, errIO)
					return
				}
			}
			s.queue(c, reply{head: simpleReply(r.cookie, 0), off: int64(r.off), left: int64(r.length)})
		}
	case cmdWrite:
		s.ctr.Writes++
		c.wActive, c.wCookie, c.wFlags, c.wOff, c.wLeft, c.wErr = true, r.cookie, r.flags, int64(r.off), int64(r.length), 0
		switch {
		case exp.ReadOnly:
			c.wErr = errPerm
		case !inRange:
			c.wErr = errNoSpc
		}
		if c.wErr != 0 {
			c.wOff = 0 // the payload is discarded; keep the state in range
		}
	case cmdFlush:
		s.ctr.Flushes++
		if err := dev.Flush(); err != nil {
			s.ctr.DevErrors++
			s.errReply(c, r.cookie, errIO)
			return
		}
		s.queue(c, reply{head: simpleReply(r.cookie, 0)})
	case cmdTrim, cmdWriteZeroes:
		if r.typ == cmdTrim {
			s.ctr.Trims++
		} else {
			s.ctr.Zeroes++
		}
		switch {
		case exp.ReadOnly:
			s.errReply(c, r.cookie, errPerm)
			return
		case !inRange:
			s.errReply(c, r.cookie, errNoSpc)
			return
		}
		// TRIM is advisory and left as a no-op (the spec allows it);
		// WRITE_ZEROES writes zeroes whatever NO_HOLE says, in slices.
		if r.typ == cmdWriteZeroes && r.length > 0 {
			c.zActive, c.zCookie, c.zFlags, c.zOff, c.zLeft = true, r.cookie, r.flags, int64(r.off), int64(r.length)
			s.zeroSlice(c)
			return
		}
		s.finishWrite(c, dev, r.cookie, r.flags)
	case cmdDisc:
		c.closeAfter = true
	default:
		s.errReply(c, r.cookie, errInval)
	}
}

// zeroSlice zeroes the next slice of a WRITE_ZEROES and answers it when
// the last slice is done.
func (s *Service) zeroSlice(c *conn) {
	dev := s.devs[c.export]
	k := min(c.zLeft, zeroPerStep)
	if err := s.zero(dev, c.zOff, k); err != nil {
		s.ctr.DevErrors++
		c.zActive = false
		s.errReply(c, c.zCookie, errIO)
		return
	}
	c.zOff += k
	c.zLeft -= k
	if c.zLeft == 0 {
		c.zActive = false
		s.finishWrite(c, dev, c.zCookie, c.zFlags)
	}
}

// finishWrite answers a completed change, flushing first under FUA.
func (s *Service) finishWrite(c *conn, dev blockdev.Device, cookie uint64, flags uint16) {
	if flags&cmdFlagFUA != 0 {
		if err := dev.Flush(); err != nil {
			s.ctr.DevErrors++
			s.errReply(c, cookie, errIO)
			return
		}
	}
	s.queue(c, reply{head: simpleReply(cookie, 0)})
}

// writePayload applies buffered WRITE payload. It returns false when it
// needs more input.
func (s *Service) writePayload(c *conn) bool {
	k := int64(len(c.in))
	if k > c.wLeft {
		k = c.wLeft
	}
	if k < c.wLeft && k < writeChunk {
		if c.peerEOF {
			// The payload will never be complete.
			c.wActive = false
			c.in = nil
			c.closeAfter = true
			return true
		}
		return false
	}
	if c.wErr == 0 {
		if err := s.devWrite(s.devs[c.export], c.in[:k], c.wOff); err != nil {
			s.ctr.DevErrors++
			c.wErr = errIO
		} else {
			s.ctr.WriteBytes += uint64(k)
		}
	}
	c.consume(int(k))
	c.wOff += k
	c.wLeft -= k
	if c.wLeft == 0 {
		c.wActive = false
		if c.wErr != 0 {
			s.errReply(c, c.wCookie, c.wErr)
		} else {
			s.finishWrite(c, s.devs[c.export], c.wCookie, c.wFlags)
		}
	}
	return true
}

// write sends queued replies in order, streaming READ data from the device.
func (s *Service) write(sk sockapi.Sockets, c *conn) (wrote, ok bool) {
	for len(c.replies) > 0 {
		r := &c.replies[0]
		for len(r.head) > 0 {
			n, err := sk.Write(c.sock, r.head)
			if err != nil {
				s.ctr.Resets++
				delete(s.conns, c.sock)
				return wrote, false
			}
			if n == 0 {
				return wrote, true
			}
			r.head = r.head[n:]
			wrote = true
		}
		for r.left > 0 {
			p := s.buf()
			p = svcutil.SendChunk(sk, c.sock, p)
			if int64(len(p)) > r.left {
				p = p[:r.left]
			}
			if err := s.devRead(s.devs[c.export], p, r.off); err != nil {
				// The header promised data: a reset is the
				// only honest end.
				s.ctr.DevErrors++
				delete(s.conns, c.sock)
				sk.Abort(c.sock)
				return wrote, false
			}
			n, err := sk.Write(c.sock, p)
			if err != nil {
				s.ctr.Resets++
				delete(s.conns, c.sock)
				return wrote, false
			}
			r.off += int64(n)
			r.left -= int64(n)
			s.ctr.ReadBytes += uint64(n)
			if n > 0 {
				wrote = true
			}
			if n < len(p) {
				return wrote, true
			}
		}
		c.replies[0] = reply{}
		c.replies = c.replies[1:]
	}
	c.replies = nil
	return wrote, true
}

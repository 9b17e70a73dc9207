// Package netstack is the deterministic TCP/IP stack of the virtual server:
// Ethernet II, ARP, IPv4, ICMP echo and TCP (RFC 9293 with RFC 6298, 7323,
// 5681/6582, 2018/6675, 6528, 5961 and CUBIC), in the shape of smoltcp. It is
// a pure state machine: frames and virtual time go in through Input and Poll,
// frames and socket events come out through DrainFrames and DrainEvents, and
// the whole state snapshots with ftvs/snap. No goroutines, clocks or
// randomness from the outside; every queue is bounded and every drop counted.
package netstack

import (
	"encoding/binary"
	"fmt"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Config is the stack's fixed configuration; zero limits take defaults.
type Config struct {
	MAC       [6]byte
	IP        [4]byte
	PrefixLen int
	Gateway   [4]byte // zero: no gateway
	MTU       int     // default 1500
	ISNKey    [16]byte
	// TSOMax > 0 lets TCP emit IPv4 super-segments with up to TSOMax payload
	// bytes, tagged gso = payload bytes per cut segment.
	TSOMax int
	// ChecksumOffload: TCP frames carry only the pseudo-header sum in their
	// checksum field (CHECKSUM_PARTIAL, start 34, offset 16); the shell or the
	// NIC completes it. Saves the per-byte work in the core.
	ChecksumOffload bool

	// Option switches (for interop and tests): refuse to negotiate these.
	NoSACK, NoTimestamps, NoWindowScale bool

	MaxSockets     int   // sockets of every kind incl. TIME-WAIT; default 4096
	SendBuf        int   // per connection; default 4 MiB
	RecvBuf        int   // per connection; default 1 MiB
	MaxBacklog     int   // cap on Listen's backlog; default 1024
	ARPCacheSize   int   // default 512
	ARPPending     int   // frames waiting for resolution, all neighbours; default 64
	ARPLifetime    int64 // ns an entry is trusted without refresh; default 60 s
	OOORanges      int   // out-of-order ranges held per connection; default 32
	SACKRanges     int   // SACK scoreboard ranges per connection; default 64
	TXQueue        int   // frames queued between drains; default 65536
	DelayedACK     int64 // default 40 ms
	MinRTO         int64 // default 200 ms (Linux; RFC 6298 says 1 s)
	MaxRTO         int64 // default 120 s
	InitialRTO     int64 // default 1 s
	MaxRetries     int   // data retransmissions before giving up; default 15
	SynRetries     int   // SYN/SYN-ACK retransmissions; default 5
	TimeWait       int64 // 2*MSL; default 60 s
	FinWait2       int64 // orphaned FIN-WAIT-2 lifetime; default 60 s
	KeepAliveIdle  int64 // default 2 h; negative disables keep-alive
	KeepAliveIntvl int64 // default 75 s
	KeepAliveCount int   // default 9

	// SendAhead bounds the bytes a connection takes from its writer beyond
	// what it has sent: at most max(SendAhead, cwnd) unsent bytes wait in
	// the send buffer. More would not go out sooner; it would only make
	// every snapshot (the lockstep reintegration pause) bigger. Default
	// 256 KiB.
	SendAhead int
}

func (c *Config) setDefaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	def64 := func(p *int64, v int64) {
		if *p == 0 {
			*p = v
		}
	}
	def(&c.MTU, 1500)
	def(&c.MaxSockets, 4096)
	def(&c.SendBuf, 4<<20)
	def(&c.SendAhead, 256<<10)
	def(&c.RecvBuf, 1<<20)
	def(&c.MaxBacklog, 1024)
	def(&c.ARPCacheSize, 512)
	def(&c.ARPPending, 64)
	def64(&c.ARPLifetime, 60e9)
	def(&c.OOORanges, 32)
	def(&c.SACKRanges, 64)
	def(&c.TXQueue, 65536)
	def64(&c.DelayedACK, 40e6)
	def64(&c.MinRTO, 200e6)
	def64(&c.MaxRTO, 120e9)
	def64(&c.InitialRTO, 1e9)
	def(&c.MaxRetries, 15)
	def(&c.SynRetries, 5)
	def64(&c.TimeWait, 60e9)
	def64(&c.FinWait2, 60e9)
	def64(&c.KeepAliveIdle, 2*3600e9)
	def64(&c.KeepAliveIntvl, 75e9)
	def(&c.KeepAliveCount, 9)
}

func (c *Config) validate() error {
	if c.PrefixLen < 0 || c.PrefixLen > 32 {
		return fmt.Errorf("netstack config: PrefixLen %d out of 0..32", c.PrefixLen)
	}
	if c.MTU < 576 || c.MTU > 9216 {
		return fmt.Errorf("netstack config: MTU %d out of 576..9216", c.MTU)
	}
	if c.MAC[0]&1 != 0 {
		return fmt.Errorf("netstack config: MAC %x is multicast", c.MAC)
	}
	if c.IP == ([4]byte{}) {
		return fmt.Errorf("netstack config: IP is 0.0.0.0")
	}
	if c.TSOMax < 0 || c.TSOMax > 65535-40-60 {
		return fmt.Errorf("netstack config: TSOMax %d out of 0..%d", c.TSOMax, 65535-100)
	}
	if c.SendBuf < 4096 || c.RecvBuf < 4096 || c.SendBuf > 1<<30 || c.RecvBuf > 1<<30 {
		return fmt.Errorf("netstack config: SendBuf %d / RecvBuf %d out of 4 KiB..1 GiB", c.SendBuf, c.RecvBuf)
	}
	return nil
}

// txFrame is one queued outgoing frame.
type txFrame struct {
	b   []byte
	gso uint16
}

// Stack is one deterministic TCP/IP stack instance.
type Stack struct {
	cfg   Config
	mask  uint32
	bcast [4]byte // subnet broadcast

	now    int64
	ipID   uint16
	rng    uint64
	nextID sockapi.SockID

	socks     map[sockapi.SockID]*tcb // lookup only; never iterated
	order     []*tcb                  // every socket, sorted by id
	conns     map[tuple]*tcb          // lookup only
	listeners map[uint16]*tcb         // lookup only
	pending   []*tcb                  // sockets with output to consider at Poll
	timewaits int

	arp    arpTable
	tx     []txFrame
	events []sockapi.Event

	dl []*tcb // timer heap (timerheap.go)

	ctr Counters

	testISNOn bool   // tests pin the ISN (wrapped sequence numbers)
	testISN   uint32 // not part of the state: never set outside tests

	pool [][]byte // recycled frame buffers: memory only, never state

	opt wire.TCPOptions // scratch for building segments
	sb  [wire.MaxSACKBlocks]wire.SACKBlock
}

// tuple identifies a connection from our side.
type tuple struct {
	rip   [4]byte
	rport uint16
	lport uint16
}

// New makes a stack with cfg (zero limits take defaults).
func New(cfg Config) (*Stack, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Stack{cfg: cfg}
	if cfg.PrefixLen > 0 {
		s.mask = ^uint32(0) << (32 - cfg.PrefixLen)
	}
	ip := binary.BigEndian.Uint32(cfg.IP[:])
	binary.BigEndian.PutUint32(s.bcast[:], ip|^s.mask)
	s.rng = sipHash24(cfg.ISNKey, []byte("ftvs-netstack-rng"))
	s.nextID = 1
	s.socks = make(map[sockapi.SockID]*tcb)
	s.conns = make(map[tuple]*tcb)
	s.listeners = make(map[uint16]*tcb)
	s.arp.init()
	return s, nil
}

// Config returns the effective configuration (defaults filled in).
func (s *Stack) Config() Config { return s.cfg }

// Input processes one received Ethernet frame at virtual time now. Frames
// may exceed the MTU (GRO from a TAP, up to 64 KiB of IPv4) and must carry
// complete checksums: the shell completes a TAP's NEEDS_CSUM frames first.
func (s *Stack) Input(frame []byte, now int64) {
	s.advance(now)
	s.ctr.RxFrames++
	s.ctr.RxBytes += uint64(len(frame))
	eth, err := wire.ParseEthernet(frame)
	if err != nil {
		s.ctr.RxBadEthernet++
		return
	}
	if eth.Dst != s.cfg.MAC && eth.Dst != broadcastMAC {
		if eth.Dst[0]&1 == 0 || eth.EtherType != wire.EtherTypeIPv4 {
			s.ctr.RxNotForUs++
			return
		}
	}
	switch eth.EtherType {
	case wire.EtherTypeARP:
		s.arpInput(frame[wire.EthLen:])
	case wire.EtherTypeIPv4:
		s.ipInput(&eth, frame[wire.EthLen:])
	default:
		s.ctr.RxUnknownEtherType++
	}
}

var broadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (s *Stack) advance(now int64) {
	if now > s.now {
		s.now = now
	}
}

func (s *Stack) onLink(ip [4]byte) bool {
	a := binary.BigEndian.Uint32(ip[:])
	b := binary.BigEndian.Uint32(s.cfg.IP[:])
	return a&s.mask == b&s.mask
}

func (s *Stack) ipInput(eth *wire.Ethernet, b []byte) {
	h, err := wire.ParseIPv4(b)
	if err != nil {
		s.ctr.IPBadHeader++
		return
	}
	if h.Dst != s.cfg.IP {
		if h.Dst != s.bcast && h.Dst != [4]byte{255, 255, 255, 255} {
			s.ctr.IPNotForUs++
			return
		}
		// Broadcasts carry nothing we answer (no UDP services).
		s.ctr.IPBroadcastIgnored++
		return
	}
	if h.IsFragment() {
		s.ctr.IPFragmentsDropped++
		return
	}
	if h.Src == s.cfg.IP || h.Src[0] == 127 || h.Src[0] >= 224 || h.Src == ([4]byte{}) {
		s.ctr.IPBadSource++
		return
	}
	// Learn the neighbour from traffic it sends us (as smoltcp does): keeps
	// the cache warm without ARP round trips after a failover.
	if s.onLink(h.Src) {
		s.arp.learn(s, h.Src, eth.Src, false)
	}
	payload := b[h.IHL:h.TotalLen]
	switch h.Proto {
	case wire.ProtoTCP:
		s.tcpInput(&h, payload)
	case wire.ProtoICMP:
		s.icmpInput(&h, payload)
	default:
		s.ctr.IPUnknownProto++
	}
}

func (s *Stack) icmpInput(h *wire.IPv4, b []byte) {
	if len(b) < 8 {
		s.ctr.ICMPBad++
		return
	}
	if wire.Checksum(b) != 0 {
		s.ctr.ICMPBad++
		return
	}
	if b[0] != 8 || b[1] != 0 { // only echo request
		s.ctr.ICMPIgnored++
		return
	}
	if wire.IPv4Len+len(b) > s.cfg.MTU {
		s.ctr.ICMPBad++
		return
	}
	f := make([]byte, wire.EthLen+wire.IPv4Len+len(b))
	icmp := f[wire.EthLen+wire.IPv4Len:]
	copy(icmp, b)
	icmp[0] = 0
	icmp[2], icmp[3] = 0, 0
	binary.BigEndian.PutUint16(icmp[2:4], wire.Checksum(icmp))
	s.ctr.ICMPEchoReplies++
	s.sendIP(f, h.Src, wire.ProtoICMP, false, 0)
}

// sendIP fills the IPv4 header of f (Ethernet header room at the front) and
// hands it to the neighbour layer.
func (s *Stack) sendIP(f []byte, dst [4]byte, proto uint8, df bool, gso uint16) {
	s.ipID++
	wire.PutIPv4(f[wire.EthLen:], len(f)-wire.EthLen, s.ipID, df, 64, proto, s.cfg.IP, dst)
	hop := dst
	if !s.onLink(dst) {
		if s.cfg.Gateway == ([4]byte{}) {
			s.ctr.IPNoRoute++
			return
		}
		hop = s.cfg.Gateway
	}
	mac, ok := s.arp.lookup(s, hop)
	if !ok {
		s.arp.hold(s, hop, txFrame{f, gso})
		return
	}
	wire.PutEthernet(f, mac, s.cfg.MAC, wire.EtherTypeIPv4)
	s.emit(f, gso)
}

func (s *Stack) emit(f []byte, gso uint16) {
	if len(s.tx) >= s.cfg.TXQueue {
		s.ctr.TxQueueDrops++
		return
	}
	s.ctr.TxFrames++
	s.ctr.TxBytes += uint64(len(f))
	s.tx = append(s.tx, txFrame{f, gso})
}

// Recycle hands back the buffer of a frame from DrainFrames once the caller
// is done with it, so big (TSO) frames are not allocated afresh. Optional.
// Reused buffers are overwritten completely, so this never changes output.
func (s *Stack) Recycle(frame []byte) {
	if cap(frame) >= 16<<10 && len(s.pool) < 64 {
		s.pool = append(s.pool, frame[:0])
	}
}

// frame returns a buffer of n bytes whose every byte the caller overwrites.
func (s *Stack) frame(n int) []byte {
	for i := len(s.pool) - 1; i >= 0; i-- {
		if b := s.pool[i]; cap(b) >= n {
			s.pool[i] = s.pool[len(s.pool)-1]
			s.pool[len(s.pool)-1] = nil
			s.pool = s.pool[:len(s.pool)-1]
			return b[:n]
		}
	}
	if n >= 16<<10 {
		return make([]byte, n, 65536+256) // one size for every super-segment: reusable
	}
	return make([]byte, n)
}

// DrainFrames hands every queued frame to emit, in order; emit owns each
// slice. gso > 0 marks a TCP/IPv4 super-segment to cut into gso-byte payloads
// (headers, options and flags copied, FIN/PSH on the last piece, IP total
// length, IP ID and TCP sequence adjusted per piece, as virtio/TAP GSO does).
// With Config.ChecksumOffload every TCP frame's checksum field holds the
// folded pseudo-header sum (VIRTIO_NET_HDR_F_NEEDS_CSUM, start 34, offset 16);
// otherwise it is complete.
func (s *Stack) DrainFrames(emit func(frame []byte, gso uint16)) {
	for i := range s.tx {
		f := s.tx[i]
		s.tx[i] = txFrame{}
		emit(f.b, f.gso)
	}
	s.tx = s.tx[:0]
}

// DrainEvents hands queued socket events to handle, in order, including
// events queued by the handler itself.
func (s *Stack) DrainEvents(handle func(sockapi.Event)) {
	for i := 0; i < len(s.events); i++ {
		ev := s.events[i]
		c := s.socks[ev.Sock]
		if c == nil {
			continue
		}
		switch ev.Kind {
		case sockapi.EvAccept:
			c.evAccept = false
		case sockapi.EvReadable:
			c.evReadable = false
		case sockapi.EvWritable:
			c.evWritable = false
		}
		if c.appClosed {
			continue
		}
		handle(ev)
		if ev.Kind == sockapi.EvClosed {
			if c2 := s.socks[ev.Sock]; c2 == c {
				s.free(c)
			}
		}
	}
	for i := range s.events {
		s.events[i] = sockapi.Event{}
	}
	s.events = s.events[:0]
}

// GratuitousARP queues a gratuitous ARP request announcing cfg.IP at cfg.MAC.
func (s *Stack) GratuitousARP() {
	s.sendARP(1, broadcastMAC, [6]byte{}, s.cfg.IP)
}

// Poll runs the timers due at now and sends what sockets may send.
func (s *Stack) Poll(now int64) {
	s.advance(now)
	now = s.now
	if s.arp.deadline != 0 && s.arp.deadline <= now {
		s.arp.timers(s)
	}
	if len(s.dl) > 0 && s.dl[0].deadline <= now {
		for _, c := range s.popDue(now) {
			if !c.freed {
				s.tcpTimers(c)
			}
		}
	}
	for i := 0; i < len(s.pending); i++ {
		c := s.pending[i]
		c.inPending = false
		if !c.freed {
			s.tcpOutput(c)
		}
	}
	for i := range s.pending {
		s.pending[i] = nil
	}
	s.pending = s.pending[:0]
}

// NextDeadline is the earliest timer in virtual ns, 0 for none.
func (s *Stack) NextDeadline() int64 {
	d := int64(0)
	if len(s.dl) > 0 {
		d = s.dl[0].deadline
	}

	if a := s.arp.deadline; a != 0 && (d == 0 || a < d) {
		d = a
	}
	if len(s.pending) > 0 && (d == 0 || s.now < d) {
		d = s.now // output waiting for a Poll
	}
	return d
}

// markPending queues c for output at the next Poll.
func (s *Stack) markPending(c *tcb) {
	if !c.inPending {
		c.inPending = true
		s.pending = append(s.pending, c)
	}
}

func (s *Stack) nextRand() uint64 {
	// splitmix64: deterministic, state in the snapshot.
	s.rng += 0x9e3779b97f4a7c15
	z := s.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

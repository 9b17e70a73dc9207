package netstack

import (
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// tcpState is the RFC 9293 connection state.
type tcpState uint8

const (
	stClosed tcpState = iota
	stListen
	stSynSent
	stSynRcvd
	stEstablished
	stFinWait1
	stFinWait2
	stCloseWait
	stClosing
	stLastAck
	stTimeWait
)

var stateNames = [...]string{"CLOSED", "LISTEN", "SYN-SENT", "SYN-RECEIVED", "ESTABLISHED",
	"FIN-WAIT-1", "FIN-WAIT-2", "CLOSE-WAIT", "CLOSING", "LAST-ACK", "TIME-WAIT"}

func (st tcpState) String() string {
	if int(st) < len(stateNames) {
		return stateNames[st]
	}
	return "?"
}

// Why a connection ended, for Read/Write errors.
const (
	endNone uint8 = iota
	endReset
	endTimeout
)

// seqRange is [start, end) in sequence space.
type seqRange struct{ start, end uint32 }

func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool  { return int32(a-b) > 0 }
func seqGEQ(a, b uint32) bool { return int32(a-b) >= 0 }
func seqMax(a, b uint32) uint32 {
	if seqGT(a, b) {
		return a
	}
	return b
}
func seqMin(a, b uint32) uint32 {
	if seqLT(a, b) {
		return a
	}
	return b
}

// tcb is a socket: a listener (state LISTEN) or a connection.
type tcb struct {
	id       sockapi.SockID
	state    tcpState
	listener sockapi.SockID // the listener a passive connection came from
	lport    uint16
	rport    uint16
	rip      [4]byte

	// listener
	backlog int
	acceptQ []sockapi.SockID
	synRcvd int
	inSynQ  bool // counted in its listener's synRcvd

	// service side
	accepted     bool // handed out by Accept (or dialed): events flow
	appClosed    bool // service called Close: no more events
	wantWritable bool
	evAccept     bool
	evReadable   bool
	evWritable   bool
	evClosed     bool
	end          uint8
	freed        bool
	inPending    bool

	// send sequence space
	iss, una, nxt, maxNxt uint32
	sndWnd, maxSndWnd     uint32
	wl1, wl2              uint32
	sndScale, rcvScale    uint8
	wsOK, tsOK, sackOK    bool
	mss                   int // payload bytes per segment, options excluded
	peerMSS               int
	snd                   ring
	finQueued             bool // FIN follows the data in snd
	finSeq                uint32

	// receive sequence space
	irs, rcvNxt uint32
	rcvAdv      uint32 // right edge we stand by (never moves left)
	rcvAdvSent  uint32 // highest edge the peer was told (rounded up by the scale)
	rcv         ring
	ooo         []seqRange
	oooLast     seqRange // most recent out-of-order arrival (first SACK block)
	peerFin     bool     // FIN processed (in order)
	oooFin      bool     // FIN seen beyond a hole
	oooFinSeq   uint32

	// acknowledgements
	ackNow   bool
	unacked  int
	delackAt int64

	// timestamps (RFC 7323)
	tsRecent    uint32
	tsRecentAge int64
	tsOff       uint32
	lastAckSent uint32

	// RTT and timers (RFC 6298)
	srtt, rttvar, rto int64
	rttTiming         bool
	rttSeq            uint32
	rttStart          int64
	retries           int
	rtxAt             int64
	persistAt         int64
	persistShift      int
	keepAt            int64
	keepProbes        int
	endAt             int64 // TIME-WAIT end, FIN-WAIT-2 orphan timeout
	deadline          int64
	heapIdx           int // position in the stack's timer heap, -1 when absent

	// congestion control: NewReno recovery with SACK (RFC 6675), CUBIC growth
	cwnd, ssthresh uint32
	dupacks        int
	inRecovery     bool
	recover        uint32
	highRxt        uint32
	rxtForce       bool
	rxtUnaOn       bool   // the segment at una was retransmitted in this recovery
	tlpAt          int64  // tail loss probe timer (RFC 8985 7)
	tlpOut         bool   // a probe is out and unanswered
	tlpSeq         uint32 // where the probe started
	lossAll        bool   // the probe was SACKed over a hole: every hole is lost
	rxtUnaNxt      uint32 // snd.nxt when it was: SACKs beyond it mean the retransmission was lost
	sacked         []seqRange
	cubWmax        uint32
	cubEpoch       int64
	cubK           int64 // ms
	cubOrigin      uint32
	cubWest        uint32
}

func (c *tcb) synchronized() bool { return c.state >= stEstablished }

// flight is bytes sent and not yet cumulatively acknowledged.
func (c *tcb) flight() uint32 { return c.nxt - c.una }

// sndDataEnd is the sequence number after the last queued data byte.
func (c *tcb) sndDataEnd() uint32 { return c.una + uint32(c.snd.Len()) }

func (c *tcb) addr() sockapi.Addr { return sockapi.Addr{IP: c.rip, Port: c.rport} }

// sendRoom is how many bytes the writer may add now: what the buffer has
// free, but no more unsent bytes than max(ahead, cwnd) (Config.SendAhead).
func (c *tcb) sendRoom(ahead int) int {
	sent := min(max(int(c.maxNxt-c.una), 0), c.snd.Len())
	limit := max(ahead, int(c.cwnd))
	return max(0, min(c.snd.Free(), limit-(c.snd.Len()-sent)))
}

package netnstest

import (
	"container/heap"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/port"
	"golang.org/x/sys/unix"
)

// Impairment is what a Relay does to each wire frame, in each direction,
// like `tc netem delay D loss L% reorder R%`: a frame is lost with
// probability Loss; otherwise it leaves after Delay (plus a uniform Jitter),
// except that with probability Reorder it leaves at once, overtaking the
// frames still held back.
type Impairment struct {
	Delay   time.Duration
	Jitter  time.Duration
	Loss    float64
	Reorder float64
	Seed    uint64
}

// RelayStats counts a relay's work, both directions together.
type RelayStats struct {
	Frames, Lost, Reordered, Segmented uint64
}

// Relay forwards every frame between two interfaces of one namespace,
// impairing it on the way: the userspace stand-in for tc netem on kernels
// built without sch_netem. TCP super-segments (GSO) are cut into wire-size
// segments first, so loss and reordering hit real segments as netem's would.
type Relay struct {
	imp    atomic.Pointer[Impairment]
	fds    [2]int
	wg     sync.WaitGroup
	stop   atomic.Bool
	frames atomic.Uint64
	lost   atomic.Uint64
	reord  atomic.Uint64
	segd   atomic.Uint64
}

// StartRelay starts a relay between ifA and ifB inside n. It stops at cleanup.
func (n *NS) StartRelay(ifA, ifB string, imp Impairment) *Relay {
	n.env.t.Helper()
	r := &Relay{fds: [2]int{-1, -1}}
	r.imp.Store(&imp)
	err := n.Do(func() error {
		for i, name := range []string{ifA, ifB} {
			fd, err := rawSocket(name)
			if err != nil {
				return err
			}
			r.fds[i] = fd
		}
		return nil
	})
	if err != nil {
		r.closeFDs()
		n.env.t.Fatalf("relay in %s: %v", n.Name, err)
	}
	for dir := 0; dir < 2; dir++ {
		rng := rand.New(rand.NewPCG(imp.Seed, uint64(dir)+1))
		q := make(chan delayed, 4096)
		r.wg.Add(2)
		go r.receive(r.fds[dir], q, rng)
		go r.send(r.fds[1-dir], q)
	}
	n.env.t.Cleanup(r.Close)
	return r
}

// Stats returns the counts so far.
func (r *Relay) Stats() RelayStats {
	return RelayStats{Frames: r.frames.Load(), Lost: r.lost.Load(), Reordered: r.reord.Load(), Segmented: r.segd.Load()}
}

// Close stops the relay and waits for its goroutines.
func (r *Relay) Close() {
	if r.stop.Swap(true) {
		return
	}
	r.wg.Wait()
	r.closeFDs()
}

func (r *Relay) closeFDs() {
	for _, fd := range r.fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func rawSocket(name string) (int, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return -1, fmt.Errorf("interface %s: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return -1, fmt.Errorf("packet socket: %w", err)
	}
	setup := func() error {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
			return err
		}
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 16<<20)
		// A short timeout lets the receive loop notice Close.
		tv := unix.NsecToTimeval(int64(50 * time.Millisecond))
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			return err
		}
		mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
		return unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq)
	}
	if err := setup(); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("packet socket on %s: %w", name, err)
	}
	return fd, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

type delayed struct {
	due   time.Time
	seq   uint64
	frame []byte
}

// SetImpairment changes the impairment from the next frame on (Loss 1 cuts
// the link; a zero Impairment makes it clean).
func (r *Relay) SetImpairment(imp Impairment) { r.imp.Store(&imp) }

func (r *Relay) receive(fd int, q chan<- delayed, rng *rand.Rand) {
	defer r.wg.Done()
	defer close(q)
	buf := make([]byte, port.MaxFrame+port.VnetHdrLen)
	var seq uint64
	for !r.stop.Load() {
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue // timeout or EINTR: check stop
		}
		frame, gso, err := port.Normalise(buf[:n])
		if err != nil {
			continue
		}
		frames := [][]byte{append([]byte(nil), frame...)}
		if gso != 0 {
			if segs, err := port.SegmentTCPv4(frame, int(gso)); err == nil {
				frames = segs
				r.segd.Add(1)
			}
		}
		imp := r.imp.Load()
		for _, f := range frames {
			r.frames.Add(1)
			if imp.Loss > 0 && rng.Float64() < imp.Loss {
				r.lost.Add(1)
				continue
			}
			due := time.Now()
			if imp.Reorder > 0 && rng.Float64() < imp.Reorder {
				r.reord.Add(1)
			} else {
				due = due.Add(imp.Delay)
				if imp.Jitter > 0 {
					due = due.Add(time.Duration(rng.Int64N(int64(imp.Jitter))))
				}
			}
			seq++
			q <- delayed{due: due, seq: seq, frame: f}
		}
	}
}

type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// send writes frames when they fall due, in due order.
func (r *Relay) send(fd int, q <-chan delayed) {
	defer r.wg.Done()
	var h delayHeap
	var zero [port.VnetHdrLen]byte
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	open := true
	for open || h.Len() > 0 {
		now := time.Now()
		for h.Len() > 0 && !h[0].due.After(now) {
			d := heap.Pop(&h).(delayed)
			_, _ = unix.Writev(fd, [][]byte{zero[:], d.frame})
		}
		if r.stop.Load() {
			return
		}
		wait := time.Hour
		if h.Len() > 0 {
			wait = h[0].due.Sub(now)
		}
		timer.Reset(wait)
		select {
		case d, ok := <-q:
			if !ok {
				open = false
				q = nil
				continue
			}
			heap.Push(&h, d)
		case <-timer.C:
		}
	}
}

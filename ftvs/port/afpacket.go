package port

import (
	"encoding/binary"
	"fmt"
	"net"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// sockBuf is the socket buffer size asked for (SO_*BUFFORCE, root only):
// room for a few hundred 64 KiB super-segments between two polls.
const sockBuf = 32 << 20

type afPacket struct {
	fd      int
	ifindex int
	name    string
	mac     net.HardwareAddr
	closed  atomic.Bool
	stats   counters
	vh      [VnetHdrLen]byte
	scratch [256]byte
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// macFilter is a classic BPF program accepting frames to mac or to any
// group (broadcast/multicast) address, so the socket's queue holds only the
// virtual server's traffic even with the interface promiscuous.
func macFilter(mac net.HardwareAddr) []unix.SockFilter {
	hi := uint32(binary.BigEndian.Uint16(mac[0:2]))
	lo := binary.BigEndian.Uint32(mac[2:6])
	return []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_B | unix.BPF_ABS, K: 0},                 // A = dst[0]
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, Jt: 4, Jf: 0, K: 1}, // group bit -> accept
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 2},                 // A = dst[2:6]
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: lo}, // -> reject
		{Code: unix.BPF_LD | unix.BPF_H | unix.BPF_ABS, K: 0},                 // A = dst[0:2]
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: hi}, // -> reject
		{Code: unix.BPF_RET | unix.BPF_K, K: 0x40000},                         // accept
		{Code: unix.BPF_RET | unix.BPF_K, K: 0},                               // reject
	}
}

func openAFPacket(cfg Config) (Port, error) {
	ifi, err := net.InterfaceByName(cfg.Iface)
	if err != nil {
		return nil, fmt.Errorf("afpacket: interface %q: %w", cfg.Iface, err)
	}
	// Protocol 0: nothing is queued until bind, after the filter is in place.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("afpacket: socket (needs CAP_NET_RAW): %w", err)
	}
	p := &afPacket{fd: fd, ifindex: ifi.Index, name: cfg.Iface, mac: append(net.HardwareAddr(nil), cfg.MAC...)}
	fail := func(what string, err error) (Port, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("afpacket %s: %s: %w", cfg.Iface, what, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
		return fail("PACKET_VNET_HDR", err)
	}
	// Our own transmissions must not come back as input.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		return fail("PACKET_IGNORE_OUTGOING", err)
	}
	prog := macFilter(cfg.MAC)
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
		return fail("attach MAC filter", err)
	}
	for _, o := range []int{unix.SO_RCVBUFFORCE, unix.SO_SNDBUFFORCE} {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o, sockBuf) // best effort: a smaller buffer only costs drops
	}
	// Up before bind: binding to a down interface leaves ENETDOWN pending on
	// the socket, and the first send would fail with it.
	if err := setUp(cfg.Iface); err != nil {
		return fail("link up", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		return fail("bind", err)
	}
	_, _ = unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR) // clear any pending error
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return fail("promiscuous mode", err)
	}
	return p, nil
}

func (p *afPacket) FD() int { return p.fd }

func (p *afPacket) Read(bufs [][]byte, out [][]byte) (int, error) {
	down := p.stats.LinkDown.Load()
	n, err := readFrames(p.fd, &p.stats, nil, bufs, out)
	if err == nil && p.stats.LinkDown.Load() != down {
		// Down, or gone? A deleted interface never comes back to this
		// socket; the kernel then reports the socket bound to no interface.
		// (Asked of the socket, not by name: the caller's thread may be in
		// another network namespace than the interface.)
		if sa, serr := unix.Getsockname(p.fd); serr == nil {
			if ll, ok := sa.(*unix.SockaddrLinklayer); ok && ll.Ifindex != p.ifindex {
				return n, fmt.Errorf("afpacket: interface %s is gone", p.name)
			}
		}
	}
	return n, err
}

func (p *afPacket) Write(frames []Frame) error {
	return writeFrames(p.fd, &p.stats, p.vh[:], p.scratch[:], frames)
}

func (p *afPacket) Stats() Stats { return p.stats.snapshot() }

func (p *afPacket) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return unix.Close(p.fd)
}

// readFrames reads frames with a virtio-net header from a non-blocking fd
// until it would block or bufs are used up. mac, when set, filters in
// software (TAP has no MAC filter of its own).
func readFrames(fd int, st *counters, mac net.HardwareAddr, bufs [][]byte, out [][]byte) (int, error) {
	n := 0
	for n < len(bufs) && n < len(out) {
		m, err := unix.Read(fd, bufs[n])
		if err == unix.EAGAIN || err == unix.EINTR {
			break
		}
		if err == unix.ENETDOWN {
			// The link went down (the socket's pending error, reported
			// once); frames resume when it comes back.
			st.LinkDown.Add(1)
			break
		}
		if err != nil {
			return n, fmt.Errorf("read frame: %w", err)
		}
		if m >= len(bufs[n]) {
			// Filled the buffer: cut short (a super-segment beyond 64 KiB,
			// e.g. BIG TCP), so it cannot be handed on whole.
			st.RxDropBad.Add(1)
			continue
		}
		frame, gso, err := Normalise(bufs[n][:m])
		if err != nil {
			st.RxDropBad.Add(1)
			continue
		}
		if mac != nil && !wanted(frame, mac) {
			st.RxDropFilter.Add(1)
			continue
		}
		st.RxFrames.Add(1)
		st.RxBytes.Add(uint64(len(frame)))
		if gso != 0 {
			st.RxGSO.Add(1)
		}
		out[n] = frame
		n++
	}
	return n, nil
}

// writeFrames writes each frame behind its virtio-net header with one
// writev, waiting for room when the kernel's queue is full.
func writeFrames(fd int, st *counters, vh, scratch []byte, frames []Frame) error {
	iov := make([][]byte, 0, 3)
	for _, f := range frames {
		hdrs, err := txHeader(vh, scratch, f)
		if err != nil {
			st.TxErrors.Add(1)
			continue
		}
		iov = append(iov[:0], vh[:VnetHdrLen])
		if hdrs != nil {
			iov = append(iov, hdrs, f.Data[len(hdrs):])
		} else {
			iov = append(iov, f.Data)
		}
		for {
			_, err = unix.Writev(fd, iov)
			if err == unix.EAGAIN || err == unix.ENOBUFS {
				if werr := waitWritable(fd); werr != nil {
					return werr
				}
				continue
			}
			if err == unix.EINTR {
				continue
			}
			break
		}
		if err != nil {
			if err == unix.EBADF {
				return ErrClosed
			}
			st.TxErrors.Add(1)
			continue
		}
		st.TxFrames.Add(1)
		st.TxBytes.Add(uint64(len(f.Data)))
		if f.GSO != 0 {
			st.TxGSO.Add(1)
		}
	}
	return nil
}

func waitWritable(fd int) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	ts := unix.NsecToTimespec(1e6)
	_, err := unix.Ppoll(pfd, &ts, nil)
	if err != nil && err != unix.EINTR {
		return fmt.Errorf("wait for room to write: %w", err)
	}
	return nil
}

// setUp brings an interface up if it is down.
func setUp(name string) error {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	flags := ifr.Uint16()
	if flags&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(flags | unix.IFF_UP)
	return unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr)
}

package coserver

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ftvs/ftvs/ftvs/lockstep"
	"golang.org/x/sys/unix"
)

// guard is the split-brain rule (see the package doc).
type guard struct{ d *Daemon }

// check says whether this node may serve the VS now, and why (or why not).
// coldStart: the node is alone at start, not a secondary going live.
func (g *guard) check(coldStart bool) (bool, string) {
	d := g.d
	if !coldStart && d.dropped.Load() {
		return false, "the primary dropped this node (drop notice): its log is stale"
	}
	t0 := time.Now()
	// The LAN probe runs while the management probe waits for its answer:
	// the check costs the longer of the two, not their sum.
	type lan struct {
		seen bool
		err  error
	}
	lanc := make(chan lan, 1)
	go func() {
		seen, err := probeLAN(d.cfg.Redirected.Interface, d.mac, d.vsIP, d.cfg.Node, d.cfg.Timeouts.SplitBrain)
		lanc <- lan{seen, err}
	}()
	if p := d.cfg.Management.Peer; p != "" {
		role, err := probePeer(p, d.cfg.Timeouts.Management)
		if err == nil && role == lockstep.RolePrimary.String() {
			return false, "peer answers on the management network as primary"
		}
		if err == nil && coldStart && role != "" {
			return false, "peer answers on the management network (" + role + ")"
		}
	}
	l := <-lanc
	if !coldStart && d.dropped.Load() { // a notice that came in meanwhile
		return false, "the primary dropped this node (drop notice): its log is stale"
	}
	if l.err != nil {
		return false, "LAN probe failed: " + l.err.Error()
	}
	if l.seen {
		return false, "frames from the VS MAC on the production LAN"
	}
	if d.lease != nil {
		deadline := time.Now().Add(d.lease.TTL() + 2*d.cfg.Timeouts.Management + 200*time.Millisecond)
		for {
			ok, err := d.lease.Acquire(d.cfg.Timeouts.Management * 4)
			if ok {
				break
			}
			if time.Now().After(deadline) {
				return false, fmt.Sprintf("witness did not grant the lease (%v)", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return true, fmt.Sprintf("checks passed in %s", time.Since(t0).Round(time.Millisecond))
}

// probePeer asks the peer's status endpoint for its role.
func probePeer(addr string, timeout time.Duration) (string, error) {
	c := http.Client{Timeout: timeout}
	resp, err := c.Get("http://" + addr + "/status")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var st struct {
		Role string `json:"role"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "unknown", nil // it answered: alive
	}
	return st.Role, nil
}

// probeLAN sends ARP probes for the VS IP on iface and watches for any
// frame from the VS MAC for window.
func probeLAN(iface string, vsMAC net.HardwareAddr, vsIP [4]byte, node int, window time.Duration) (bool, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return false, err
	}
	const ethPAll = 0x0003
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, int(htons(ethPAll)))
	if err != nil {
		return false, fmt.Errorf("packet socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(ethPAll), Ifindex: ifi.Index}); err != nil {
		return false, fmt.Errorf("bind %s: %w", iface, err)
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		return false, fmt.Errorf("promiscuous %s: %w", iface, err)
	}
	// A locally administered unicast MAC of our own for the probe, so the
	// VS's reply comes back to this port.
	probe := net.HardwareAddr{0x06, byte(node), vsMAC[2], vsMAC[3], vsMAC[4], vsMAC[5]}
	req := arpProbe(probe, vsIP)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6, Addr: [8]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
	buf := make([]byte, 2048)
	deadline := time.Now().Add(window)
	next := time.Now()
	for {
		now := time.Now()
		if !now.Before(deadline) {
			return false, nil
		}
		if !now.Before(next) {
			_ = unix.Sendto(fd, req, 0, to)
			next = now.Add(window / 3)
		}
		wait := min(deadline.Sub(now), next.Sub(now))
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, int(wait.Milliseconds())+1); err != nil && err != unix.EINTR {
			return false, err
		}
		for {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err != nil || n < 14 {
				break
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue
			}
			if bytes.Equal(buf[6:12], vsMAC) {
				return true, nil
			}
		}
	}
}

func arpProbe(src net.HardwareAddr, target [4]byte) []byte {
	f := make([]byte, 0, 60)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, src...)
	f = append(f, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	f = append(f, src...)
	f = append(f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	f = append(f, target[:]...)
	return append(f, make([]byte, 60-len(f))...)
}

func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}

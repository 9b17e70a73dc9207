package link

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// Net opens the sockets of a link. SystemNet is the real one; tests wrap it
// to open sockets inside a network namespace.
type Net interface {
	Listen(lc LinkConfig) (net.Listener, error)
	Dial(ctx context.Context, lc LinkConfig) (net.Conn, error)
}

// SystemNet opens TCP sockets bound to the link's interface
// (SO_BINDTODEVICE) and local address, so link traffic never takes another
// route even when both links sit in one subnet.
type SystemNet struct{}

func bindControl(dev string) func(network, address string, c syscall.RawConn) error {
	if dev == "" {
		return nil
	}
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = syscall.BindToDevice(int(fd), dev) }); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("bind to interface %s: %w", dev, serr)
		}
		return nil
	}
}

// Listen listens on the link's local address and port.
func (SystemNet) Listen(lc LinkConfig) (net.Listener, error) {
	lcfg := net.ListenConfig{Control: bindControl(lc.Interface), KeepAlive: -1}
	return lcfg.Listen(context.Background(), "tcp", net.JoinHostPort(lc.Local, strconv.Itoa(lc.Port)))
}

// Dial connects from the link's local address to the peer's.
func (SystemNet) Dial(ctx context.Context, lc LinkConfig) (net.Conn, error) {
	d := net.Dialer{Control: bindControl(lc.Interface), KeepAlive: -1}
	if lc.Local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(lc.Local)}
	}
	return d.DialContext(ctx, "tcp", net.JoinHostPort(lc.Peer, strconv.Itoa(lc.Port)))
}

// Linux socket options (6.15+) bounding TCP's retransmission timeout.
const (
	tcpRTOMaxMS = 44 // TCP_RTO_MAX_MS
	tcpRTOMinUS = 45 // TCP_RTO_MIN_US
)

// tuneRTO lowers TCP's minimum retransmission timeout from 200 ms to 10 ms
// and its maximum to 1 s: on a direct cable one lost segment must not stall
// the link past LinkTimeout (that would read as silence), and a link that
// comes back must be retried within a second. Older kernels refuse the
// options; the link then only reacts more slowly to loss.
func tuneRTO(c *net.TCPConn) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpRTOMinUS, 10000)
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpRTOMaxMS, 1000)
	})
}

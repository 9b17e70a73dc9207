package port

import (
	"fmt"
	"net"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

type tapPort struct {
	fd      int
	mac     net.HardwareAddr
	closed  atomic.Bool
	stats   counters
	vh      [VnetHdrLen]byte
	scratch [256]byte
}

// openTAP attaches to the TAP device cfg.Iface (creating it, non-persistent,
// if it does not exist) with a virtio-net header on every frame and TSO and
// checksum offload on, so the kernel hands over 64 KiB super-segments and
// takes 64 KiB TSO frames.
func openTAP(cfg Config) (Port, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("tap %s: open /dev/net/tun: %w", cfg.Iface, err)
	}
	fail := func(what string, err error) (Port, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("tap %s: %s: %w", cfg.Iface, what, err)
	}
	ifr, err := unix.NewIfreq(cfg.Iface)
	if err != nil {
		return fail("interface name", err)
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI | unix.IFF_VNET_HDR)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fail("TUNSETIFF (is it a TAP device? needs CAP_NET_ADMIN)", err)
	}
	hl := int32(VnetHdrLen)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETVNETHDRSZ, uintptr(unsafe.Pointer(&hl))); e != 0 {
		return fail("TUNSETVNETHDRSZ", e)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6|unix.TUN_F_TSO_ECN); err != nil {
		return fail("TUNSETOFFLOAD", err)
	}
	// Let the kernel drop frames for other MACs before they are copied out:
	// struct tun_filter {u16 flags; u16 count; u8 addr[count][6]} with
	// TUN_FLT_ALLMULTI (1) so broadcast and multicast still come through.
	// Best effort: the software filter in Read stays as the safety net.
	filter := [4 + 6]byte{1, 0, 1, 0}
	copy(filter[4:], cfg.MAC)
	_, _, _ = unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TUNSETTXFILTER, uintptr(unsafe.Pointer(&filter[0])))
	_ = unix.IoctlSetInt(fd, unix.TUNSETSNDBUF, sockBuf)
	if err := setUp(cfg.Iface); err != nil {
		return fail("link up", err)
	}
	return &tapPort{fd: fd, mac: append(net.HardwareAddr(nil), cfg.MAC...)}, nil
}

func (p *tapPort) FD() int { return p.fd }

func (p *tapPort) Read(bufs [][]byte, out [][]byte) (int, error) {
	return readFrames(p.fd, &p.stats, p.mac, bufs, out)
}

func (p *tapPort) Write(frames []Frame) error {
	return writeFrames(p.fd, &p.stats, p.vh[:], p.scratch[:], frames)
}

func (p *tapPort) Stats() Stats { return p.stats.snapshot() }

func (p *tapPort) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	return unix.Close(p.fd)
}

// Package nstest builds the installer's test network out of Linux network
// namespaces: two CoServer nodes joined by two crossover veths, a production
// bridge with a third station on it, and a management bridge with a manager
// station. Tests that use it need root and iproute2.
package nstest

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Topology names the namespaces and NICs of the test network.
type Topology struct {
	Prefix   string // namespace name prefix, e.g. "fi6"
	NodeA    string // namespaces of the two nodes
	NodeB    string
	Prod     string // production bridge + station
	Mgmt     string // management bridge + manager station
	ProdNIC  string // each node's NIC on the production bridge
	MgmtNIC  string // each node's NIC on the management bridge
	CrossNIC [2]string
	ProdIP   netip.Addr // the production station's address (in its ARP frames)
	MgmtIP   netip.Addr // the manager's address
}

// NICs of each node, named neutrally so nothing but the beacons says which
// is which: the crossovers are not the first NICs.
func newTopology(prefix string) *Topology {
	return &Topology{
		Prefix: prefix, NodeA: prefix + "a", NodeB: prefix + "b", Prod: prefix + "p", Mgmt: prefix + "m",
		ProdNIC: "nic0", CrossNIC: [2]string{"nic1", "nic3"}, MgmtNIC: "nic2",
		ProdIP: netip.MustParseAddr("192.168.50.9"), MgmtIP: netip.MustParseAddr("10.0.0.1"),
	}
}

// sweepOrphans removes namespaces under prefix whose creating process (its
// ID in base 36 between the prefix and the one-letter role) is gone: the
// leftovers of a killed test run. Namespaces of live processes are left alone.
func sweepOrphans(prefix string) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) || len(f[0]) < len(prefix)+2 {
			continue
		}
		pid, err := strconv.ParseInt(f[0][len(prefix):len(f[0])-1], 36, 64)
		if err != nil || pid == int64(os.Getpid()) {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
}

// RequireRoot skips when not root or when ip is missing (the tool is truly absent).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
}

func run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Build creates the topology and removes it when the test ends. The
// stations start sending (ARP announcements every 100 ms) at once and stop
// at cleanup.
func Build(t testing.TB, prefix string) *Topology {
	t.Helper()
	RequireRoot(t)
	sweepOrphans(prefix)
	// Test packages run in parallel (go test -p 2) and several build this
	// topology: the process ID in every name keeps them apart, also for the
	// temporary veth names, which share the root namespace.
	prefix += strconv.FormatInt(int64(os.Getpid()), 36)
	tp := newTopology(prefix)
	all := []string{tp.NodeA, tp.NodeB, tp.Prod, tp.Mgmt}
	for _, ns := range all {
		exec.Command("ip", "netns", "del", ns).Run() // a previous test of this process
	}
	t.Cleanup(func() {
		for _, ns := range all {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, ns := range all {
		run(t, "ip", "netns", "add", ns)
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		// No IPv6 chatter: only the frames the test means are on the wire.
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	}
	for i, nic := range tp.CrossNIC {
		tmpA, tmpB := fmt.Sprintf("%sx%da", prefix, i), fmt.Sprintf("%sx%db", prefix, i)
		run(t, "ip", "link", "add", tmpA, "netns", tp.NodeA, "type", "veth", "peer", "name", tmpB, "netns", tp.NodeB)
		run(t, "ip", "-n", tp.NodeA, "link", "set", tmpA, "name", nic)
		run(t, "ip", "-n", tp.NodeB, "link", "set", tmpB, "name", nic)
	}
	for _, sw := range []struct{ ns, nic string }{{tp.Prod, tp.ProdNIC}, {tp.Mgmt, tp.MgmtNIC}} {
		run(t, "ip", "-n", sw.ns, "link", "add", "br0", "type", "bridge")
		run(t, "ip", "-n", sw.ns, "link", "set", "br0", "up")
		for j, node := range []string{tp.NodeA, tp.NodeB} {
			tmp, port := fmt.Sprintf("%st%d", prefix, j), fmt.Sprintf("port%d", j)
			run(t, "ip", "link", "add", tmp, "netns", node, "type", "veth", "peer", "name", port, "netns", sw.ns)
			run(t, "ip", "-n", node, "link", "set", tmp, "name", sw.nic)
			run(t, "ip", "-n", sw.ns, "link", "set", port, "master", "br0", "up")
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, st := range []struct {
		ns  string
		mac net.HardwareAddr
		ip  netip.Addr
	}{{tp.Prod, net.HardwareAddr{0x02, 0xaa, 0, 0, 0, 0x09}, tp.ProdIP}, {tp.Mgmt, net.HardwareAddr{0x02, 0xbb, 0, 0, 0, 0x01}, tp.MgmtIP}} {
		var fd, idx int
		var err error
		In(t, st.ns, func() {
			var i *net.Interface
			if i, err = net.InterfaceByName("br0"); err != nil {
				return
			}
			idx = i.Index
			fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		})
		if err != nil {
			t.Fatalf("station in %s: %v", st.ns, err)
		}
		frame := arpAnnouncement(st.mac, st.ip)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer unix.Close(fd)
			to := &unix.SockaddrLinklayer{Ifindex: idx, Halen: 6, Protocol: 0x0608}
			copy(to.Addr[:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
			for {
				unix.Sendto(fd, frame, 0, to)
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
	return tp
}

// arpAnnouncement is a gratuitous ARP request: who-has ip tell ip.
func arpAnnouncement(mac net.HardwareAddr, ip netip.Addr) []byte {
	f := make([]byte, 60)
	copy(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:12], mac)
	binary.BigEndian.PutUint16(f[12:], 0x0806)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(a[2:], 0x0800) // IPv4
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:], 1) // request
	copy(a[8:14], mac)
	ip4 := ip.As4()
	copy(a[14:18], ip4[:])
	copy(a[24:28], ip4[:])
	return f
}

// In runs f on an OS thread switched into namespace ns; sockets f opens
// stay in that namespace after f returns. Call it from the test goroutine.
func In(t testing.TB, ns string, f func()) {
	t.Helper()
	if err := Run(ns, f); err != nil {
		t.Fatal(err)
	}
}

// Run is In for any goroutine: it returns the namespace error instead.
func Run(ns string, f func()) error {
	done := make(chan struct{})
	var ferr error
	go func() {
		defer close(done)
		runtime.LockOSThread()
		// The thread is not unlocked: it dies with the goroutine rather than
		// go back to the pool in a foreign namespace.
		h, err := netns.GetFromName(ns)
		if err != nil {
			ferr = fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			ferr = fmt.Errorf("enter namespace %s: %w", ns, err)
			return
		}
		f()
	}()
	<-done
	return ferr
}

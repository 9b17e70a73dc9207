package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// Addresses of the stations the test puts on the two switched segments:
// the client on the production LAN (the VS is 192.168.50.10, see
// testdata/e2e/install.yaml) and the manager on the management LAN.
const (
	clientIP  = "192.168.50.20"
	managerIP = "10.0.0.1"
	vsIP      = "192.168.50.10"
)

// segments is the network of one test, in a namespace of its own
// (prefix fe7): a production bridge and a management bridge, each with one
// TAP per machine and a station, and loopback for the crossover cables
// (QEMU UDP socket netdevs, one port pair per cable). QEMU runs inside it.
type segments struct {
	ns string
}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// newSegments builds the namespace and removes it (stations included) when
// the test ends.
func newSegments(t *testing.T, tag string) *segments {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and TAP devices")
	}
	for _, tool := range []string{"ip", "ping", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	s := &segments{ns: "fe7-" + tag}
	exec.Command("ip", "netns", "del", s.ns).Run() // leftover of a killed run
	run(t, "ip", "netns", "add", s.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", s.ns).Run() })
	run(t, "ip", "-n", s.ns, "link", "set", "lo", "up")
	// Only the frames the test means are on the segments.
	run(t, "ip", "netns", "exec", s.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	// A small receive buffer makes the client's rate limit hold from the
	// first second (a default buffer takes megabytes at the VS's speed).
	run(t, "ip", "netns", "exec", s.ns, "sysctl", "-qw", "net.ipv4.tcp_rmem=4096 32768 65536")
	for _, br := range []string{"brp", "brm"} {
		run(t, "ip", "-n", s.ns, "link", "add", br, "type", "bridge")
		run(t, "ip", "-n", s.ns, "link", "set", br, "up")
		for _, vm := range []string{"a", "b"} {
			tap := s.tap(vm, br)
			run(t, "ip", "-n", s.ns, "tuntap", "add", tap, "mode", "tap")
			run(t, "ip", "-n", s.ns, "link", "set", tap, "master", br, "up")
		}
	}
	run(t, "ip", "-n", s.ns, "addr", "add", clientIP+"/24", "dev", "brp")
	run(t, "ip", "-n", s.ns, "addr", "add", managerIP+"/24", "dev", "brm")
	// The stations make themselves heard (broadcast pings every 200 ms):
	// the installers' beacon listeners class both segments as switched and
	// tell them apart by the subnet they hear.
	for _, bcast := range []string{"192.168.50.255", "10.0.0.255"} {
		cmd := exec.Command("ip", "netns", "exec", s.ns, "ping", "-q", "-b", "-i", "0.2", bcast)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	}
	return s
}

func (s *segments) tap(vm, br string) string { return "tap" + vm + br[2:] }

// nics are the QEMU arguments of machine vm ("a" or "b", index 0 or 1):
// four virtio NICs in a fixed order on both machines (the same PCI slot has
// the same role on both servers): crossover 1, production, crossover 2,
// management. The crossovers are UDP socket pairs on loopback.
func (s *segments) nics(vm string, index int) []string {
	var args []string
	nic := func(kind, id, opts string, n int) {
		args = append(args, "-netdev", kind+",id="+id+","+opts,
			"-device", fmt.Sprintf("virtio-net-pci,netdev=%s,mac=52:54:00:7e:%02x:%02x", id, index, n))
	}
	cable := func(basePort int) string {
		local, remote := basePort+index, basePort+1-index
		return fmt.Sprintf("udp=127.0.0.1:%d,localaddr=127.0.0.1:%d", remote, local)
	}
	nic("socket", "x1", cable(17100), 1)
	nic("tap", "p0", "ifname="+s.tap(vm, "brp")+",script=no,downscript=no", 2)
	nic("socket", "x2", cable(17200), 3)
	nic("tap", "m0", "ifname="+s.tap(vm, "brm")+",script=no,downscript=no", 4)
	return args
}

// exec is the prefix that runs a command in the namespace.
func (s *segments) exec() []string { return []string{"ip", "netns", "exec", s.ns} }

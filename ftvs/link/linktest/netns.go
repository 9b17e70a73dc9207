// Package linktest builds the network namespaces, veth crossover links and
// netem impairments that link and lockstep tests run on, and opens sockets
// inside a namespace for a Session running in the test process.
package linktest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/link"
)

// NeedRoot skips a test when it cannot create namespaces.
func NeedRoot(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) not installed")
	}
	if out, err := exec.Command("id", "-u").Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		t.Skip("needs root for network namespaces")
	}
}

// Run runs a command and fails the test with its output on error.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Try runs a command and ignores failure (cleanup).
func Try(args ...string) { exec.Command(args[0], args[1:]...).Run() }

// Netns creates a namespace (removed at cleanup) with lo up.
func Netns(t testing.TB, name string) {
	t.Helper()
	Try("ip", "netns", "del", name)
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { Try("ip", "netns", "del", name) })
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
}

// Veth connects namespace nsA (interface ifA, address ipA/24) to nsB (ifB,
// ipB/24).
func Veth(t testing.TB, nsA, ifA, ipA, nsB, ifB, ipB string) {
	t.Helper()
	Run(t, "ip", "link", "add", ifA, "netns", nsA, "type", "veth", "peer", "name", ifB, "netns", nsB)
	Run(t, "ip", "-n", nsA, "addr", "add", ipA+"/24", "dev", ifA)
	Run(t, "ip", "-n", nsB, "addr", "add", ipB+"/24", "dev", ifB)
	Run(t, "ip", "-n", nsA, "link", "set", ifA, "up")
	Run(t, "ip", "-n", nsB, "link", "set", ifB, "up")
}

// Pair is two namespaces joined by n veth links: link i is ifA<i>/ifB<i>
// with addresses 10.<net>.<i>.1 and .2.
type Pair struct {
	A, B   string
	IfA    []string
	IfB    []string
	LinksA []link.LinkConfig // node 1's view (in A)
	LinksB []link.LinkConfig // node 2's view (in B)
}

// NewPair builds namespaces prefix+"a" and prefix+"b" with n links.
func NewPair(t testing.TB, prefix string, n int, net8 int) *Pair {
	t.Helper()
	NeedRoot(t)
	p := &Pair{A: prefix + "a", B: prefix + "b"}
	Netns(t, p.A)
	Netns(t, p.B)
	for i := range n {
		ia, ib := fmt.Sprintf("%sa%d", prefix, i), fmt.Sprintf("%sb%d", prefix, i)
		ipa, ipb := fmt.Sprintf("10.%d.%d.1", net8, i), fmt.Sprintf("10.%d.%d.2", net8, i)
		Veth(t, p.A, ia, ipa, p.B, ib, ipb)
		p.IfA = append(p.IfA, ia)
		p.IfB = append(p.IfB, ib)
		p.LinksA = append(p.LinksA, link.LinkConfig{Interface: ia, Local: ipa, Peer: ipb})
		p.LinksB = append(p.LinksB, link.LinkConfig{Interface: ib, Local: ipb, Peer: ipa})
	}
	return p
}

// InNetns runs fn on an OS thread switched into the named namespace.
// Sockets fn creates stay in that namespace.
func InNetns(name string, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: Go discards it when the goroutine ends.
		return fmt.Errorf("leave netns %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Net opens link sockets inside namespace NS.
type Net struct{ NS string }

func (n Net) Listen(lc link.LinkConfig) (ln net.Listener, err error) {
	err = InNetns(n.NS, func() error {
		ln, err = link.SystemNet{}.Listen(lc)
		return err
	})
	return ln, err
}

func (n Net) Dial(ctx context.Context, lc link.LinkConfig) (c net.Conn, err error) {
	err = InNetns(n.NS, func() error {
		c, err = link.SystemNet{}.Dial(ctx, lc)
		return err
	})
	return c, err
}

// NewImpairedPair is NewPair with delay, jitter and loss on every link in
// both directions: tc netem on the veths where the kernel has sch_netem,
// else each link runs through a middle namespace whose userspace relay
// (ftvs/internal/netnstest) impairs every frame the same way. It returns
// the pair and what it applied.
func NewImpairedPair(t testing.TB, prefix string, n, net8 int, imp netnstest.Impairment) (*Pair, string) {
	t.Helper()
	NeedRoot(t)
	env := netnstest.New(t, prefix)
	a, b := env.NS("a"), env.NS("b")
	p := &Pair{A: a.Name, B: b.Name}
	var mid *netnstest.NS
	how := ""
	for i := range n {
		ifc := fmt.Sprintf("l%d", i)
		ipa, ipb := fmt.Sprintf("10.%d.%d.1", net8, i), fmt.Sprintf("10.%d.%d.2", net8, i)
		env.Veth(a, ifc, b, ifc+"x")
		b.MustRun("ip", "link", "set", ifc+"x", "name", ifc)
		if i == 0 && !a.HasNetem(ifc) {
			mid = env.NS("m")
		}
		if mid != nil {
			// Re-cable through the middle namespace: a:l<i> - m:a<i> | relay | m:b<i> - b:l<i>.
			a.MustRun("ip", "link", "del", ifc)
			env.Veth(a, ifc, mid, fmt.Sprintf("a%d", i))
			env.Veth(mid, fmt.Sprintf("b%d", i), b, ifc)
			mid.StartRelay(fmt.Sprintf("a%d", i), fmt.Sprintf("b%d", i), imp)
			how = fmt.Sprintf("userspace relay (no sch_netem): delay %v jitter %v loss %.1f%%", imp.Delay, imp.Jitter, imp.Loss*100)
		} else {
			spec := []string{"netem", "delay", imp.Delay.String(), imp.Jitter.String(), "loss", fmt.Sprintf("%.2f%%", imp.Loss*100)}
			a.MustRun("tc", append([]string{"qdisc", "add", "dev", ifc, "root"}, spec...)...)
			b.MustRun("tc", append([]string{"qdisc", "add", "dev", ifc, "root"}, spec...)...)
			how = "tc " + strings.Join(spec, " ")
		}
		a.Addr(ifc, ipa+"/24")
		b.Addr(ifc, ipb+"/24")
		p.IfA = append(p.IfA, ifc)
		p.IfB = append(p.IfB, ifc)
		p.LinksA = append(p.LinksA, link.LinkConfig{Interface: ifc, Local: ipa, Peer: ipb})
		p.LinksB = append(p.LinksB, link.LinkConfig{Interface: ifc, Local: ipb, Peer: ipa})
	}
	return p, how
}

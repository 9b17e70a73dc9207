// Package netnstest builds throw-away network topologies for tests that run
// as root: network namespaces, veth pairs, bridges, addresses, commands run
// inside a namespace, code run inside one on a locked OS thread, and packet
// impairment (tc netem where the kernel has it, else a userspace relay).
//
// Every namespace name starts with the caller's prefix plus a random suffix,
// so parallel tests and parallel helpers never collide, and everything made
// is removed in t.Cleanup, also when the test fails.
package netnstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Env is one test's set of namespaces.
type Env struct {
	t      testing.TB
	prefix string
}

// Require skips the test unless it runs as root with each named tool on PATH
// ("ip" is always required).
func Require(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/deps.sh installs it)", tool)
		}
	}
}

// New starts an environment whose namespaces are named prefix + "." + the
// test process's PID (base 36) + "_" + a random 4-hex-digit suffix + "-" +
// name.
// It first removes namespaces under prefix left by processes that no longer
// exist (a test binary killed before its cleanup ran). It skips the test
// when not root.
func New(t testing.TB, prefix string, tools ...string) *Env {
	t.Helper()
	Require(t, tools...)
	sweep(t, prefix)
	var b [2]byte
	_, _ = rand.Read(b[:])
	return &Env{t: t, prefix: prefix + "." + strconv.FormatInt(int64(os.Getpid()), 36) + "_" + hex.EncodeToString(b[:])}
}

// sweep removes namespaces named by New for processes that are gone.
func sweep(t testing.TB, prefix string) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		// The dot ends the prefix: without it, prefix "fu8" read the
		// live "fu8r" + PID names of another test as PID "r..." (base 36
		// has letters), found no such process, and deleted them.
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix+".") {
			continue
		}
		pid36, _, ok := strings.Cut(f[0][len(prefix)+1:], "_")
		if !ok {
			continue
		}
		pid, err := strconv.ParseInt(pid36, 36, 64)
		if err != nil || pid <= 0 {
			continue
		}
		if _, err := os.Stat("/proc/" + strconv.FormatInt(pid, 10)); err == nil {
			continue // its process is alive: not ours to touch
		}
		if err := exec.Command("ip", "netns", "del", f[0]).Run(); err == nil {
			t.Logf("netnstest: removed namespace %s left by a dead process %d", f[0], pid)
		}
	}
}

// Prefix is the unique prefix of this environment's names.
func (e *Env) Prefix() string { return e.prefix }

// NS is one network namespace.
type NS struct {
	env  *Env
	Name string
}

// NS creates a namespace with its loopback up and removes it at cleanup.
func (e *Env) NS(name string) *NS {
	e.t.Helper()
	full := e.prefix + "-" + name
	e.mustIP("netns", "add", full)
	e.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", full).CombinedOutput(); err != nil {
			e.t.Logf("netnstest: remove namespace %s: %v: %s", full, err, out)
		}
	})
	n := &NS{env: e, Name: full}
	n.MustRun("ip", "link", "set", "lo", "up")
	return n
}

func (e *Env) mustIP(args ...string) {
	e.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		e.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Veth joins a (interface aIf) and b (interface bIf) with a veth pair and
// brings both ends up. Interface names are per namespace, so they need no
// prefix; keep them at most 15 bytes.
func (e *Env) Veth(a *NS, aIf string, b *NS, bIf string) {
	e.t.Helper()
	e.mustIP("-n", a.Name, "link", "add", "name", aIf, "type", "veth", "peer", "name", bIf, "netns", b.Name)
	a.MustRun("ip", "link", "set", aIf, "up")
	b.MustRun("ip", "link", "set", bIf, "up")
}

// Bridge creates bridge br in n with the given member interfaces, all up.
func (n *NS) Bridge(br string, members ...string) {
	n.env.t.Helper()
	n.MustRun("ip", "link", "add", "name", br, "type", "bridge")
	for _, m := range members {
		n.MustRun("ip", "link", "set", m, "master", br)
		n.MustRun("ip", "link", "set", m, "up")
	}
	n.MustRun("ip", "link", "set", br, "up")
}

// Addr assigns cidr (e.g. "10.77.0.2/24") to iface.
func (n *NS) Addr(iface, cidr string) {
	n.env.t.Helper()
	n.MustRun("ip", "addr", "add", cidr, "dev", iface)
}

// Tap creates a persistent TAP device in n (a driver attaches to it later
// with TUNSETIFF) and removes it with the namespace.
func (n *NS) Tap(name string) {
	n.env.t.Helper()
	n.MustRun("ip", "tuntap", "add", "dev", name, "mode", "tap")
}

// Cmd is a command that will run inside n.
func (n *NS) Cmd(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Run runs a command inside n and returns its combined output.
func (n *NS) Run(name string, args ...string) (string, error) {
	var buf bytes.Buffer
	c := n.Cmd(context.Background(), name, args...)
	c.Stdout, c.Stderr = &buf, &buf
	err := c.Run()
	if err != nil {
		return buf.String(), fmt.Errorf("in %s: %s %s: %w: %s", n.Name, name, strings.Join(args, " "), err, buf.String())
	}
	return buf.String(), nil
}

// MustRun is Run that fails the test on error.
func (n *NS) MustRun(name string, args ...string) string {
	n.env.t.Helper()
	out, err := n.Run(name, args...)
	if err != nil {
		n.env.t.Fatal(err)
	}
	return out
}

// Proc is a command started with Start.
type Proc struct {
	*exec.Cmd
	out *syncBuffer
}

// Output is what the command has printed so far (stdout and stderr).
func (p *Proc) Output() string { return p.out.String() }

// Start starts a long-running command inside n; it is killed at cleanup.
func (n *NS) Start(name string, args ...string) *Proc {
	n.env.t.Helper()
	buf := &syncBuffer{}
	c := n.Cmd(context.Background(), name, args...)
	c.Stdout, c.Stderr = buf, buf
	c.SysProcAttr = &unix.SysProcAttr{Setpgid: true, Pdeathsig: unix.SIGKILL}
	// A process that outlives this one may hold its output pipe (a daemon
	// restarted outside its group): Wait must still return once it exited.
	c.WaitDelay = 5 * time.Second
	if err := c.Start(); err != nil {
		n.env.t.Fatalf("in %s: start %s: %v", n.Name, name, err)
	}
	n.env.t.Cleanup(func() {
		if c.ProcessState == nil {
			_ = unix.Kill(-c.Process.Pid, unix.SIGKILL)
			_ = c.Wait()
		}
	})
	return &Proc{Cmd: c, out: buf}
}

// Do runs f on an OS thread switched into n. Sockets and devices opened in f
// stay in n after Do returns and may be used from any goroutine.
func (n *NS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is never unlocked: if switching back failed it must die
		// with the goroutine rather than run other code in the wrong place.
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open own namespace: %w", err)
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open("/run/netns/"+n.Name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("open namespace %s: %w", n.Name, err)
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter namespace %s: %w", n.Name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("leave namespace %s: %w", n.Name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// HasNetem reports whether the kernel has the netem qdisc (sch_netem).
func (n *NS) HasNetem(iface string) bool {
	if _, err := n.Run("tc", "qdisc", "add", "dev", iface, "root", "netem", "delay", "1ms"); err != nil {
		return false
	}
	_, _ = n.Run("tc", "qdisc", "del", "dev", iface, "root")
	return true
}

// WaitFor polls cond every 20 ms until it holds or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Link is a veth path between two namespaces through a middle one that
// impairs it (see ImpairedVeth).
type Link struct {
	Middle *NS
	// Netem says the kernel's netem qdisc does the impairing (on both
	// middle interfaces); otherwise Relay, the userspace stand-in, does.
	Netem bool
	Relay *Relay
}

// ImpairedVeth joins a (interface aIf) and b (interface bIf) through a third
// namespace named mid that impairs both directions with imp: with
// `tc netem` on a bridge when the kernel has sch_netem, else with a Relay.
func (e *Env) ImpairedVeth(a *NS, aIf string, b *NS, bIf string, mid string, imp Impairment) *Link {
	e.t.Helper()
	l := &Link{Middle: e.NS(mid)}
	e.Veth(a, aIf, l.Middle, "m0")
	e.Veth(l.Middle, "m1", b, bIf)
	if !l.Middle.HasNetem("m0") {
		l.Relay = l.Middle.StartRelay("m0", "m1", imp)
		return l
	}
	l.Netem = true
	l.Middle.Bridge("br0", "m0", "m1")
	for _, dev := range []string{"m0", "m1"} {
		args := []string{"qdisc", "add", "dev", dev, "root", "netem",
			"delay", fmt.Sprintf("%dus", imp.Delay.Microseconds())}
		if imp.Jitter > 0 {
			args = append(args, fmt.Sprintf("%dus", imp.Jitter.Microseconds()))
		}
		if imp.Loss > 0 {
			args = append(args, "loss", fmt.Sprintf("%g%%", imp.Loss*100))
		}
		if imp.Reorder > 0 {
			args = append(args, "reorder", fmt.Sprintf("%g%%", imp.Reorder*100))
		}
		l.Middle.MustRun("tc", args...)
	}
	return l
}

// WaitLinkUp waits until iface is up with carrier and its queueing
// discipline is active: until then the kernel silently drops what is sent
// on it (the noop qdisc), which a test that sends one frame would take for a
// lost answer.
func (n *NS) WaitLinkUp(iface string) {
	n.env.t.Helper()
	var out string
	if !WaitFor(5*time.Second, func() bool {
		out, _ = n.Run("ip", "-o", "link", "show", iface)
		return strings.Contains(out, "state UP") && !strings.Contains(out, "qdisc noop")
	}) {
		n.env.t.Fatalf("in %s: %s did not come up: %s", n.Name, iface, out)
	}
}

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Helpers of the `ftvs vs run` namespace tests.

// testNS is a network namespace made for one test (ftvs/internal/netnstest
// is internal to ftvs/, so cmd/ftvs has this small copy).
type testNS struct{ name string }

func newTestNS(t *testing.T, name string) *testNS {
	t.Helper()
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	return &testNS{name}
}

func (n *testNS) Run(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("in %s: %s: %w: %s", n.name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (n *testNS) MustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := n.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Do runs f on a thread inside n; the thread never leaves (it dies with
// the goroutine).
func (n *testNS) Do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == nil {
			err = unix.Setns(fd, unix.CLONE_NEWNET)
			unix.Close(fd)
		}
		if err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

// vethPair makes namespaces vs and cl joined by veth v0 (in vs, no address)
// and c0 (in cl, clientCIDR).
func vethPair(t *testing.T, prefix, clientCIDR string, tools ...string) (vs, cl *testNS) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (scripts/deps.sh installs it)", tool)
		}
	}
	var sfx [2]byte
	_, _ = rand.Read(sfx[:])
	vs, cl = newTestNS(t, prefix+hex.EncodeToString(sfx[:])+"-vs"), newTestNS(t, prefix+hex.EncodeToString(sfx[:])+"-cl")
	vs.MustRun(t, "ip", "link", "add", "name", "v0", "type", "veth", "peer", "name", "c0", "netns", cl.name)
	cl.MustRun(t, "ip", "addr", "add", clientCIDR, "dev", "c0")
	cl.MustRun(t, "ip", "link", "set", "c0", "up")
	return vs, cl
}

func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}

// runVS runs `ftvs vs run args...` in-process on a thread inside ns and
// returns a stop function that waits for it, fails on its error and
// returns what it printed.
func runVS(t *testing.T, ns *testNS, args ...string) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- ns.Do(func() error {
			root := newRootCmd()
			root.SetArgs(append([]string{"vs", "run"}, args...))
			root.SetErr(&stderr)
			return root.ExecuteContext(ctx)
		})
	}()
	stopped := false
	stop = func() string {
		t.Helper()
		if stopped {
			return stderr.String()
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("ftvs vs run: %v; output: %s", err, stderr.String())
			}
		case <-time.After(15 * time.Second):
			t.Fatalf("ftvs vs run did not stop; output: %s", stderr.String())
		}
		return stderr.String()
	}
	t.Cleanup(func() {
		if !stopped {
			cancel()
			<-done
		}
	})
	return stop
}

// lockedBuffer collects the VS's output, written from its goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

// Package qemuvm runs QEMU machines for tests and reads their serial
// console: the helpers of images/boottest (TCG only, console captured,
// process group killed at cleanup), importable so the end-to-end tests and
// the boot tests can share them. It refuses any argument asking for KVM:
// KVM hangs on the machines these tests run on.
package qemuvm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/images/kernel"
)

// FetchKernel is the set-up the QEMU test suites share. skip says why they
// cannot run (no qemu-system-x86_64, or no apt-get to fetch Debian's
// kernel); otherwise it fetches that kernel into the shared cache
// (images/kernel, returned as cache), with progress to progress.
func FetchKernel(ctx context.Context, progress io.Writer) (k *kernel.Kernel, cache, skip string, err error) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		return nil, "", "qemu-system-x86_64 not installed (Debian package qemu-system-x86)", nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return nil, "", "apt-get not available to fetch Debian's kernel", nil
	}
	if cache, err = kernel.DefaultCacheDir(); err != nil {
		return nil, "", "", err
	}
	if k, err = kernel.Fetch(ctx, cache, "", progress); err != nil {
		return nil, "", "", fmt.Errorf("fetching kernel: %w", err)
	}
	return k, cache, "", nil
}

// BaseArgs is the machine the tests use: q35 under TCG (never KVM), one
// vCPU, memMiB of RAM, no display, no reboot on panic, serial on stdio, and
// a virtio RNG (QEMU's default TCG CPU has no RDRAND: without a seeded RNG
// the guest blocks in getrandom).
func BaseArgs(memMiB int) []string {
	return []string{"-machine", "q35", "-accel", "tcg", "-m", fmt.Sprint(memMiB), "-smp", "1",
		"-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio",
		"-device", "virtio-rng-pci"}
}

// VM is one QEMU process whose serial console is captured.
type VM struct {
	Name  string
	Start time.Time
	cmd   *exec.Cmd
	stdin io.Closer
	done  chan struct{}
	mu    sync.Mutex
	out   bytes.Buffer
}

// Write collects console output (QEMU's stdout and stderr).
func (v *VM) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.Write(p)
}

// Console is everything the machine printed so far, without carriage returns.
func (v *VM) Console() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.ReplaceAll(v.out.String(), "\r", "")
}

// Start runs QEMU (through prefix, e.g. `ip netns exec NS`, when given).
// The process group is killed when the test ends; the console tail is
// logged if the test failed.
func Start(t testing.TB, name string, prefix []string, args ...string) *VM {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skipf("qemu-system-x86_64 not installed (Debian package qemu-system-x86): %v", err)
	}
	for _, a := range args {
		if strings.Contains(a, "kvm") {
			t.Fatalf("QEMU runs under TCG only here; argument %q asks for KVM", a)
		}
	}
	argv := append(append(append([]string{}, prefix...), qemu), args...)
	v := &VM{Name: name, done: make(chan struct{})}
	v.cmd = exec.Command(argv[0], argv[1:]...)
	v.cmd.Stdout, v.cmd.Stderr = v, v
	// An open stdin keeps u-root's shell (after the installer returns)
	// from exiting on EOF, which would panic the guest kernel.
	stdin, err := v.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	v.stdin = stdin
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	v.Start = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("%s: starting QEMU: %v", name, err)
	}
	go func() { v.cmd.Wait(); close(v.done) }()
	t.Cleanup(func() {
		v.Kill()
		if t.Failed() {
			t.Logf("console of %s:\n%s", name, Tail(v.Console(), 6000))
		}
	})
	return v
}

// Kill ends the machine at once (SIGKILL to its process group: a power
// cut) and waits for it.
func (v *VM) Kill() {
	v.stdin.Close()
	syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
	<-v.done
}

// Exited says whether QEMU has ended.
func (v *VM) Exited() bool {
	select {
	case <-v.done:
		return true
	default:
		return false
	}
}

// WaitFor waits until the console matches re and returns the time since
// QEMU started. It fails the test at the deadline or if QEMU exits first.
func (v *VM) WaitFor(t testing.TB, re *regexp.Regexp, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if re.MatchString(v.Console()) {
			return time.Since(v.Start)
		}
		if v.Exited() {
			if re.MatchString(v.Console()) {
				return time.Since(v.Start)
			}
			t.Fatalf("%s: QEMU exited before %q appeared on the console", v.Name, re)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q did not appear on the serial console within %v", v.Name, re, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

package boottest

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Firmware from Debian's ovmf package.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// bootTimeout bounds one boot to the banner under TCG on a loaded 2-core
// machine (measured 5-15 s idle, up to 65 s with the machine shared).
const bootTimeout = 240 * time.Second

// vm is one QEMU process whose serial console (stdio, -nographic) is
// captured for the test to wait on.
type vm struct {
	cmd    *exec.Cmd
	start  time.Time
	exited chan struct{}
	mu     sync.Mutex
	out    bytes.Buffer
}

func (v *vm) Write(p []byte) (int, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.out.Write(p)
}

func (v *vm) console() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return strings.ReplaceAll(v.out.String(), "\r", "")
}

// baseArgs is the machine every boot test uses: TCG (never KVM), 1 vCPU,
// 1 GiB, no display, no reboot on panic.
func baseArgs() []string {
	return []string{"-machine", "q35", "-accel", "tcg", "-m", "1024", "-smp", "1",
		"-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio",
		// QEMU's default TCG CPU has no RDRAND: seed the guest kernel's
		// RNG, or DHCP blocks in getrandom for minutes.
		"-device", "virtio-rng-pci"}
}

// ovmfArgs adds UEFI firmware with a private copy of the variable store.
func ovmfArgs(t *testing.T) []string {
	t.Helper()
	for _, p := range []string{ovmfCode, ovmfVars} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("OVMF not installed (Debian package ovmf): %v", err)
		}
	}
	vars := filepath.Join(t.TempDir(), "OVMF_VARS.fd")
	copyFile(t, ovmfVars, vars)
	return []string{
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file=" + ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file=" + vars,
	}
}

// startVM starts QEMU with args; the process group is killed in Cleanup.
func startVM(t *testing.T, args ...string) *vm {
	t.Helper()
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		t.Skipf("qemu-system-x86_64 not installed (Debian package qemu-system-x86): %v", err)
	}
	for _, a := range args {
		if strings.Contains(a, "kvm") {
			t.Fatalf("boot tests run under TCG only; argument %q asks for KVM", a)
		}
	}
	v := &vm{}
	v.cmd = exec.Command(qemu, args...)
	v.cmd.Stdout = v
	v.cmd.Stderr = v
	// An open stdin keeps the u-root shell (after `ftvs boot`) from exiting
	// on EOF and panicking the kernel while the test still reads.
	stdin, err := v.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	v.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	v.start = time.Now()
	if err := v.cmd.Start(); err != nil {
		t.Fatalf("starting QEMU: %v", err)
	}
	exited := make(chan struct{})
	v.exited = exited
	go func() { v.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		stdin.Close()
		syscall.Kill(-v.cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		if t.Failed() {
			t.Logf("console of %s:\n%s", filepath.Base(qemu), tail(v.console(), 4000))
		}
	})
	return v
}

// waitFor waits until the console shows want, and returns the time since
// QEMU started. It fails the test at the deadline or if QEMU exits.
func (v *vm) waitFor(t *testing.T, want string, timeout time.Duration) time.Duration {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(v.console(), want) {
			return time.Since(v.start)
		}
		select {
		case <-v.exited:
			if strings.Contains(v.console(), want) {
				return time.Since(v.start)
			}
			t.Fatalf("QEMU exited before %q appeared on the console", want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q did not appear on the serial console within %v", want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// line returns the first console line containing prefix.
func (v *vm) line(prefix string) string {
	for _, l := range strings.Split(v.console(), "\n") {
		if i := strings.Index(l, prefix); i >= 0 {
			return strings.TrimSpace(l[i:])
		}
	}
	return ""
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

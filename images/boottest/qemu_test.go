package boottest

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/images/e2e/qemuvm"
)

// Firmware from Debian's ovmf package.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// bootTimeout bounds one boot to the banner under TCG on a loaded 2-core
// machine (measured 5-15 s idle, up to 65 s with the machine shared).
const bootTimeout = 240 * time.Second

// vm is one QEMU machine (images/e2e/qemuvm: TCG only, serial console
// captured, process group killed in Cleanup) for the test to wait on.
type vm struct{ *qemuvm.VM }

func (v *vm) console() string { return v.Console() }

// baseArgs is the machine every boot test uses: TCG (never KVM), 1 vCPU,
// 1 GiB, no display, no reboot on panic, a virtio RNG (qemuvm.BaseArgs).
func baseArgs() []string { return qemuvm.BaseArgs(1024) }

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
	return &vm{qemuvm.Start(t, "qemu-system-x86_64", nil, args...)}
}

// waitFor waits until the console shows want, and returns the time since
// QEMU started. It fails the test at the deadline or if QEMU exits.
func (v *vm) waitFor(t *testing.T, want string, timeout time.Duration) time.Duration {
	t.Helper()
	return v.WaitFor(t, regexp.MustCompile(regexp.QuoteMeta(want)), timeout)
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

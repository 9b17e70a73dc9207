package wizard

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/ftvs/ftvs/installer/internal/ftvsbin"
	"github.com/ftvs/ftvs/installer/internal/nstest"
)

const key = "5f1c0d3e8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"

var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

// screen collects what the pseudo-terminal shows.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
	at  int // where the next expect starts looking
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *screen) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ansi.ReplaceAllString(s.buf.String(), "")
}

// expect waits until the screen shows want after the last match.
func (s *screen) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		txt := s.text()
		if i := strings.Index(txt[min(s.at, len(txt)):], want); i >= 0 {
			s.at += i + len(want)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("screen never showed %q; it shows:\n%s", want, s.text())
}

func writeFile(t *testing.T, p, s string) {
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func sparse(t *testing.T, p string, size int64) {
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(size)
	f.Close()
}

// TestWizardReachesTheConfigsPlan drives the wizard on node A through a
// pseudo-terminal while node B runs unattended, then runs node A again from
// the config the same answers mean: both runs print the same plan.
func TestWizardReachesTheConfigsPlan(t *testing.T) {
	tp := nstest.Build(t, "fi6")
	bin := ftvsbin.Path(t)
	dir := t.TempDir()
	inv, _ := filepath.Abs("../../testdata/installer/inventory.json")
	pol, _ := filepath.Abs("../../testdata/installer/hwpolicy.yaml")
	diskA, diskB := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	sparse(t, diskA, 1<<30)
	sparse(t, diskB, 1<<30)
	common := fmt.Sprintf(`version: 1
pair_key: %q
nics: {scan: all}
addresses:
  management: [10.0.0.11/24, 10.0.0.12/24]
  gateway: 10.0.0.1
virtual_disks:
  - {name: boot, size: 100MiB}
  - {name: data, size: 60MiB}
vs:
  mac: "02:f7:00:00:00:01"
  ip: 192.168.50.10/24
  gateway: 192.168.50.1
  services: [http, ftp, nbd]
hwcheck: {policy: %q}
`, key, pol)
	cfgA, cfgB := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	writeFile(t, cfgA, common+fmt.Sprintf("disk: {target: %q}\n", diskA))
	writeFile(t, cfgB, common+fmt.Sprintf("disk: {target: %q}\n", diskB))

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	peer := func(dry bool) (*exec.Cmd, *screen) {
		out := &screen{}
		args := []string{"netns", "exec", tp.NodeB, bin, "install", "--config", cfgB, "--inventory", inv, "--state-dir", filepath.Join(dir, "stateB")}
		if dry {
			args = append(args, "--dry-run")
		}
		cmd := exec.CommandContext(ctx, "ip", args...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill() })
		return cmd, out
	}

	// The wizard on node A.
	bcmd, bout := peer(true)
	saved := filepath.Join(dir, "saved.yaml")
	scr, werr := runWizard(t, ctx, tp.NodeA, bin, inv, pol, diskA, filepath.Join(dir, "stateA"), true, "--save", saved)
	berr := bcmd.Wait()
	if werr != nil || berr != nil {
		t.Fatalf("wizard: %v; peer: %v\n%s", werr, berr, bout.text())
	}
	wizPlan := planOf(t, scr.text())

	// Node A again, unattended, from the equivalent config.
	bcmd, bout = peer(true)
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", tp.NodeA, bin, "install", "--config", cfgA, "--dry-run",
		"--inventory", inv, "--state-dir", filepath.Join(dir, "stateA")).CombinedOutput()
	if err != nil {
		t.Fatalf("config run: %v\n%s", err, out)
	}
	if err := bcmd.Wait(); err != nil {
		t.Fatalf("peer: %v\n%s", err, bout.text())
	}
	cfgPlan := planOf(t, string(out))
	if wizPlan != cfgPlan {
		t.Fatalf("the wizard's plan differs from the config's:\n%s\n---\n%s", wizPlan, cfgPlan)
	}
	if b, err := os.ReadFile(saved); err != nil || !strings.Contains(string(b), diskA) {
		t.Fatalf("saved config: %v\n%s", err, b)
	}

	// And for real: the wizard confirms the plan and installs, node B
	// unattended; both disks are laid out, then the runtimes are launched
	// (or, without ftvs coserver in the build, both exit 3).
	runtime := exec.Command(bin, "coserver", "--help").Run() == nil
	bcmd, bout = peer(false)
	scr, werr = runWizard(t, ctx, tp.NodeA, bin, inv, pol, diskA, filepath.Join(dir, "stateA"), false)
	if runtime {
		bout.expect(t, "exec ftvs coserver --config")
		bcmd.Process.Kill()
		bcmd.Wait()
	} else {
		berr = bcmd.Wait()
		if code := exitCode(werr); code != 3 {
			t.Fatalf("wizard install: exit %d\n%s", code, scr.text())
		}
		if code := exitCode(berr); code != 3 {
			t.Fatalf("peer install: exit %d\n%s", code, bout.text())
		}
	}
	for _, d := range []string{diskA, diskB} {
		if out, err := exec.Command("sgdisk", "-v", d).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
			t.Fatalf("%s: %v\n%s", d, err, out)
		}
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// runWizard drives `ftvs install` without a config on a pseudo-terminal in
// namespace ns, typing the answers, and returns the screen and the exit.
func runWizard(t *testing.T, ctx context.Context, ns, bin, inv, pol, disk, state string, dry bool, extra ...string) (*screen, error) {
	t.Helper()
	args := []string{"netns", "exec", ns, bin, "install", "--all-nics", "--inventory", inv, "--state-dir", state}
	if dry {
		args = append(args, "--dry-run")
	}
	wcmd := exec.CommandContext(ctx, "ip", append(args, extra...)...)
	tty, err := pty.StartWithSize(wcmd, &pty.Winsize{Rows: 50, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	scr := &screen{}
	go func() { _, _ = io.Copy(scr, tty) }()
	answer := func(label, typed string) {
		t.Helper()
		scr.expect(t, label)
		time.Sleep(150 * time.Millisecond)
		tty.Write([]byte(typed + "\r"))
	}
	scr.expect(t, "Detected NICs")
	for _, n := range []string{"nic0", "nic1", "nic2", "nic3"} {
		scr.expect(t, n)
	}
	scr.expect(t, "Detected disks")
	answer("Pair key", key)
	answer("Management address of node 1", "10.0.0.11/24")
	answer("Management address of node 2", "10.0.0.12/24")
	answer("Management gateway", "10.0.0.1")
	answer("Target disk", "") // first item: enter a path
	answer("Disk path", disk)
	answer("VS boot disk size", "100MiB")
	answer("Further virtual disks", "data:60MiB")
	answer("VS MAC address", "02:f7:00:00:00:01")
	answer("VS address on the production LAN", "192.168.50.10/24")
	answer("VS gateway", "192.168.50.1")
	answer("VS services", "") // the default: http, ftp, nbd
	answer("hwcheck policy file", pol)
	if dry {
		scr.expect(t, "dry run: nothing written")
	} else {
		scr.expect(t, "Plan for node")
		answer("Install this plan now?", "") // first item: yes
		scr.expect(t, "[6/6] launch")
		if exec.Command(bin, "coserver", "--help").Run() == nil {
			// The runtime took over the console: it runs until stopped.
			scr.expect(t, "exec ftvs coserver --config")
			wcmd.Process.Kill()
		}
	}
	err = wcmd.Wait()
	t.Logf("wizard screen:\n%s", scr.text())
	return scr, err
}

// planOf cuts the plan out of an install's output.
func planOf(t *testing.T, s string) string {
	t.Helper()
	s = strings.ReplaceAll(s, "\r\n", "\n")
	i, j := strings.Index(s, "Plan for node"), strings.Index(s, "dry run: nothing written")
	if i < 0 || j < i {
		t.Fatalf("no plan in:\n%s", s)
	}
	return s[i:j]
}

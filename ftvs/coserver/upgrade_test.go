package coserver_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// managed gives both nodes of p a manager section (API on the management
// address, port 7444, one shared token) and its own copy of the executable.
func (p *pair) managed(t *testing.T, bin string) (token string) {
	t.Helper()
	token = filepath.Join(p.dir, "api-token")
	if err := os.WriteFile(token, []byte("fu8-test-token-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		cur, err := os.ReadFile(p.cfgPath(i)) // as newPair (or withDisks) wrote it
		if err != nil {
			t.Fatal(err)
		}
		cfg := string(cur) + fmt.Sprintf("manager: {listen: \"10.98.0.%d:7444\", token_file: %s, poll: 200ms}\n", i, token)
		if err := os.WriteFile(p.cfgPath(i), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(p.dir, fmt.Sprintf("bin%d", i))
		p.bin[i] = filepath.Join(dir, "ftvs")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, bin, p.bin[i])
	}
	return token
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
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

func (p *pair) apiCA(i int) string {
	return filepath.Join(p.dir, fmt.Sprintf("state%d", i), "manager", "api-cert.pem")
}

// apiStatus asks node i's manager API (from node 1's namespace, over the
// management bridge) through `ftvs ctl status --json`.
func (p *pair) apiStatus(i int, token string) (*state.Snapshot, error) {
	out, err := p.cs[1].Run(ftvsBin, "ctl", "--addr", fmt.Sprintf("10.98.0.%d:7444", i), "--ca", p.apiCA(i),
		"--token-file", token, "--json", "status")
	if err != nil {
		return nil, err
	}
	var s state.Snapshot
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return nil, fmt.Errorf("node %d api status: %w: %s", i, err, out)
	}
	return &s, nil
}

// TestRollingUpgrade upgrades both CoServers, one after the other, to a
// build whose VS snapshot section has a newer version, while a client
// downloads from the VS: the download completes intact and both nodes end
// on the new binary.
func TestRollingUpgrade(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	newBin := filepath.Join(t.TempDir(), "ftvs-new")
	if out, err := exec.Command("go", "build", "-tags", "ftvs_snapbump", "-ldflags", "-X main.version=fu8-new",
		"-o", newBin, "github.com/ftvs/ftvs/cmd/ftvs").CombinedOutput(); err != nil {
		t.Fatalf("build the new binary: %v\n%s", err, out)
	}
	p := newPair(t, pairOpts{prefix: "fu8", sizeMiB: 64})
	token := p.managed(t, ftvsBin)
	p.startPair()
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(1, token); return err == nil }) {
		t.Fatal("node 1's manager API does not answer")
	}
	d := p.download(p.file, "--limit-rate", "1500k")
	rx0 := p.rxBytes()
	p.waitProgress(rx0, 0.05)
	out, err := p.cs[1].Run(ftvsBin, "upgrade", "--binary", newBin, "--token-file", token, "--timeout", "150s",
		"--addr", "10.98.0.1:7444", "--exe", p.bin[1], "--ca", p.apiCA(1),
		"--addr", "10.98.0.2:7444", "--exe", p.bin[2], "--ca", p.apiCA(2))
	t.Logf("ftvs upgrade:\n%s", out)
	if err != nil {
		t.Fatalf("ftvs upgrade: %v", err)
	}
	select {
	case <-d.done:
		t.Log("note: the download ended before the upgrade did (slow machine?)")
	default:
	}
	p.check(d, "download across the rolling upgrade")
	for _, l := range strings.Split(p.procs[1].Output(), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") || strings.Contains(l, "re-exec") || strings.Contains(l, "starting") {
			t.Logf("node 1: %s", l)
		}
	}
	if st, err := p.status(2); err == nil {
		for _, e := range st.Events {
			t.Logf("node 2 event %s %s seq %d %s", e.Time.Format("15:04:05.000"), e.Kind, e.Seq, e.Detail)
		}
	}
	for i := 1; i <= 2; i++ {
		s, err := p.apiStatus(i, token)
		if err != nil {
			t.Fatal(err)
		}
		if c := s.CoServer(i); c == nil || c.Version != "fu8-new" || !c.InService {
			t.Fatalf("node %d after the upgrade: %+v", i, c)
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.procs[i].Process.Pid))
		if err != nil || strings.HasSuffix(exe, "(deleted)") {
			t.Fatalf("node %d runs %q (%v): not the renamed-in binary", i, exe, err)
		}
	}
}

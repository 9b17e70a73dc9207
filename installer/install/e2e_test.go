package install

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cscfg "github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/ftvs/ftvs/installer/internal/ftvsbin"
	"github.com/ftvs/ftvs/installer/internal/nstest"
	"github.com/ftvs/ftvs/installer/layout"
)

const key = "5f1c0d3e8a9b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"

// pairConfig is the install config both nodes get; only the disk differs.
func pairConfig(disk string) string {
	pol, _ := filepath.Abs("../../testdata/installer/hwpolicy.yaml")
	return fmt.Sprintf(`version: 1
pair_key: %q
nics: {scan: all, listen: 1500ms, wait: 30s}
addresses:
  management: [10.0.0.11/24, 10.0.0.12/24]
  gateway: 10.0.0.1
disk: {target: %q, esp_size: 48MiB, system_size: 48MiB}
virtual_disks:
  - {name: boot, size: 100MiB}
  - {name: data, size: 60MiB}
vs:
  mac: "02:f7:00:00:00:01"
  ip: 192.168.50.10/24
  gateway: 192.168.50.1
  services: [http, ftp, nbd]
hwcheck: {policy: %q}
`, key, disk, pol)
}

type node struct {
	ns, cfg, disk, state string
	inventory            string
	out                  bytes.Buffer
	code                 int
}

func newNode(t *testing.T, ns string) *node {
	dir := t.TempDir()
	n := &node{ns: ns, disk: filepath.Join(dir, "disk.img"), state: filepath.Join(dir, "state"), cfg: filepath.Join(dir, "install.yaml")}
	f, err := os.Create(n.disk)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(400 << 20)
	f.Close()
	if err := os.WriteFile(n.cfg, []byte(pairConfig(n.disk)), 0o600); err != nil {
		t.Fatal(err)
	}
	n.inventory, _ = filepath.Abs("../../testdata/installer/inventory.json")
	return n
}

// runBoth runs ftvs install on both nodes at once, each in its namespace.
func runBoth(t *testing.T, nodes []*node, extra ...string) {
	bin := ftvsbin.Path(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := append([]string{"netns", "exec", n.ns, bin, "install", "--config", n.cfg, "--inventory", n.inventory, "--state-dir", n.state}, extra...)
			cmd := exec.CommandContext(ctx, "ip", args...)
			cmd.Stdout, cmd.Stderr = &n.out, &n.out
			cmd.Run()
			n.code = cmd.ProcessState.ExitCode()
		}()
	}
	wg.Wait()
	for _, n := range nodes {
		t.Logf("%s (exit %d):\n%s", n.ns, n.code, n.out.String())
	}
}

func head(t *testing.T, p string) []byte {
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 2<<20)
	f.ReadAt(b, 0)
	return b
}

func untouched(t *testing.T, n *node) {
	t.Helper()
	if sigs, _ := layout.Inspect(n.disk); len(sigs) != 0 || !bytes.Equal(head(t, n.disk), make([]byte, 2<<20)) {
		t.Errorf("%s: disk was written: %v", n.ns, sigs)
	}
	if _, err := os.Stat(filepath.Join(n.state, "coserver.yaml")); err == nil {
		t.Errorf("%s: runtime config written", n.ns)
	}
}

var layoutRE = regexp.MustCompile(`(?m)^\s+\d+\s+ftvs-\S+\s+\S+\s+\d+\s+\d+\s+.*$`)

func TestUnattendedPairInstall(t *testing.T) {
	tp := nstest.Build(t, "fi6")
	a, b := newNode(t, tp.NodeA), newNode(t, tp.NodeB)
	runtime := hasRuntime(ftvsbin.Path(t))
	last := "not part of this build"
	if runtime {
		// The installers exec the runtimes, which must serve the VS.
		launchAndServe(t, tp, a, b)
		last = "exec ftvs coserver --config"
	} else {
		runBoth(t, []*node{a, b})
	}
	numbers := map[int]bool{}
	for _, n := range []*node{a, b} {
		if !runtime && n.code != 3 { // installed; ftvs coserver is not in this build
			t.Fatalf("%s: exit %d, want 3 (runtime missing)", n.ns, n.code)
		}
		out := n.out.String()
		for _, want := range []string{"[1/6] inventory", "[2/6] NICs", "[3/6] pairing", "verdict: MATCH", "[4/6] disk layout", "[5/6] runtime config", "[6/6] launch", last} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: output lacks %q", n.ns, want)
			}
		}
		rc, err := cscfg.Load(filepath.Join(n.state, "coserver.yaml"))
		if err != nil {
			t.Fatalf("%s: runtime config: %v", n.ns, err)
		}
		numbers[rc.Node] = true
		// Roles found without being told: crossovers nic1, nic3; the switched
		// NICs by the subnets they hear.
		if len(rc.Links) != 2 || rc.Links[0].Interface != tp.CrossNIC[0] || rc.Links[1].Interface != tp.CrossNIC[1] ||
			rc.Redirected.Interface != tp.ProdNIC || !strings.HasPrefix(rc.Management.Listen, fmt.Sprintf("10.0.0.1%d:", rc.Node)) {
			t.Errorf("%s: runtime config %+v", n.ns, rc)
		}
		if sg, err := exec.LookPath("sgdisk"); err == nil && !runtime { // a running runtime may be writing its disk
			out, err := exec.Command(sg, "-v", n.disk).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "No problems found") {
				t.Errorf("%s: sgdisk -v: %v\n%s", n.ns, err, out)
			}
		}
	}
	if !numbers[1] || !numbers[2] {
		t.Fatalf("node numbers %v", numbers)
	}
	// Both disks laid out identically (GUIDs aside).
	ta, tb := layoutRE.FindAllString(a.out.String(), -1), layoutRE.FindAllString(b.out.String(), -1)
	if len(ta) != 4 || strings.Join(ta, "\n") != strings.Join(tb, "\n") {
		t.Fatalf("layouts differ or missing:\n%s\n---\n%s", strings.Join(ta, "\n"), strings.Join(tb, "\n"))
	}
	if sg, err := exec.LookPath("sgdisk"); err == nil {
		pa, _ := exec.Command(sg, "-p", a.disk).Output()
		pb, _ := exec.Command(sg, "-p", b.disk).Output()
		parts := regexp.MustCompile(`(?m)^\s+\d+\s+\d+\s+\d+.*$`)
		if x, y := parts.FindAllString(string(pa), -1), parts.FindAllString(string(pb), -1); len(x) != 4 || strings.Join(x, "\n") != strings.Join(y, "\n") {
			t.Fatalf("sgdisk tables differ:\n%s\n---\n%s", pa, pb)
		}
	}
}

func TestMismatchedPairStopsBoth(t *testing.T) {
	tp := nstest.Build(t, "fi6")
	a, b := newNode(t, tp.NodeA), newNode(t, tp.NodeB)
	b.inventory, _ = filepath.Abs("../../testdata/installer/inventory-other-bios.json")
	runBoth(t, []*node{a, b})
	reports := []string{}
	for _, n := range []*node{a, b} {
		if n.code != 1 {
			t.Errorf("%s: exit %d, want 1 (mismatch)", n.ns, n.code)
		}
		out := n.out.String()
		if !regexp.MustCompile(`! fatal +bios.version: "3.0(c" vs "3.0d|d" vs "3.0c)"`).MatchString(out) || !strings.Contains(out, "verdict: MISMATCH") {
			t.Errorf("%s: no report", n.ns)
		}
		i, j := strings.Index(out, "A: node 1"), strings.Index(out, "verdict: MISMATCH")
		if i < 0 || j < i {
			continue
		}
		reports = append(reports, out[i:j])
		untouched(t, n)
	}
	if len(reports) != 2 || reports[0] != reports[1] {
		t.Fatal("the two consoles do not show the same report")
	}
}

func TestDryRunBothNodesSameLayout(t *testing.T) {
	tp := nstest.Build(t, "fi6")
	a, b := newNode(t, tp.NodeA), newNode(t, tp.NodeB)
	runBoth(t, []*node{a, b}, "--dry-run")
	for _, n := range []*node{a, b} {
		if n.code != 0 {
			t.Fatalf("%s: exit %d", n.ns, n.code)
		}
		out := n.out.String()
		for _, want := range []string{`NIC roles:`, `coserver link 1\s+nic1\s+169\.254\.77\.[12]/30`, `coserver link 2\s+nic3`,
			`redirected\s+nic0\s+VS 02:f7:00:00:00:01`, `management\s+nic2\s+10\.0\.0\.1[12]/24`, `Disk ` + regexp.QuoteMeta(n.disk) + ` \(400 MiB\): unused`,
			`dry run: nothing written`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("%s: plan lacks %s", n.ns, want)
			}
		}
		untouched(t, n)
	}
	ta, tb := layoutRE.FindAllString(a.out.String(), -1), layoutRE.FindAllString(b.out.String(), -1)
	if len(ta) != 4 || strings.Join(ta, "\n") != strings.Join(tb, "\n") {
		t.Fatalf("layouts differ:\n%s\n---\n%s", strings.Join(ta, "\n"), strings.Join(tb, "\n"))
	}
}

func TestBadConfigExitsBeforeTouching(t *testing.T) {
	bin := ftvsbin.Path(t)
	n := newNode(t, "")
	bad := strings.Replace(pairConfig(n.disk), "nics: {scan: all, listen: 1500ms, wait: 30s}", "nics: {scan: all, management: nosuchnic7}", 1)
	os.WriteFile(n.cfg, []byte(bad), 0o600)
	out, err := exec.Command(bin, "install", "--config", n.cfg, "--state-dir", n.state).CombinedOutput()
	if code := exitCode(err); code != 2 || !strings.Contains(string(out), n.cfg+":3: nics.management: no NIC name:nosuchnic7") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	untouched(t, n)
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

// hasRuntime says whether this build has `ftvs coserver`.
func hasRuntime(bin string) bool {
	return exec.Command(bin, "coserver", "--help").Run() == nil
}

// syncBuf is a bytes.Buffer safe to read while a process writes it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// launchAndServe is the install with the runtime in the build: both
// installers exec ftvs coserver, and the VS answers HTTP on the production
// LAN with the page the installer put on its boot disk.
func launchAndServe(t *testing.T, tp *nstest.Topology, nodes ...*node) {
	bin := ftvsbin.Path(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	outs := make([]*syncBuf, len(nodes))
	for i, n := range nodes {
		outs[i] = &syncBuf{}
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.ns, bin, "install", "--config", n.cfg, "--inventory", n.inventory, "--state-dir", n.state)
		cmd.Stdout, cmd.Stderr = outs[i], outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	defer func() {
		for i, n := range nodes {
			n.out.WriteString(outs[i].String())
			t.Logf("%s:\n%s", n.ns, outs[i].String())
		}
	}()
	if out, err := exec.Command("ip", "-n", tp.Prod, "addr", "add", "192.168.50.20/24", "dev", "br0").CombinedOutput(); err != nil {
		t.Fatalf("client address: %v\n%s", err, out)
	}
	for {
		page, err := exec.CommandContext(ctx, "ip", "netns", "exec", tp.Prod, "curl", "-sf", "--max-time", "2", "http://192.168.50.10/index.html").Output()
		if err == nil && strings.Contains(string(page), "ftvs virtual server 192.168.50.10") {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the VS never served its page: %v", err)
		}
		time.Sleep(time.Second)
	}
}

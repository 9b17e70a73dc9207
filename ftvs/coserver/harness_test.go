package coserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// The integration tests run the real binary (ftvs coserver) as two processes
// in namespaces, with a production bridge, a management bridge, two
// crossover links and a client namespace running curl.

var ftvsBin string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "fd4bin")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			ftvsBin = filepath.Join(dir, "ftvs")
			out, err := exec.Command("go", "build", "-o", ftvsBin, "github.com/ftvs/ftvs/cmd/ftvs").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "build ftvs: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

const (
	vsIP  = "10.97.0.100"
	vsMAC = "02:f7:00:00:00:01"
)

type pair struct {
	t       *testing.T
	env     *netnstest.Env
	lan     *netnstest.NS
	cs      [3]*netnstest.NS // 1, 2
	cli     *netnstest.NS
	dir     string
	key     string
	procs   [3]*netnstest.Proc
	file    string // served file name
	wantSum string
	size    int64
	extra   string // appended to both configs
	env2    [3][]string
	bin     [3]string // node i's executable when not ftvsBin (rolling upgrade)
}

type pairOpts struct {
	sizeMiB int
	extra   string // YAML appended to both configs
	// impair, when set, builds the crossover links through a middle
	// namespace that delays and drops.
	impair *netnstest.Impairment
	// timeouts is the config's timeouts section (default: peer and link
	// silence 250 ms: this test machine is shared and loaded, and a
	// silence the pair takes for a dead peer resynchronises the secondary).
	timeouts string
	// prefix names the namespaces (default fd4), so tests of other
	// features run beside these.
	prefix string
}

func newPair(t *testing.T, o pairOpts) *pair {
	t.Helper()
	if o.prefix == "" {
		o.prefix = "fd4"
	}
	env := netnstest.New(t, o.prefix, "curl")
	if o.timeouts == "" {
		o.timeouts = "{peer_dead: 250ms, link_dead: 250ms}"
	}
	p := &pair{t: t, env: env, dir: t.TempDir(), extra: "timeouts: " + o.timeouts + "\n" + o.extra}
	var kb [32]byte
	_, _ = rand.Read(kb[:])
	p.key = hex.EncodeToString(kb[:])
	p.lan = env.NS("lan")
	p.cli = env.NS("cli")
	for i := 1; i <= 2; i++ {
		p.cs[i] = env.NS(fmt.Sprintf("c%d", i))
	}
	var prodPorts, mgmtPorts []string
	for i := 1; i <= 2; i++ {
		env.Veth(p.cs[i], "prod", p.lan, fmt.Sprintf("p%d", i))
		env.Veth(p.cs[i], "mgmt", p.lan, fmt.Sprintf("m%d", i))
		p.cs[i].Addr("mgmt", fmt.Sprintf("10.98.0.%d/24", i))
		prodPorts = append(prodPorts, fmt.Sprintf("p%d", i))
		mgmtPorts = append(mgmtPorts, fmt.Sprintf("m%d", i))
	}
	env.Veth(p.cli, "eth0", p.lan, "pc")
	p.cli.Addr("eth0", "10.97.0.10/24")
	p.lan.Bridge("brp", append(prodPorts, "pc")...)
	p.lan.Bridge("brm", mgmtPorts...)
	for l := 1; l <= 2; l++ {
		ifn := fmt.Sprintf("cs%d", l)
		if o.impair != nil {
			lk := env.ImpairedVeth(p.cs[1], ifn, p.cs[2], ifn, fmt.Sprintf("x%d", l), *o.impair)
			if l == 1 {
				t.Logf("CoServer links impaired by netem=%v (else the userspace relay)", lk.Netem)
			}
		} else {
			env.Veth(p.cs[1], ifn, p.cs[2], ifn)
		}
		p.cs[1].Addr(ifn, fmt.Sprintf("10.99.%d.1/24", l))
		p.cs[2].Addr(ifn, fmt.Sprintf("10.99.%d.2/24", l))
	}
	www := filepath.Join(p.dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if o.sizeMiB == 0 {
		o.sizeMiB = 256
	}
	p.file = "big.bin"
	p.size = int64(o.sizeMiB) << 20
	p.wantSum = writeRandom(t, filepath.Join(www, p.file), p.size)
	if err := os.WriteFile(filepath.Join(www, "small.txt"), []byte("small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		if err := os.WriteFile(p.cfgPath(i), []byte(p.config(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := 1; i <= 2; i++ {
				if p.procs[i] != nil {
					out := p.procs[i].Output()
					if len(out) > 6000 {
						out = out[len(out)-6000:]
					}
					t.Logf("node %d log (tail):\n%s", i, out)
				}
			}
		}
	})
	return p
}

func writeRandom(t *testing.T, path string, size int64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (p *pair) cfgPath(i int) string { return filepath.Join(p.dir, fmt.Sprintf("node%d.yaml", i)) }

func (p *pair) config(i int) string {
	o := 3 - i
	return fmt.Sprintf(`node: %d
pair_key: %s
links:
  - {interface: cs1, local: "10.99.1.%d:7470", peer: "10.99.1.%d:7470"}
  - {interface: cs2, local: "10.99.2.%d:7470", peer: "10.99.2.%d:7470"}
redirected: {interface: prod}
management: {listen: "10.98.0.%d:7443", peer: "10.98.0.%d:7443"}
vs:
  mac: "%s"
  ip: %s/24
  services: {http: {port: 80}, ftp: {port: 21}}
  content: %s
state_dir: %s
%s`, i, p.key, i, o, i, o, i, o, vsMAC, vsIP, filepath.Join(p.dir, "www"), filepath.Join(p.dir, fmt.Sprintf("state%d", i)), p.extra)
}

// start runs node i's daemon (again).
func (p *pair) start(i int, env ...string) {
	p.t.Helper()
	// A CoServer daemon is its machine's main job: run it ahead of the other
	// jobs sharing this test machine (nice), as a production unit would.
	args := []string{"nice", "-n", "-10", "env"}
	args = append(args, env...)
	bin := ftvsBin
	if p.bin[i] != "" {
		bin = p.bin[i]
	}
	args = append(args, bin, "coserver", "--config", p.cfgPath(i))
	p.procs[i] = p.cs[i].Start(args[0], args[1:]...)
}

// kill sends SIGKILL to node i's daemon (the env process execs it).
func (p *pair) kill(i int) {
	p.t.Helper()
	pr := p.procs[i]
	_ = syscall.Kill(-pr.Process.Pid, syscall.SIGKILL)
	_ = pr.Wait()
}

func (p *pair) status(i int) (*coserver.Status, error) {
	// Through the binary: Go's HTTP client dials on threads outside the
	// namespace.
	out, err := p.cs[i].Run(ftvsBin, "status", "--json", "--addr", fmt.Sprintf("10.98.0.%d:7443", i))
	if err != nil {
		return nil, err
	}
	var st coserver.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("status of node %d: %w", i, err)
	}
	return &st, nil
}

// waitRole waits until node i reports role (and, for a primary, peer state).
func (p *pair) waitRole(i int, role, peer string, timeout time.Duration) *coserver.Status {
	p.t.Helper()
	var last *coserver.Status
	ok := netnstest.WaitFor(timeout, func() bool {
		st, err := p.status(i)
		if err != nil {
			return false
		}
		last = st
		return st.Role == role && (peer == "" || st.Peer == peer)
	})
	if !ok {
		p.t.Fatalf("node %d: not %s/%s after %s; last status %+v", i, role, peer, timeout, last)
	}
	return last
}

// startPair starts both nodes and waits until node 1 is primary with node 2
// in sync.
func (p *pair) startPair() {
	p.t.Helper()
	p.start(1)
	p.start(2)
	p.waitRole(1, "primary", "synced", 20*time.Second)
	p.waitRole(2, "secondary", "", 5*time.Second)
}

// download is one curl run in the client namespace, measured as it arrives.
type download struct {
	cmd    *exec.Cmd
	done   chan struct{}
	res    coserver.StreamResult
	stderr bytes.Buffer
	err    error
	got    sync.Mutex
}

func (p *pair) download(path string, extra ...string) *download {
	return p.fetch("http://"+vsIP+"/"+path, extra...)
}

func (p *pair) fetch(url string, extra ...string) *download {
	p.t.Helper()
	args := append([]string{"-sS", "--fail", "--max-time", "180"}, extra...)
	args = append(args, url)
	d := &download{done: make(chan struct{})}
	d.cmd = p.cli.Cmd(context.Background(), "curl", args...)
	d.cmd.Stderr = &d.stderr
	out, err := d.cmd.StdoutPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() {
		if d.cmd.ProcessState == nil {
			_ = d.cmd.Process.Kill()
		}
		<-d.done
	})
	go func() {
		d.res = coserver.MeasureStream(out, io.Discard)
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	return d
}

// received is how many bytes the client's interface has taken in so far.
func (p *pair) rxBytes() int64 {
	out, err := p.cli.Run("cat", "/sys/class/net/eth0/statistics/rx_bytes")
	if err != nil {
		return 0
	}
	var n int64
	fmt.Sscan(strings.TrimSpace(out), &n)
	return n
}

// waitProgress waits until the client received frac of the file since rx0.
func (p *pair) waitProgress(rx0 int64, frac float64) {
	p.t.Helper()
	if !netnstest.WaitFor(120*time.Second, func() bool { return float64(p.rxBytes()-rx0) >= frac*float64(p.size) }) {
		p.t.Fatalf("download did not reach %.0f%%", frac*100)
	}
}

// check waits for a download and asserts it is complete and intact.
func (p *pair) check(d *download, what string) time.Duration {
	p.t.Helper()
	select {
	case <-d.done:
	case <-time.After(200 * time.Second):
		p.t.Fatalf("%s: download did not finish", what)
	}
	if d.err != nil {
		p.t.Fatalf("%s: curl failed: %v: %s", what, d.err, d.stderr.String())
	}
	if d.res.Bytes != p.size {
		p.t.Fatalf("%s: %d bytes, want %d", what, d.res.Bytes, p.size)
	}
	if got := hex.EncodeToString(d.res.Sum[:]); got != p.wantSum {
		p.t.Fatalf("%s: sha256 %s, want %s", what, got, p.wantSum)
	}
	p.t.Logf("%s: %d bytes intact in %.2fs, longest stall %s (at byte %d)", what, d.res.Bytes, d.res.Elapsed.Seconds(), d.res.MaxStall.Round(time.Millisecond), d.res.StallAt)
	return d.res.MaxStall
}

// splitSite cuts the pair into two sites and waits until both nodes have
// gone live: node 2's production port and a second client (cli2,
// 10.97.0.11, returned) move to a LAN bridge of their own, management is
// blackholed both ways, then the CoServer links go down.
func (p *pair) splitSite() *netnstest.NS {
	p.t.Helper()
	cli2 := p.env.NS("cli2")
	p.env.Veth(cli2, "eth0", p.lan, "pc2")
	cli2.Addr("eth0", "10.97.0.11/24")
	p.lan.Bridge("brp2", "pc2")
	p.lan.MustRun("ip", "link", "set", "p2", "master", "brp2")
	p.cs[1].MustRun("ip", "route", "add", "blackhole", "10.98.0.2/32")
	p.cs[2].MustRun("ip", "route", "add", "blackhole", "10.98.0.1/32")
	p.cs[2].MustRun("ip", "link", "set", "cs1", "down")
	p.cs[2].MustRun("ip", "link", "set", "cs2", "down")
	p.waitRole(2, "primary", "", 20*time.Second)
	p.waitRole(1, "primary", "none", 5*time.Second)
	return cli2
}

// healManagement undoes splitSite's management blackholes.
func (p *pair) healManagement() {
	p.cs[1].MustRun("ip", "route", "del", "blackhole", "10.98.0.2/32")
	p.cs[2].MustRun("ip", "route", "del", "blackhole", "10.98.0.1/32")
}

// healLinks brings splitSite's CoServer links back up.
func (p *pair) healLinks() {
	p.cs[2].MustRun("ip", "link", "set", "cs1", "up")
	p.cs[2].MustRun("ip", "link", "set", "cs2", "up")
}

// healLAN moves node 2's port and splitSite's second client back onto the
// one production bridge.
func (p *pair) healLAN() {
	p.lan.MustRun("ip", "link", "set", "p2", "master", "brp")
	p.lan.MustRun("ip", "link", "set", "pc2", "master", "brp")
}

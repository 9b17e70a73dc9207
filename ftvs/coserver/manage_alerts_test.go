package coserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// syslogSink collects RFC 5424 datagrams in node 1's namespace.
type syslogSink struct {
	mu   sync.Mutex
	msgs []string
	addr string
}

func newSyslogSink(t *testing.T, p *pair, addr string) *syslogSink {
	t.Helper()
	var pc net.PacketConn
	if err := p.cs[1].Do(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &syslogSink{addr: pc.LocalAddr().String()}
	go func() {
		buf := make([]byte, 8192)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *syslogSink) has(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if strings.HasPrefix(m, "<") && strings.Contains(m, "[ftvs@32473 ") && strings.Contains(m, `kind="`+kind+`"`) {
			return true
		}
	}
	return false
}

// slowHook accepts connections and answers nothing for a long time: a
// receiver that hangs.
func newSlowHook(t *testing.T, p *pair, addr string) (hits func() int) {
	t.Helper()
	var ln net.Listener
	if err := p.cs[1].Do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		select {
		case <-release:
		case <-time.After(2 * time.Minute):
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(release); srv.Close() })
	return func() int { mu.Lock(); defer mu.Unlock(); return n }
}

func (w *webhookSink) count(kind string, node int, host string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	c := 0
	for _, a := range w.got {
		if a["kind"] == kind && (node < 0 || a["node"] == float64(node) || (node == 0 && a["node"] == nil)) && (host == "" || a["host"] == host) {
			c++
		}
	}
	return c
}

func (w *webhookSink) dump() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var b strings.Builder
	for _, a := range w.got {
		fmt.Fprintf(&b, "  %v %v node=%v %v %v\n", a["host"], a["kind"], a["node"], a["component"], a["detail"])
	}
	return b.String()
}

// slowSilence: these tests are about the manager, not failover speed; a
// peer silent for a second on this shared, loaded machine is rarer than
// one silent for the harness's default 250 ms, which fails over.
const slowSilence = "{peer_dead: 1s, link_dead: 1s}"

// syncedDisks gives both nodes a copy of an 8 MiB mirrored disk, synced
// offline (ftvs vdisk resync): for a test whose nodes first start alone,
// each on its own copy (a new copy is Inconsistent and never goes live
// alone). A pair that starts together needs no such step: withDisks.
func (p *pair) syncedDisks(t *testing.T) [3]string {
	t.Helper()
	copies := p.withDisks(t, "8MiB")
	if out, err := exec.Command(ftvsBin, "vdisk", "resync", copies[1], copies[2]).CombinedOutput(); err != nil {
		t.Fatalf("vdisk resync: %v: %s", err, out)
	}
	return copies
}

// TestManagerAlertsFromRealDaemon provokes the alert kinds on a real pair
// and checks each reaches a webhook (and syslog) with the right kind and
// node: the witness configured at a dead address (witness-unreachable), one
// CoServer link cut (link-lost, link-back), the secondary killed
// (coserver-lost, and both links lost again) and restarted (coserver-back,
// and resync-done when its disk copy has met the primary's again),
// restarted with the TEST-ONLY diverge hook (divergence). The rate limit
// allows two alerts per kind and window: the third link-lost is held back,
// distinct kinds still all arrive. A second webhook that never
// answers does not hold back the first one, the status endpoint or the VS.
func TestManagerAlertsFromRealDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p := newPair(t, pairOpts{prefix: "fmg", sizeMiB: 1, timeouts: slowSilence})
	hook := newWebhookSink(t, p)
	slowHits := newSlowHook(t, p, "10.98.0.1:9098")
	sl := newSyslogSink(t, p, "10.98.0.1:5514")
	p.extra += "witness: \"10.98.0.1:9\"\n" + // nothing listens there
		fmt.Sprintf("alerts: {rate_limit: {per_kind: 2, window: 10m}, retry: {attempts: 2, initial: 100ms}, "+
			"webhooks: [{url: \"http://10.98.0.1:9098/slow\"}, {url: \"http://%s/alert\"}], "+
			"syslog: [{network: udp, address: \"%s\"}]}\n", hook.addr, sl.addr)
	p.withDisks(t, "8MiB") // new copies: the pair runs the initial sync
	token := p.managed(t, ftvsBin)
	p.start(1)
	p.start(2)
	p.waitRole(1, "primary", "synced", 60*time.Second)
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(1, token); return err == nil }) {
		t.Fatal("node 1's manager API does not answer")
	}

	// The witness: only the primary asks it; it never answers.
	if !netnstest.WaitFor(20*time.Second, func() bool { return hook.count("witness-unreachable", 0, "coserver1") > 0 }) {
		t.Fatalf("no witness-unreachable from node 1's manager; got:\n%s", hook.dump())
	}
	s1, err := p.apiStatus(1, token)
	if err != nil {
		t.Fatal(err)
	}
	if !s1.Witness.Configured || !s1.Witness.Checked || s1.Witness.Reachable || s1.Witness.Health != "failed" {
		t.Fatalf("manager's witness: %+v, want configured, checked, unreachable, failed", s1.Witness)
	}
	if len(s1.Disks) != 2 || s1.Disks[0].State != "UpToDate" || s1.Disks[1].State != "UpToDate" {
		t.Fatalf("manager's disks: %+v, want both copies UpToDate", s1.Disks)
	}

	// One CoServer link cut, three times: link-lost for it each time (the
	// pair keeps running on the other), two alerts (the limit).
	linkUp := func(want bool) bool {
		s, err := p.apiStatus(1, token)
		if err != nil {
			return false
		}
		for _, l := range s.Links {
			if l.Name == "link2" {
				return l.Up == want
			}
		}
		return false
	}
	for i := 0; i < 3; i++ {
		if _, err := p.cs[1].Run("ip", "link", "set", "cs2", "down"); err != nil {
			t.Fatal(err)
		}
		if !netnstest.WaitFor(20*time.Second, func() bool { return linkUp(false) }) {
			t.Fatal("the manager does not show link2 down")
		}
		if i == 0 && !netnstest.WaitFor(20*time.Second, func() bool { return hook.count("link-lost", 0, "coserver1") > 0 }) {
			t.Fatalf("no link-lost; got:\n%s", hook.dump())
		}
		if _, err := p.cs[1].Run("ip", "link", "set", "cs2", "up"); err != nil {
			t.Fatal(err)
		}
		if !netnstest.WaitFor(30*time.Second, func() bool { return linkUp(true) }) {
			t.Fatal("the manager does not show link2 back up")
		}
	}
	if !netnstest.WaitFor(10*time.Second, func() bool { return hook.count("link-back", 0, "coserver1") > 0 }) {
		t.Fatalf("no link-back; got:\n%s", hook.dump())
	}
	p.waitRole(1, "primary", "synced", 20*time.Second)

	// The slow webhook holds its first alert; the status endpoint and the
	// VS answer meanwhile.
	if slowHits() == 0 {
		t.Fatal("the slow webhook got no request: the test does not test a hanging receiver")
	}
	t0 := time.Now()
	if _, err := p.status(1); err != nil || time.Since(t0) > 2*time.Second {
		t.Fatalf("status while a webhook hangs: %v after %s", err, time.Since(t0))
	}
	p.check(p.download(p.file), "download while a webhook hangs")

	// The secondary lost, then back with the diverge hook: its disk copy
	// meets the primary's again (resync-done), then its replica diverges on
	// the next frame.
	resyncs := hook.count("resync-done", 2, "coserver1") // the initial full sync may have sent one
	p.kill(2)
	if !netnstest.WaitFor(20*time.Second, func() bool { return hook.count("coserver-lost", 2, "coserver1") > 0 }) {
		t.Fatalf("no coserver-lost for node 2; got:\n%s", hook.dump())
	}
	p.start(2, "FTVS_TEST_FAULTS=i-want-this-replica-to-diverge", "FTVS_TEST_DIVERGE_AT_SEQ=1")
	p.waitRole(1, "primary", "synced", 60*time.Second)
	if !netnstest.WaitFor(20*time.Second, func() bool { return hook.count("coserver-back", 2, "coserver1") > 0 }) {
		t.Fatalf("no coserver-back for node 2; got:\n%s", hook.dump())
	}
	if !netnstest.WaitFor(20*time.Second, func() bool { return hook.count("resync-done", 2, "coserver1") > resyncs }) {
		t.Fatalf("no resync-done for node 2's copy after its restart; got:\n%s", hook.dump())
	}
	p.fetch("http://" + vsIP + "/small.txt")
	if !netnstest.WaitFor(30*time.Second, func() bool { return hook.count("divergence", 1, "coserver1") > 0 }) {
		t.Fatalf("no divergence reported by node 1 (the primary compares); got:\n%s", hook.dump())
	}

	// Syslog got them too (RFC 5424 with the alert as structured data).
	for _, k := range []string{"witness-unreachable", "link-lost", "coserver-lost", "divergence"} {
		if !netnstest.WaitFor(10*time.Second, func() bool { return sl.has(k) }) {
			sl.mu.Lock()
			t.Fatalf("syslog: no %s in %d messages: %q", k, len(sl.msgs), sl.msgs)
		}
	}
	// Two per kind and window from each manager: link2 was lost three
	// times (and both links with node 2), two alerts went out.
	s1, err = p.apiStatus(1, token)
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, e := range s1.Events {
		if e.Kind == "link-lost" {
			lost++
		}
	}
	if n := hook.count("link-lost", 0, "coserver1"); lost < 3 || n != 2 {
		t.Errorf("%d link-lost events, %d alerts from node 1: want 3 or more events and 2 alerts (the limit)", lost, n)
	}
	// The manager's figures from the daemon: the output-hold histogram and
	// the VS's requests.
	if h := s1.Counters.OutputHold; h.Count == 0 || len(h.Bounds) == 0 || h.Counts[len(h.Counts)-1] > h.Count {
		t.Errorf("output-hold histogram %+v: want observations", h)
	}
	if s1.Counters.ServiceRequests["http"] < 1 || s1.Counters.FramesIn == 0 || s1.Counters.BytesOut == 0 || s1.Counters.LinkBytesOut == 0 || s1.Counters.LinkBytesIn == 0 {
		t.Errorf("figures %+v: want http requests and port counters", s1.Counters)
	}
	b, _ := json.Marshal(s1.Counters)
	t.Logf("counters: %s", b)

	// The Prometheus exposition of the real daemon carries them, and
	// promtool accepts it.
	expo, err := p.cs[1].Run(ftvsBin, "ctl", "--addr", "10.98.0.1:7444", "--ca", p.apiCA(1), "--token-file", token, "metrics")
	if err != nil {
		t.Fatalf("ctl metrics: %v\n%s", err, expo)
	}
	for _, m := range []string{`ftvs_output_hold_seconds_bucket{le="0.001"}`, `ftvs_service_requests_total{service="http"}`,
		`ftvs_disk_copy_state{disk="data",node="2",state="UpToDate"} 1`, "ftvs_witness_reachable 0", `ftvs_bytes_total{direction="out"}`,
		"ftvs_resync_bytes_total", "ftvs_log_lag_inputs"} {
		if !strings.Contains(expo, m) {
			t.Errorf("exposition lacks %s", m)
		}
	}
	if bin, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(bin, "check", "metrics")
		cmd.Stdin = strings.NewReader(expo)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	} else {
		t.Log("promtool not installed: exposition not checked by it")
	}
	t.Logf("alerts:\n%s", hook.dump())
}

// TestManagerVSStopStartResync stops the VS through the API (at the
// secondary's: the pair stops, both CoServers show vs-stopped, the VS
// answers nothing), restarts one CoServer (the stop holds), starts the VS
// at the other API (a fresh boot: the pair serves again), then asks the
// primary's API for a resync of the disk: the secondary's copy is copied
// again from the primary's. Last, a CoServer down during a stop adopts it
// when it comes back.
func TestManagerVSStopStartResync(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p := newPair(t, pairOpts{prefix: "fmh", sizeMiB: 1, timeouts: slowSilence})
	copies := p.withDisks(t, "8MiB") // new copies: the pair runs the initial sync
	token := p.managed(t, ftvsBin)
	p.start(1)
	p.start(2)
	p.waitRole(1, "primary", "synced", 60*time.Second)
	ctl := func(i int, args ...string) (map[string]any, error) {
		a := append([]string{"ctl", "--addr", fmt.Sprintf("10.98.0.%d:7444", i), "--ca", p.apiCA(i), "--token-file", token, "--json"}, args...)
		out, err := p.cs[1].Run(ftvsBin, a...)
		if err != nil {
			return nil, fmt.Errorf("ftvs %s: %w: %s", strings.Join(args, " "), err, out)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			return nil, fmt.Errorf("ftvs %s --json: %w: %s", strings.Join(args, " "), err, out)
		}
		return r, nil
	}
	for i := 1; i <= 2; i++ {
		if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(i, token); return err == nil }) {
			t.Fatalf("node %d's manager API does not answer", i)
		}
	}
	p.check(p.download(p.file), "download before the stop")

	// Stop, at the secondary's API.
	t0 := time.Now()
	if r, err := ctl(2, "vs", "stop"); err != nil || r["ok"] != true {
		t.Fatalf("vs stop: %v %v", r, err)
	}
	for i := 1; i <= 2; i++ {
		if st := p.waitRole(i, "vs-stopped", "", 30*time.Second); !st.VSStopped || st.VSStoppedAt.IsZero() {
			t.Fatalf("node %d status %+v: want vs_stopped with its time", i, st)
		}
	}
	t.Logf("vs stop: both CoServers stopped %s after the call", time.Since(t0).Round(time.Millisecond))
	d := p.fetch("http://"+vsIP+"/small.txt", "--max-time", "3")
	<-d.done
	if d.err == nil {
		t.Fatalf("the stopped VS answered: %d bytes", d.res.Bytes)
	}
	if !netnstest.WaitFor(10*time.Second, func() bool {
		s, err := p.apiStatus(1, token)
		return err == nil && s.VS.Stopped && !s.VS.Running
	}) {
		s, err := p.apiStatus(1, token)
		t.Fatalf("the manager does not show the VS stopped: %+v %v", s, err)
	}
	// The stop survives a restart.
	p.kill(1)
	p.start(1)
	p.waitRole(1, "vs-stopped", "", 20*time.Second)
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(1, token); return err == nil }) {
		t.Fatal("node 1's manager API does not answer while stopped")
	}
	// A resync needs a running VS.
	if _, err := ctl(1, "resync", "data"); err == nil {
		t.Fatal("resync accepted while the VS is stopped")
	}

	// Start, at node 1's API: node 1 was the primary at the stop and boots
	// the VS; node 2 joins it.
	t0 = time.Now()
	if r, err := ctl(1, "vs", "start"); err != nil || r["ok"] != true {
		t.Fatalf("vs start: %v %v", r, err)
	}
	p.waitRole(1, "primary", "synced", 60*time.Second)
	p.waitRole(2, "secondary", "", 10*time.Second)
	t.Logf("vs start: pair in lockstep %s after the call", time.Since(t0).Round(time.Millisecond))
	p.check(p.download(p.file), "download after the start")

	// Resync on demand at the primary's API: node 2's copy is made a
	// target of the whole disk (no verify mismatch known) and rejoins.
	st1, err := p.status(1)
	if err != nil || len(st1.Disks) != 1 {
		t.Fatalf("node 1 status: %+v %v", st1, err)
	}
	before := st1.Disks[0].ResyncedBytes
	if _, err := ctl(2, "resync", "nosuch"); err == nil || !strings.Contains(err.Error(), "no disk") {
		t.Fatalf("resync of an unknown disk: %v", err)
	}
	if r, err := ctl(1, "resync", "data"); err != nil || r["ok"] != true {
		t.Fatalf("resync data: %v %v", r, err)
	}
	var last *coserver.Status
	if !netnstest.WaitFor(60*time.Second, func() bool {
		st, err := p.status(1)
		if err != nil || len(st.Disks) != 1 {
			return false
		}
		last = st
		return st.Disks[0].ResyncedBytes-before >= 8<<20 && st.Disks[0].ResyncsDone > 0 && st.Peer == "synced"
	}) {
		t.Fatalf("no whole-copy resync seen at node 1: before %d, now %+v", before, last)
	}
	st2 := p.waitRole(2, "secondary", "", 20*time.Second)
	if len(st2.Disks) != 1 || st2.Disks[0].State != "UpToDate" {
		t.Fatalf("node 2's copy after the resync: %+v", st2.Disks)
	}
	p.check(p.download(p.file), "download after the resync")

	// After a verify mismatch the resync copies the differing region only:
	// 4 KiB of node 2's copy overwritten behind the daemon's back (data
	// at 1 MiB in the file; 4 MiB per on-disk bitmap bit).
	f, err := os.OpenFile(copies[2], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("corrupt!", 512)), 1<<20+5<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	verify := func(want string) string {
		t.Helper()
		st0, _ := p.status(1)
		n0 := len(st0.Events)
		if _, err := ctl(1, "verify", "data"); err != nil {
			t.Fatal(err)
		}
		var got string
		if !netnstest.WaitFor(30*time.Second, func() bool {
			st, err := p.status(1)
			if err != nil {
				return false
			}
			for _, e := range st.Events[min(n0, len(st.Events)):] {
				if strings.HasPrefix(e.Kind, "verify-") && e.Kind != "verify-start" {
					got = e.Kind + " " + e.Detail
					return true
				}
			}
			return false
		}) || !strings.HasPrefix(got, want) {
			t.Fatalf("verify: %q, want %s", got, want)
		}
		return got
	}
	t.Log(verify("verify-mismatch data: 1 ranges differ, first at byte 5242880"))
	st1, _ = p.status(1)
	before = st1.Disks[0].ResyncedBytes
	done := st1.Disks[0].ResyncsDone
	if _, err := ctl(1, "resync", "data"); err != nil {
		t.Fatal(err)
	}
	if !netnstest.WaitFor(60*time.Second, func() bool {
		st, err := p.status(1)
		if err == nil && len(st.Disks) == 1 {
			last = st
		}
		return err == nil && len(st.Disks) == 1 && st.Disks[0].ResyncsDone > done && st.Peer == "synced"
	}) {
		t.Fatalf("no resync after the mismatch: %+v", last)
	}
	if n := last.Disks[0].ResyncedBytes - before; n == 0 || n >= 8<<20 {
		t.Fatalf("the resync after the mismatch copied %d bytes: want the differing region, not the whole copy", n)
	} else {
		t.Logf("resync after the mismatch copied %d bytes", n)
	}
	t.Log(verify("verify-done data: copies identical"))

	// A CoServer that is down during the stop adopts it when it starts
	// (its peer reports the VS stopped after its own last start), and both
	// start again together.
	p.kill(2)
	p.waitRole(1, "primary", "none", 20*time.Second)
	if r, err := ctl(1, "vs", "stop"); err != nil || r["ok"] != true {
		t.Fatalf("vs stop with the peer down: %v %v", r, err)
	}
	p.waitRole(1, "vs-stopped", "", 30*time.Second)
	p.start(2)
	p.waitRole(2, "vs-stopped", "", 20*time.Second)
	if r, err := ctl(1, "vs", "start"); err != nil || r["ok"] != true {
		t.Fatalf("vs start: %v %v", r, err)
	}
	p.waitRole(1, "primary", "synced", 60*time.Second)
	p.waitRole(2, "secondary", "", 10*time.Second)
	p.check(p.download(p.file), "download after the second start")
}

// TestManagerSplitBrainAlert: each CoServer ran the VS alone in turn (cold
// start after solo_after, the other down), so each copy of the disk took a
// new generation the other never saw; when they meet, the mirrors refuse to
// pick a side and the managers send a split-brain alert; the disk copies
// show why they are blocked. Resolved at the survivor's API, the other
// node's copy is resynced from the survivor's and the pair runs again.
func TestManagerSplitBrainAlert(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p := newPair(t, pairOpts{prefix: "fms", sizeMiB: 1, timeouts: slowSilence, extra: "cold_start: {solo_after: 1s}\n"})
	hook := newWebhookSink(t, p)
	p.extra += fmt.Sprintf("alerts: {webhooks: [{url: \"http://%s/alert\"}]}\n", hook.addr)
	p.syncedDisks(t)
	token := p.managed(t, ftvsBin)
	for _, i := range []int{1, 2} {
		p.start(i)
		p.waitRole(i, "primary", "none", 30*time.Second)
		p.kill(i)
	}
	p.start(1)
	p.start(2)
	if !netnstest.WaitFor(30*time.Second, func() bool { return hook.count("split-brain", -1, "") > 0 }) {
		t.Fatalf("no split-brain alert; got:\n%s", hook.dump())
	}
	var blocked string
	if !netnstest.WaitFor(20*time.Second, func() bool {
		s, err := p.apiStatus(1, token)
		if err != nil {
			return false
		}
		for _, d := range s.Disks {
			if d.Blocked != "" && d.Health == "failed" {
				blocked = d.Blocked
				return true
			}
		}
		return false
	}) {
		t.Fatal("the manager shows no disk copy blocked by the split brain")
	}
	t.Logf("blocked: %s", blocked)

	// Resolved at the survivor's API (keep node 1): node 2 marks its copy
	// discard-my-data, rejoins, and its copy is resynced from node 1's.
	if out, err := p.cs[1].Run(ftvsBin, "ctl", "--addr", "10.98.0.1:7444", "--ca", p.apiCA(1), "--token-file", token,
		"--json", "resolve-split-brain", "--keep", "1"); err != nil {
		t.Fatalf("resolve-split-brain --keep 1: %v\n%s", err, out)
	}
	p.waitRole(1, "primary", "synced", 60*time.Second)
	st2 := p.waitRole(2, "secondary", "", 20*time.Second)
	if len(st2.Disks) != 1 || st2.Disks[0].State != "UpToDate" || st2.Disks[0].Blocked != "" {
		t.Fatalf("node 2's copy after the resolution: %+v", st2.Disks)
	}
	if !netnstest.WaitFor(20*time.Second, func() bool { return hook.count("resync-done", 2, "coserver1") > 0 }) {
		t.Fatalf("no resync-done after the resolution; got:\n%s", hook.dump())
	}
	p.check(p.download(p.file), "download after the resolution")
	t.Logf("alerts:\n%s", hook.dump())
}

// TestManagerDiskDetachedAlert: the primary's copy fails under the VS (the
// file cut short behind the daemon's back: reads past its end fail); a
// client's reads over NBD still succeed (served by the peer's copy), the
// copy is detached and the managers send disk-detached for node 1.
func TestManagerDiskDetachedAlert(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	netnstest.Require(t, "fio")
	p := newPair(t, pairOpts{prefix: "fmd", sizeMiB: 1, timeouts: slowSilence})
	hook := newWebhookSink(t, p)
	p.extra += fmt.Sprintf("alerts: {webhooks: [{url: \"http://%s/alert\"}]}\n", hook.addr)
	copies := p.withDisks(t, "8MiB") // new copies: the pair runs the initial sync
	token := p.managed(t, ftvsBin)
	p.start(1)
	p.start(2)
	p.waitRole(1, "primary", "synced", 60*time.Second)
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(1, token); return err == nil }) {
		t.Fatal("node 1's manager API does not answer")
	}
	if err := os.Truncate(copies[1], 2<<20); err != nil { // metadata, bitmap and the first MiB of data
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fio := p.cli.Cmd(ctx, "fio", "--name=fmd", "--ioengine=nbd", "--uri=nbd://"+vsIP+"/data",
		"--rw=read", "--bs=64k", "--offset=4M", "--size=1M")
	fio.Dir = p.dir
	if out, err := fio.CombinedOutput(); err != nil {
		t.Fatalf("fio read through the failing copy: %v\n%s", err, out)
	}
	if !netnstest.WaitFor(20*time.Second, func() bool { return hook.count("disk-detached", 1, "coserver1") > 0 }) {
		t.Fatalf("no disk-detached for node 1; got:\n%s", hook.dump())
	}
	time.Sleep(time.Second) // a second alert for the same detach would come now
	if n := hook.count("disk-detached", -1, "coserver1"); n != 1 {
		t.Fatalf("%d disk-detached alerts from node 1 for one detach; got:\n%s", n, hook.dump())
	}
	s, err := p.apiStatus(1, token)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range s.Disks {
		if d.Node == 1 && (d.Attached || d.Health != "failed") {
			t.Fatalf("node 1's copy %+v: want detached, failed", d)
		}
	}
	t.Logf("alerts:\n%s", hook.dump())
}

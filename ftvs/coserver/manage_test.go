package coserver_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// webhookSink receives alerts in node 1's namespace (the daemons post from
// their namespaces; the test process alone could not reach them).
type webhookSink struct {
	mu   sync.Mutex
	got  []map[string]any
	addr string
}

func (w *webhookSink) has(kind string, node int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.got {
		if a["kind"] == kind && a["node"] == float64(node) {
			return true
		}
	}
	return false
}

func newWebhookSink(t *testing.T, p *pair) *webhookSink {
	t.Helper()
	var ln net.Listener
	if err := p.cs[1].Do(func() (err error) { ln, err = net.Listen("tcp", "10.98.0.1:9099"); return err }); err != nil {
		t.Fatal(err)
	}
	w := &webhookSink{addr: ln.Addr().String()}
	srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var a map[string]any
		if json.Unmarshal(b, &a) == nil {
			w.mu.Lock()
			w.got = append(w.got, a)
			w.mu.Unlock()
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return w
}

// TestManagerControlsAndAlerts runs the real daemons with the manager: the
// API refuses a call without the token, `ftvs status --api` shows the pair,
// a CoServer taken out of service leaves the pair (the peer serves alone)
// and rejoins by snapshot when brought back, and killing a CoServer sends a
// coserver-lost webhook.
func TestManagerControlsAndAlerts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p := newPair(t, pairOpts{prefix: "fu8", sizeMiB: 8})
	hook := newWebhookSink(t, p)
	p.extra += fmt.Sprintf("alerts: {webhooks: [{url: \"http://%s/alert\"}]}\n", hook.addr)
	for i := 1; i <= 2; i++ {
		if err := os.WriteFile(p.cfgPath(i), []byte(p.config(i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	token := p.managed(t, ftvsBin)
	p.startPair()
	api2 := []string{"--addr", "10.98.0.2:7444", "--ca", p.apiCA(2)}
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(2, token); return err == nil }) {
		t.Fatal("node 2's manager API does not answer")
	}
	// No token: refused (exit 3).
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "status"}, api2...)...); err == nil || !strings.Contains(out, "401") {
		t.Fatalf("status without a token: err %v, output %q; want an authentication refusal", err, out)
	}
	// The model polls the daemon: wait for it to show the pair in sync.
	var out string
	if !netnstest.WaitFor(20*time.Second, func() bool {
		o, err := p.cs[1].Run(ftvsBin, "status", "--token-file", token, "--api", "10.98.0.2:7444", "--ca", p.apiCA(2))
		out = o
		return err == nil && strings.Contains(out, "primary") && strings.Contains(out, "secondary")
	}) {
		t.Fatalf("ftvs status --api does not show the pair in sync:\n%s", out)
	}
	t.Logf("ftvs status --api:\n%s", out)

	// Out of service: node 2 leaves, node 1 carries on alone.
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "--token-file", token, "out", "2"}, api2...)...); err != nil {
		t.Fatalf("ctl out 2: %v\n%s", err, out)
	}
	p.waitRole(2, "out-of-service", "", 20*time.Second)
	p.waitRole(1, "primary", "none", 10*time.Second)
	p.check(p.download(p.file), "download with node 2 out of service")
	// It stays out across a restart, until brought back.
	p.kill(2)
	p.start(2)
	p.waitRole(2, "out-of-service", "", 20*time.Second)
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(2, token); return err == nil }) {
		t.Fatal("node 2's manager API does not answer out of service")
	}
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "--token-file", token, "in", "2"}, api2...)...); err != nil {
		t.Fatalf("ctl in 2: %v\n%s", err, out)
	}
	p.waitRole(1, "primary", "synced", 30*time.Second)
	p.waitRole(2, "secondary", "", 10*time.Second)
	// A control for the other node is refused with where to send it.
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "--token-file", token, "out", "1"}, api2...)...); err == nil || !strings.Contains(out, "CoServer 1's API") {
		t.Fatalf("ctl out 1 at node 2: err %v, %s", err, out)
	}

	// Move the VS's port to node 2's NIC (at the primary's API), download,
	// and back.
	api1 := []string{"--addr", "10.98.0.1:7444", "--ca", p.apiCA(1), "--token-file", token}
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "move-port", "2"}, api1...)...); err != nil {
		t.Fatalf("ctl move-port 2: %v\n%s", err, out)
	}
	st1, _ := p.status(1)
	p.check(p.download(p.file), "download with the VS port on node 2")
	st1b, _ := p.status(1)
	st2, _ := p.status(2)
	if st1 == nil || st1b == nil || st2 == nil || !st1b.Redirected.ViaPeer || !st2.Redirected.PeerViaUs || st1b.Redirected.RelayOut-st1.Redirected.RelayOut < 50 {
		t.Fatalf("port not moved to node 2: node 1 %+v, node 2 %+v", st1b, st2)
	}
	if !netnstest.WaitFor(10*time.Second, func() bool { s, err := p.apiStatus(1, token); return err == nil && s.VS.PortNode == 2 }) {
		t.Fatal("the manager does not show the VS port on node 2")
	}
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "move-port", "1"}, api1...)...); err != nil {
		t.Fatalf("ctl move-port 1: %v\n%s", err, out)
	}
	p.check(p.download(p.file), "download with the VS port back on node 1")
	if st, _ := p.status(1); st == nil || st.Redirected.ViaPeer {
		t.Fatalf("port not back on node 1: %+v", st)
	}

	// Split brain resolved keeping node 1: node 2 discards its VS and
	// rejoins from node 1's snapshot (a fresh process: its uptime restarts).
	before, err := p.status(2)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "--token-file", token, "resolve-split-brain", "--keep", "1"}, api2...)...); err != nil {
		t.Fatalf("ctl resolve-split-brain --keep 1 at node 2: %v\n%s", err, out)
	}
	if !netnstest.WaitFor(20*time.Second, func() bool {
		st, err := p.status(2)
		return err == nil && st.UptimeMS < before.UptimeMS && st.Role == "secondary"
	}) {
		t.Fatal("node 2 did not rejoin from node 1 after resolve-split-brain --keep 1")
	}
	p.waitRole(1, "primary", "synced", 20*time.Second)

	// Kill node 2: node 1's manager posts coserver-lost.
	p.kill(2)
	if !netnstest.WaitFor(20*time.Second, func() bool { return hook.has("coserver-lost", 2) }) {
		hook.mu.Lock()
		t.Fatalf("no coserver-lost webhook for node 2; got %v", hook.got)
	}
}

// TestManagerVerifyDisk starts an online verify of a mirrored disk through
// the API: the daemon compares the two copies and reports it as an event.
func TestManagerVerifyDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	p := newPair(t, pairOpts{prefix: "fu8", sizeMiB: 1})
	p.withDisks(t, "128MiB")
	token := p.managed(t, ftvsBin)
	p.start(1)
	p.start(2)
	p.waitRole(1, "primary", "synced", 90*time.Second) // the copies' initial sync first
	api1 := []string{"--addr", "10.98.0.1:7444", "--ca", p.apiCA(1), "--token-file", token}
	if !netnstest.WaitFor(20*time.Second, func() bool { _, err := p.apiStatus(1, token); return err == nil }) {
		t.Fatal("node 1's manager API does not answer")
	}
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "verify", "nosuch"}, api1...)...); err == nil || !strings.Contains(out, "no disk") {
		t.Fatalf("verify of an unknown disk: %v %s", err, out)
	}
	if out, err := p.cs[1].Run(ftvsBin, append([]string{"ctl", "verify", "data"}, api1...)...); err != nil {
		t.Fatalf("ctl verify data: %v\n%s", err, out)
	}
	var last string
	if !netnstest.WaitFor(60*time.Second, func() bool {
		st, err := p.status(1)
		if err != nil {
			return false
		}
		for _, e := range st.Events {
			if strings.HasPrefix(e.Kind, "verify-") && e.Kind != "verify-start" {
				last = e.Kind + " " + e.Detail
				return true
			}
		}
		return false
	}) || !strings.HasPrefix(last, "verify-done data: copies identical") {
		t.Fatalf("verify result: %q", last)
	}
	t.Log(last)
}

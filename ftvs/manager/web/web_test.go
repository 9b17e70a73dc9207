package web

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ftvs/ftvs/ftvs/manager/api"
	"github.com/ftvs/ftvs/ftvs/manager/state"
)

type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) rec(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
	return nil
}
func (r *recorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c == s {
			return true
		}
	}
	return false
}
func (r *recorder) SetInService(_ context.Context, n int, in bool) error {
	return r.rec(fmt.Sprintf("service %d %v", n, in))
}
func (r *recorder) MovePort(_ context.Context, n int) error       { return r.rec(fmt.Sprintf("port %d", n)) }
func (r *recorder) StartVS(context.Context) error                 { return r.rec("start") }
func (r *recorder) StopVS(context.Context) error                  { return r.rec("stop") }
func (r *recorder) StartResync(_ context.Context, d string) error { return r.rec("resync " + d) }
func (r *recorder) StartVerify(_ context.Context, d string) error { return r.rec("verify " + d) }
func (r *recorder) ResolveSplitBrain(_ context.Context, n int) error {
	return r.rec(fmt.Sprintf("resolve %d", n))
}

func healthyPair() state.Snapshot {
	return state.Snapshot{
		LocalNode: 1,
		CoServers: []state.CoServer{{Node: 1, Role: "primary", Health: state.OK, InService: true, Version: "test"},
			{Node: 2, Role: "secondary", Health: state.OK, InService: true, Version: "test"}},
		Links: []state.Link{{Name: "link1", Up: true, Active: true, RTTUS: 120, Health: state.OK}, {Name: "link2", Up: true, RTTUS: 140, Health: state.OK}},
		NICs:  []state.NIC{{Node: 1, Name: "eth0", Role: "redirected", Carrier: true, Active: true, Health: state.OK}, {Node: 2, Name: "eth0", Role: "redirected", Carrier: true, Health: state.OK}},
		VS:    state.VS{Running: true, Serving: true, PrimaryNode: 1, PortNode: 1, LogPosition: 1000, Lag: 2, Health: state.OK},
		Disks: []state.DiskCopy{{Disk: "vd0", Node: 1, State: state.UpToDate, Attached: true, Health: state.OK},
			{Disk: "vd0", Node: 2, State: state.UpToDate, Attached: true, Health: state.OK}},
		Witness: state.Witness{Configured: true, Address: "10.9.0.1:7000", Reachable: true, LeaseHolder: 1, Health: state.OK},
	}
}

func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed (Debian package chromium)")
	return ""
}

// TestPageInChromium loads the page in headless Chromium, watches the
// drawing follow the model (a CoServer lost), and presses controls.
func TestPageInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	model := state.NewModel(0)
	model.Update(healthyPair())
	ctl := &recorder{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := api.LoadOrCreateCert("", "", dir, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	token, err := api.LoadOrCreateToken("", dir)
	if err != nil {
		t.Fatal(err)
	}
	srv := &api.Server{Model: model, Control: ctl, Token: token, Page: Handler()}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln, cert) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})

	profile, err := os.MkdirTemp("", "ftvs-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) })
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		// The API's certificate is self-signed; the test trusts it this way.
		chromedp.Flag("ignore-certificate-errors", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	defer cancelT()

	base := "https://" + ln.Addr().String() + "/"
	// Reads go through JavaScript so that a missing node reads as "".
	eval := func(js string) string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	attr := func(sel, name string) string {
		return eval(fmt.Sprintf(`(document.querySelector(%q)||{getAttribute:()=>""}).getAttribute(%q)||""`, sel, name))
	}
	text := func(sel string) string {
		return eval(fmt.Sprintf(`(document.querySelector(%q)||{}).textContent||""`, sel))
	}
	click := func(sel string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
			t.Fatalf("click %s: %v", sel, err)
		}
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}

	// Without a token the page says so and the API refused it.
	if err := chromedp.Do(ctx, chromedp.Navigate(base), chromedp.WaitVisible(chromedp.CSS("#login"))); err != nil {
		t.Fatal(err)
	}
	if got := text("#conn"); got != "no token" {
		t.Fatalf("without a token #conn says %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"#token=wrong-token-0123456789")); err != nil {
		t.Fatal(err)
	}
	waitUntil("the refusal", func() bool { return text("#conn") == "token refused" })

	// With the token: the live drawing.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`sessionStorage.clear() || true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"#token="+token), chromedp.WaitReady(chromedp.CSS("#cs2"))); err != nil {
		t.Fatal(err)
	}
	waitUntil("live", func() bool { return text("#conn") == "live" })
	if h := attr("#cs2", "data-health"); h != "ok" {
		t.Fatalf("CoServer 2 drawn %q", h)
	}
	if h := attr("#link-link1", "data-health"); h != "ok" {
		t.Fatalf("link1 drawn %q", h)
	}
	if hash := eval(`location.hash`); hash != "" {
		t.Fatalf("token left in the address bar: %q", hash)
	}

	// CoServer 2 is lost, link1 cut, the disk copy detached: the page follows.
	lost := healthyPair()
	lost.CoServers[1].Health, lost.CoServers[1].Role = state.Failed, "lost"
	lost.CoServers[0].Health = state.Degraded
	lost.Links[0].Up, lost.Links[0].Health = false, state.Failed
	lost.Disks[1].Attached, lost.Disks[1].State, lost.Disks[1].Health = false, state.Outdated, state.Failed
	model.Update(lost)
	waitUntil("CoServer 2 drawn failed", func() bool { return attr("#cs2", "data-health") == "failed" })
	if h := attr("#cs1", "data-health"); h != "degraded" {
		t.Fatalf("CoServer 1 drawn %q", h)
	}
	if h := attr("#link-link1", "data-health"); h != "failed" {
		t.Fatalf("link1 drawn %q", h)
	}
	if s := attr("#disk-vd0-2", "data-state"); s != state.Outdated {
		t.Fatalf("disk drawn %q", s)
	}
	waitUntil("the event list", func() bool {
		ev := text("#events")
		return strings.Contains(ev, "coserver-lost [coserver2]") && strings.Contains(ev, "link-lost") && strings.Contains(ev, "disk-detached")
	})

	// Controls: one click, two-click (armed) ones, and a disk one.
	click("#cs1-port")
	waitUntil("the controller to move the port", func() bool { return ctl.has("port 1") })
	click("#cs2-out")
	time.Sleep(300 * time.Millisecond)
	if ctl.has("service 2 false") {
		t.Fatal("one click on an armed control acted")
	}
	click("#cs2-out")
	waitUntil("the controller to take node 2 out", func() bool { return ctl.has("service 2 false") })
	waitUntil("the page to report it", func() bool { return strings.Contains(text("#result"), "take CoServer 2 out of service") })
	click("#disk-vd0-resync")
	waitUntil("the controller to resync", func() bool { return ctl.has("resync vd0") })
	waitUntil("the control in the event list", func() bool { return strings.Contains(text("#events"), "control") })
}

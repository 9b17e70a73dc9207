package coserver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// forward listens on the test's loopback and connects each client to addr
// from inside ns (the browser runs outside the namespaces).
func forward(t *testing.T, ns *netnstest.NS, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var up net.Conn
			if err := ns.Do(func() (err error) { up, err = net.DialTimeout("tcp", addr, 3*time.Second); return err }); err != nil {
				c.Close()
				continue
			}
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// TestWebPageRealDaemon loads node 1's page in headless Chromium, sees
// CoServer 2 turn failed when it is SIGKILLed and ok when it is back, and
// moves the VS's port with the page's control.
func TestWebPageRealDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian package chromium)")
	}
	p := newPair(t, pairOpts{prefix: "fu8", sizeMiB: 8})
	token := p.managed(t, ftvsBin)
	p.startPair()
	tok, err := os.ReadFile(token)
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + forward(t, p.cs[1], "10.98.0.1:7444") + "/"

	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true), // the daemon's self-signed certificate
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancelT := context.WithTimeout(ctx, 120*time.Second)
	defer cancelT()
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
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for !cond() {
			select {
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"#token="+string(tok[:len(tok)-1])), chromedp.WaitReady(chromedp.CSS("#cs2"))); err != nil {
		t.Fatal(err)
	}
	waitUntil("CoServer 2 drawn ok", func() bool { return attr("#cs2", "data-health") == "ok" })

	p.kill(2)
	waitUntil("CoServer 2 drawn failed after SIGKILL", func() bool { return attr("#cs2", "data-health") == "failed" })
	p.start(2)
	p.waitRole(1, "primary", "synced", 30*time.Second)
	waitUntil("CoServer 2 drawn ok again", func() bool { return attr("#cs2", "data-health") == "ok" })

	// The page's control moves the VS's port to CoServer 2's NIC.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#cs2-port"))); err != nil {
		t.Fatal(err)
	}
	if !netnstest.WaitFor(20*time.Second, func() bool { st, err := p.status(1); return err == nil && st.Redirected.ViaPeer }) {
		t.Fatal("the page's move-port control did not move the port")
	}
	p.check(p.download(p.file), "download with the port moved from the page")
}

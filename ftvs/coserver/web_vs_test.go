package coserver_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWebPageVSStopStart loads node 1's page in headless Chromium on a pair
// with a mirrored disk and a witness nobody answers: the disk copies are
// drawn healthy, the witness failed; the page's Stop (two clicks) stops the
// VS on both CoServers and the drawing says so; its Start boots it again;
// its Resync copies node 2's copy again.
func TestWebPageVSStopStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not installed (Debian package chromium)")
	}
	p := newPair(t, pairOpts{prefix: "fmw", sizeMiB: 1, timeouts: slowSilence, extra: "witness: \"10.98.0.1:9\"\n"})
	p.withDisks(t, "8MiB") // new copies: the pair runs the initial sync
	token := p.managed(t, ftvsBin)
	p.start(1)
	p.start(2)
	p.waitRole(1, "primary", "synced", 60*time.Second)
	tok, err := os.ReadFile(token)
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + forward(t, p.cs[1], "10.98.0.1:7444") + "/"
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("ignore-certificate-errors", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelCtx := chromedp.NewContext(actx)
	defer cancelCtx()
	ctx, cancelT := context.WithTimeout(ctx, 150*time.Second)
	defer cancelT()
	attr := func(sel, name string) string {
		js := fmt.Sprintf(`(document.querySelector(%q)||{getAttribute:()=>""}).getAttribute(%q)||""`, sel, name)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
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
	waitUntil("both disk copies drawn ok", func() bool {
		return attr("#disk-data-1", "data-health") == "ok" && attr("#disk-data-2", "data-health") == "ok"
	})
	waitUntil("the unanswering witness drawn failed", func() bool { return attr("#witness", "data-health") == "failed" })

	// Stop: the first click arms the button, the second stops.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#vs-stop")), chromedp.Click(chromedp.CSS("#vs-stop"))); err != nil {
		t.Fatal(err)
	}
	p.waitRole(1, "vs-stopped", "", 30*time.Second)
	p.waitRole(2, "vs-stopped", "", 30*time.Second)
	waitUntil("the VS drawn stopped", func() bool { return attr("#vs", "data-stopped") == "1" })

	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#vs-start"))); err != nil {
		t.Fatal(err)
	}
	p.waitRole(1, "primary", "synced", 60*time.Second)
	waitUntil("the VS drawn running", func() bool { return attr("#vs", "data-running") == "1" })
	p.check(p.download(p.file), "download after the page's start")

	// The page's Resync: node 2's copy is copied again from node 1's.
	st, err := p.status(1)
	if err != nil || len(st.Disks) != 1 {
		t.Fatalf("node 1 status: %+v %v", st, err)
	}
	done := st.Disks[0].ResyncsDone
	waitUntil("the disk's controls drawn", func() bool { return attr("#disk-data-resync", "id") != "" })
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#disk-data-resync"))); err != nil {
		t.Fatal(err)
	}
	waitUntil("a resync finished at node 1", func() bool {
		st, err := p.status(1)
		return err == nil && len(st.Disks) == 1 && st.Disks[0].ResyncsDone > done && st.Peer == "synced"
	})
}

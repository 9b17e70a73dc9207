package coserver_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// TestKillPrimaryDuringLftpDownload: lftp (passive mode, no retries, so a
// broken connection fails the test instead of being resumed) downloads
// while the primary is SIGKILLed; the file arrives whole.
func TestKillPrimaryDuringLftpDownload(t *testing.T) {
	netnstest.Require(t, "lftp")
	p := newPair(t, pairOpts{sizeMiB: 64, prefix: "fw5"})
	p.startPair()
	out := filepath.Join(p.dir, "lftp.out")
	script := "set net:max-retries 1; set net:timeout 60; set net:limit-rate 16000000; set ftp:passive-mode on; " +
		"open ftp://anonymous:x@" + vsIP + "; get " + p.file + " -o " + out
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := p.cli.Cmd(ctx, "lftp", "-c", script)
	done := make(chan error, 1)
	var outb []byte
	go func() { b, err := cmd.CombinedOutput(); outb = b; done <- err }()
	rx0 := p.rxBytes()
	p.waitProgress(rx0, 0.4)
	p.kill(1)
	p.waitRole(2, "primary", "", 10*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("lftp: %v: %s", err, outb)
	}
	if got := fileSum(t, out); got != p.wantSum {
		t.Fatalf("lftp download after the primary was killed: sha256 %s, want %s", got, p.wantSum)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

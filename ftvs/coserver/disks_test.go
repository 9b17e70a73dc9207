package coserver_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
)

// withDisks gives both nodes a mirrored virtual disk "data" (a fresh pair
// of `ftvs vdisk create` copies) exported over NBD as "data".
func (p *pair) withDisks(t *testing.T, size string) (copies [3]string) {
	t.Helper()
	uuid := "5f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
	for i := 1; i <= 2; i++ {
		copies[i] = filepath.Join(p.dir, fmt.Sprintf("data%d.vdisk", i))
		if out, err := exec.Command(ftvsBin, "vdisk", "create", "--size", size, "--node", fmt.Sprint(i), "--uuid", uuid, copies[i]).CombinedOutput(); err != nil {
			t.Fatalf("vdisk create: %v: %s", err, out)
		}
		cfg := strings.Replace(p.config(i), "services: {http: {port: 80}, ftp: {port: 21}}",
			"services: {http: {port: 80}, ftp: {port: 21}, nbd: {port: 10809}}\n  disks:\n    - {name: data, path: "+copies[i]+", export: data}", 1)
		if err := os.WriteFile(p.cfgPath(i), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return copies
}

// TestNBDFioThroughFailovers: fio writes 4 KiB blocks at random offsets
// over NBD with crc32c verification while the secondary is killed, then
// restarted and resynchronised, then the primary is killed; fio then reads
// every block back through the survivor: no verify error. Finally the old
// primary rejoins and the two copies' data areas are compared.
func TestNBDFioThroughFailovers(t *testing.T) {
	netnstest.Require(t, "fio")
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fw5"})
	copies := p.withDisks(t, "128MiB")
	p.startPair()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fio := p.cli.Cmd(ctx, "fio", "--name=fw5", "--ioengine=nbd", "--uri=nbd://"+vsIP+"/data",
		"--rw=randwrite", "--bs=4k", "--size=96M", "--iodepth=16", "--rate=3m",
		"--verify=crc32c", "--verify_fatal=1", "--do_verify=1")
	fio.Dir = p.dir // fio saves its verify state in the working directory
	done := make(chan error, 1)
	var out []byte
	go func() { b, err := fio.CombinedOutput(); out = b; done <- err }()
	fioOut := func() string { return string(out) }

	time.Sleep(2 * time.Second)
	p.kill(2)
	t.Log("secondary killed")
	time.Sleep(2 * time.Second)
	p.start(2)
	p.waitRole(1, "primary", "synced", 60*time.Second)
	p.waitRole(2, "secondary", "", 10*time.Second)
	t.Log("secondary back and resynchronised")
	if st, err := p.status(2); err == nil {
		for _, e := range st.Events {
			if strings.HasPrefix(e.Kind, "disk-") {
				t.Logf("node 2 event %s: %s", e.Kind, e.Detail)
			}
		}
	}
	select {
	case err := <-done:
		t.Fatalf("fio ended before the primary was killed (err %v): %s", err, fioOut())
	default:
	}
	p.kill(1)
	p.waitRole(2, "primary", "", 10*time.Second)
	t.Log("primary killed, node 2 serves")
	if err := <-done; err != nil {
		t.Fatalf("fio: %v\n%s", err, fioOut())
	}
	if !strings.Contains(fioOut(), "fw5") || strings.Contains(fioOut(), "verify") && strings.Contains(fioOut(), "bad") {
		t.Fatalf("fio output unexpected:\n%s", fioOut())
	}
	t.Logf("fio passed verification:\n%s", lastLines(fioOut(), 12))

	// The old primary rejoins (resync of what node 2 wrote alone).
	p.start(1)
	p.waitRole(2, "primary", "synced", 60*time.Second)
	p.kill(1)
	p.kill(2)
	res, err := exec.Command(ftvsBin, "vdisk", "verify", copies[1], copies[2]).CombinedOutput()
	if err != nil {
		t.Fatalf("vdisk verify: %v\n%s", err, res)
	}
	t.Logf("vdisk verify: %s", res)
}

// TestNBDFioFrozenSecondary: the secondary freezes (SIGSTOP) while fio
// writes, the primary goes on alone and marks; the secondary thaws, its disk
// is resynchronised before it takes the snapshot, and then the primary is
// killed: fio reads every block back from the thawed node's copy.
func TestNBDFioFrozenSecondary(t *testing.T) {
	netnstest.Require(t, "fio")
	p := newPair(t, pairOpts{sizeMiB: 1, prefix: "fw5"})
	p.withDisks(t, "64MiB")
	p.startPair()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fio := p.cli.Cmd(ctx, "fio", "--name=fw5", "--ioengine=nbd", "--uri=nbd://"+vsIP+"/data",
		"--rw=randwrite", "--bs=4k", "--size=48M", "--iodepth=16", "--rate=3m",
		"--verify=crc32c", "--verify_fatal=1", "--do_verify=1")
	fio.Dir = p.dir // fio saves its verify state in the working directory
	done := make(chan error, 1)
	var out []byte
	go func() { b, err := fio.CombinedOutput(); out = b; done <- err }()
	time.Sleep(2 * time.Second)
	pid := p.procs[2].Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	time.Sleep(time.Second)
	_ = syscall.Kill(pid, syscall.SIGCONT)
	p.waitRole(1, "primary", "synced", 60*time.Second)
	p.waitRole(2, "secondary", "", 10*time.Second)
	select {
	case err := <-done:
		t.Fatalf("fio ended before the primary was killed (err %v): %s", err, out)
	default:
	}
	p.kill(1)
	p.waitRole(2, "primary", "", 10*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("fio after the freeze and the primary's death: %v\n%s", err, out)
	}
	t.Logf("fio passed verification:\n%s", lastLines(string(out), 3))
}

// lastLines keeps fio's run status lines (n bounds them).
func lastLines(s string, n int) string {
	var l []string
	for _, line := range strings.Split(s, "\n") {
		if strings.Contains(line, "READ:") || strings.Contains(line, "WRITE:") || strings.Contains(line, "err=") {
			l = append(l, strings.TrimSpace(line))
		}
	}
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

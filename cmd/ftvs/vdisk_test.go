package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// runVdisk runs "ftvs vdisk args..." in-process: output and exit code.
func runVdisk(t *testing.T, args ...string) (string, int) {
	t.Helper()
	c := newVdiskCmd()
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs(args)
	c.SilenceUsage, c.SilenceErrors = true, true
	err := c.Execute()
	if err == nil {
		return out.String(), 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			out.WriteString("ERR: " + ee.err.Error())
		}
		return out.String(), ee.code
	}
	return out.String() + "ERR: " + err.Error(), 2
}

func mustRun(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, code := runVdisk(t, args...)
	if code != want {
		t.Fatalf("ftvs vdisk %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, want, out)
	}
	return out
}

// goSoloAndWrite plays a CoServer running alone: generations rotate, then
// writes are marked.
func goSoloAndWrite(t *testing.T, path string, gen uint64, offs ...int64) {
	t.Helper()
	dev, err := filedev.Open(path, filedev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	d, err := vdisk.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.GoSolo(gen); err != nil {
		t.Fatal(err)
	}
	for _, off := range offs {
		if _, err := d.WriteAt(bytes.Repeat([]byte{byte(gen)}, 4096), off); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.CloseClean(); err != nil {
		t.Fatal(err)
	}
}

func TestVdiskCLI(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	const id = "2b1c5e4a-0c0e-4b8e-9a57-0d8e1f2a3b4c"
	out := mustRun(t, 0, "create", "--size", "16MiB", "--node", "1", "--uuid", id, "--bitmap-granularity", "1MiB", a)
	if !strings.Contains(out, "node 1 copy of vdisk "+id) {
		t.Fatalf("create output: %s", out)
	}
	mustRun(t, 0, "create", "--size", "16MiB", "--node", "2", "--uuid", id, "--bitmap-granularity", "1MiB", b)
	out = mustRun(t, 2, "create", "--size", "16MiB", "--node", "2", b)
	if !strings.Contains(out, "already holds vdisk "+id) {
		t.Fatalf("re-create: %s", out)
	}
	// A file with data is never overwritten without --force.
	data := filepath.Join(dir, "data.bin")
	os.WriteFile(data, bytes.Repeat([]byte("precious"), 1024), 0o600)
	out = mustRun(t, 2, "create", "--size", "16MiB", "--node", "1", data)
	if !strings.Contains(out, "holds data") {
		t.Fatalf("create over data: %s", out)
	}
	if got, _ := os.ReadFile(data); !bytes.Equal(got, bytes.Repeat([]byte("precious"), 1024)) {
		t.Fatal("refused create modified the file")
	}
	mustRun(t, 0, "create", "--size", "16MiB", "--node", "1", "--force", data)
	mustRun(t, 2, "create", "--node", "3", filepath.Join(dir, "x.img"))
	mustRun(t, 2, "create", "--node", "1", filepath.Join(dir, "nosize.img"))
	if _, err := os.Stat(filepath.Join(dir, "nosize.img")); err == nil {
		t.Fatal("a failed create left a file behind")
	}

	out = mustRun(t, 0, "resync", "--skip-equal", a, b)
	if !strings.Contains(out, "full-sync from node 1 to node 2") {
		t.Fatalf("initial resync: %s", out)
	}
	mustRun(t, 0, "verify", a, b)

	// Node 1 runs alone and writes; verify sees it, resync repairs it.
	goSoloAndWrite(t, a, 0x1234567, 3<<20, 3<<20+8192, 11<<20)
	out = mustRun(t, 1, "verify", a, b)
	if !strings.Contains(out, "differ: [3145728, 4194304)") || !strings.Contains(out, "differ: [11534336, 12582912)") ||
		!strings.Contains(out, "bitmap-resync from node 1 to node 2") {
		t.Fatalf("verify after solo writes: %s", out)
	}
	var insp struct {
		State       string `json:"state"`
		MarkedBytes int64  `json:"marked_bytes"`
		Gens        struct {
			Bitmap string `json:"bitmap"`
		} `json:"generations"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, 0, "inspect", "--json", a)), &insp); err != nil {
		t.Fatal(err)
	}
	if insp.State != "UpToDate" || insp.MarkedBytes != 2<<20 || insp.Gens.Bitmap == "0000000000000000" {
		t.Fatalf("inspect after solo writes: %+v", insp)
	}
	out = mustRun(t, 0, "resync", "--rate", "64MiB", b, a)
	if !strings.Contains(out, "copied 2097152 bytes") {
		t.Fatalf("bitmap resync: %s", out)
	}
	mustRun(t, 0, "verify", a, b)

	// Split brain: both run alone and write; nothing is resolved until the
	// operator says which node's changes go.
	goSoloAndWrite(t, a, 0xaaaa01, 1<<20)
	goSoloAndWrite(t, b, 0xbbbb02, 7<<20)
	out = mustRun(t, 2, "resync", a, b)
	if !strings.Contains(out, "split brain") {
		t.Fatalf("split brain resync: %s", out)
	}
	mustRun(t, 1, "verify", a, b)
	mustRun(t, 2, "resolve", "--discard-node", "3", a, b)
	out = mustRun(t, 0, "resolve", "--discard-node", "2", a, b)
	if !strings.Contains(out, "bitmap-resync from node 1 to node 2") {
		t.Fatalf("resolve: %s", out)
	}
	mustRun(t, 0, "resync", a, b)
	mustRun(t, 0, "verify", a, b)
	mustRun(t, 2, "resolve", "--discard-node", "2", a, b) // no longer split brain

	// A torn metadata slot is reported, the other one is used.
	f, _ := os.OpenFile(a, os.O_RDWR, 0)
	f.WriteAt(bytes.Repeat([]byte{0xff}, 64), 100)
	f.Close()
	out = mustRun(t, 0, "inspect", a)
	if !strings.Contains(out, "INVALID: metadata field crc32c") {
		t.Fatalf("inspect with a torn slot 0: %s", out)
	}
	out = mustRun(t, 2, "inspect", data+"-missing")
	plain := filepath.Join(dir, "plain.img")
	os.WriteFile(plain, make([]byte, 65536), 0o600)
	out = mustRun(t, 2, "inspect", plain)
	if !strings.Contains(out, "not an ftvs vdisk") {
		t.Fatalf("inspect of a plain file: %s", out)
	}
	other := filepath.Join(dir, "other.img")
	mustRun(t, 0, "create", "--size", "16MiB", "--node", "2", other)
	out = mustRun(t, 2, "verify", a, other)
	if !strings.Contains(out, "not copies of one disk") {
		t.Fatalf("verify of two disks: %s", out)
	}
}

// TestVdiskCreateOnBlockDevice: a loop device with a filesystem-like
// signature is refused; a blank one gets a copy using all of it.
func TestVdiskCreateOnBlockDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for losetup")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("losetup not installed")
	}
	img := filepath.Join(t.TempDir(), "backing.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 24<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Skipf("losetup failed (no loop devices here?): %v", err)
	}
	loop := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", loop).Run() })

	// An ext4-like superblock magic at 1080: the device holds data.
	f, err := os.OpenFile(loop, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0x53, 0xef}, 1080)
	f.Sync()
	msg := mustRun(t, 2, "create", "--node", "1", loop)
	if !strings.Contains(msg, "device "+loop+" holds data (non-zero byte at offset 1080)") {
		t.Fatalf("create on a device with data: %s", msg)
	}
	f.WriteAt([]byte{0, 0}, 1080)
	f.Sync()
	f.Close()
	mustRun(t, 0, "create", "--node", "1", loop)
	var insp struct {
		DataSize   int64 `json:"data_size"`
		DataOffset int64 `json:"data_offset"`
		DeviceSize int64 `json:"device_size"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, 0, "inspect", "--json", loop)), &insp); err != nil {
		t.Fatal(err)
	}
	if insp.DeviceSize != 24<<20 || insp.DataOffset != 1<<20 || insp.DataSize != 23<<20 {
		t.Fatalf("copy on a 24 MiB device: %+v", insp)
	}
	msg = mustRun(t, 2, "create", "--node", "1", loop)
	if !strings.Contains(msg, "already holds vdisk") {
		t.Fatalf("second create: %s", msg)
	}
}

// TestVdiskResyncSurvivesKill kills a real "ftvs vdisk resync" process with
// SIGKILL in the middle and checks that the next run continues from the
// persisted progress and leaves identical copies.
func TestVdiskResyncSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the ftvs binary")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go toolchain not in PATH")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "ftvs")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	const id = "0f4c1c0e-6a57-4c9b-a3c6-7d2e1b0a9f11"
	mustRun(t, 0, "create", "--size", "64MiB", "--node", "1", "--uuid", id, "--bitmap-granularity", "1MiB", a)
	mustRun(t, 0, "create", "--size", "64MiB", "--node", "2", "--uuid", id, "--bitmap-granularity", "1MiB", b)
	mustRun(t, 0, "resync", "--skip-equal", a, b)
	var offs []int64
	for i := int64(0); i < 48; i++ {
		offs = append(offs, i<<20+4096*(i%7))
	}
	goSoloAndWrite(t, a, 0x77665544, offs...)
	marked := func() int64 {
		var j struct {
			MarkedBytes int64 `json:"marked_bytes"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, 0, "inspect", "--json", a)), &j); err != nil {
			t.Fatal(err)
		}
		return j.MarkedBytes
	}
	if m := marked(); m != 48<<20 {
		t.Fatalf("%d bytes marked before the resync, want 48 MiB", m)
	}
	// 48 MiB at 4 MiB/s: about 12 s, progress persisted every MiB.
	cmd := exec.Command(bin, "vdisk", "resync", "--rate", "4MiB", "--chunk", "256KiB", "--checkpoint-every", "1MiB", a, b)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(2 * time.Minute)
	for marked() > 40<<20 {
		if time.Now().After(deadline) {
			t.Fatal("resync made no persisted progress in 2 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	left := marked()
	if left == 0 || left > 40<<20 {
		t.Fatalf("%d bytes left marked after the kill", left)
	}
	var insp struct {
		State string `json:"state"`
	}
	json.Unmarshal([]byte(mustRun(t, 0, "inspect", "--json", b)), &insp)
	if insp.State != "Inconsistent" {
		t.Fatalf("killed resync left the target %s", insp.State)
	}
	out := mustRun(t, 0, "resync", a, b)
	if !strings.Contains(out, "bitmap-resync from node 1 to node 2") {
		t.Fatalf("resume: %s", out)
	}
	var copied int64
	if i := strings.Index(out, "copied "); i >= 0 {
		fmt.Sscanf(out[i:], "copied %d bytes", &copied)
	}
	if copied != left {
		t.Fatalf("resume copied %d bytes, %d were left:\n%s", copied, left, out)
	}
	mustRun(t, 0, "verify", a, b)
}

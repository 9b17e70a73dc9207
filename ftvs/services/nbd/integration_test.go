package nbd_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
	nbdsvc "github.com/ftvs/ftvs/ftvs/services/nbd"
	"github.com/ftvs/ftvs/ftvs/vsrun"
)

const vsIP = "10.79.0.1"

// startVS runs a solo VS exporting files over NBD in a namespace,
// in-process, and returns the client namespace and a stop function (which
// closes, and so flushes, the exports).
func startVS(t *testing.T, exports []nbdsvc.Export, files []string) (*netnstest.NS, func()) {
	return startVSRec(t, exports, files, nil)
}

// startVSRec is startVS with the session's inputs handed to record (made
// from the machine's configuration once the VS is open).
func startVSRec(t *testing.T, exports []nbdsvc.Export, files []string, record func(machine.Config) func(machine.Input) error) (*netnstest.NS, func()) {
	t.Helper()
	env := netnstest.New(t, "fs5", "qemu-img", "qemu-io", "nbdinfo", "nbdcopy", "fio")
	vs, cl := env.NS("vs"), env.NS("cl")
	env.Veth(vs, "v0", cl, "c0")
	cl.Addr("c0", "10.79.0.2/24")
	cfg := vsrun.SoloConfig{
		Iface: "v0", PortKind: port.AFPacket, MAC: [6]byte{2, 0xf5, 0, 0, 0, 2}, IP: [4]byte{10, 79, 0, 1},
		PrefixLen: 24, Root: t.TempDir(), ISNKey: [16]byte{'f', 's', '5', 'n'},
		NBD: &nbdsvc.Config{Exports: exports}, NBDFiles: files,
		Event: func(seq uint64, text string) { t.Logf("vs event at input %d: %s", seq, text) },
	}
	var rec func(machine.Input) error
	if record != nil {
		cfg.Record = func(in machine.Input) error { return rec(in) }
	}
	var solo *vsrun.Solo
	if err := vs.Do(func() error {
		var err error
		solo, err = vsrun.Open(cfg)
		return err
	}); err != nil {
		t.Fatalf("open the VS: %v", err)
	}
	vs.WaitLinkUp("v0")
	cl.WaitLinkUp("c0")
	if record != nil {
		rec = record(solo.Machine.Config())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- solo.Run(ctx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("VS driver: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("VS driver did not stop")
		}
		t.Logf("nbd counters: %+v", solo.Machine.Counters().NBD)
		if err := solo.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
	t.Cleanup(stop)
	return cl, stop
}

func pattern(size int, seed uint64) []byte {
	b := make([]byte, size)
	for i := 0; i+8 <= len(b); i += 8 {
		x := seed ^ uint64(i)
		x = (x ^ x>>31) * 0x9e3779b97f4a7c15
		binary.LittleEndian.PutUint64(b[i:], x^x>>29)
	}
	return b
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestRealClients: nbdinfo, qemu-img, qemu-io, nbdcopy and fio (libnbd
// engine, with verification) against the VS's NBD export over veth.
func TestRealClients(t *testing.T) {
	dir := t.TempDir()
	disk, ro := filepath.Join(dir, "disk.img"), filepath.Join(dir, "ro.img")
	if err := os.WriteFile(disk, make([]byte, 64<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	roData := pattern(8<<20, 3)
	if err := os.WriteFile(ro, roData, 0o644); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src.img")
	if err := os.WriteFile(src, pattern(64<<20, 7), 0o644); err != nil {
		t.Fatal(err)
	}
	cl, stop := startVS(t, []nbdsvc.Export{{Name: "disk", Description: "scratch"}, {Name: "ro", ReadOnly: true}}, []string{disk, ro})
	uri := "nbd://" + vsIP + "/disk"

	list := cl.MustRun("nbdinfo", "--list", "nbd://"+vsIP)
	if !strings.Contains(list, "export=\"disk\"") || !strings.Contains(list, "export=\"ro\"") || !strings.Contains(list, "scratch") {
		t.Fatalf("nbdinfo --list:\n%s", list)
	}
	info := cl.MustRun("nbdinfo", uri)
	for _, want := range []string{"export-size: 67108864", "can_flush: true", "can_fua: true", "can_trim: true",
		"can_zero: true", "can_multi_conn: true", "is_read_only: false"} {
		if !strings.Contains(info, want) {
			t.Fatalf("nbdinfo lacks %q:\n%s", want, info)
		}
	}
	if info := cl.MustRun("nbdinfo", "nbd://"+vsIP+"/ro"); !strings.Contains(info, "is_read_only: true") {
		t.Fatalf("ro export info:\n%s", info)
	}
	if o, err := cl.Run("nbdinfo", "nbd://"+vsIP+"/nope"); err == nil {
		t.Fatalf("unknown export accepted:\n%s", o)
	}

	// qemu-img writes the whole image and compares it back.
	cl.MustRun("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, uri)
	if o := cl.MustRun("qemu-img", "compare", "-f", "raw", "-F", "raw", src, uri); !strings.Contains(o, "identical") {
		t.Fatalf("qemu-img compare: %s", o)
	}
	// nbdcopy reads it back with several connections and requests in flight.
	back := filepath.Join(dir, "back.img")
	cl.MustRun("nbdcopy", "--connections=4", "--requests=16", uri, back)
	if fileSum(t, back) != fileSum(t, src) {
		t.Fatal("nbdcopy read back differs from what qemu-img wrote")
	}
	ro2 := filepath.Join(dir, "ro-back.img")
	cl.MustRun("nbdcopy", "nbd://"+vsIP+"/ro", ro2)
	if b, _ := os.ReadFile(ro2); !bytes.Equal(b, roData) {
		t.Fatal("ro export read back differs")
	}

	// qemu-io: unaligned write, read-back verification, zeroes, discard, flush.
	io := cl.MustRun("qemu-io", "-f", "raw",
		"-c", "write -P 0xab 1000 3001",
		"-c", "read -P 0xab 1000 3001",
		"-c", "write -z 8192 65536",
		"-c", "read -P 0 8192 65536",
		"-c", "write -P 0x5c -f 100000 4096",
		"-c", "discard 1048576 65536",
		"-c", "flush",
		"-c", "read -P 0x5c 100000 4096",
		"-c", "write -P 0x77 60000000 4096",
		"-c", "write -z 33554432 33554432", // two slices of zeroing
		"-c", "read -P 0 59998000 8192", uri)
	if strings.Contains(io, "Pattern verification failed") || strings.Contains(io, "error") {
		t.Fatalf("qemu-io:\n%s", io)
	}
	if o, err := cl.Run("qemu-io", "-f", "raw", "-c", "write -P 1 0 4096", "nbd://"+vsIP+"/ro"); err == nil && !strings.Contains(o, "failed") {
		t.Fatalf("write to the read-only export succeeded:\n%s", o)
	}

	// fio random writes with verification, 16 in flight.
	fio := cl.MustRun("fio", "--name=verify", "--ioengine=nbd", "--uri="+uri, "--rw=randwrite", "--bs=4k",
		"--iodepth=16", "--offset=32m", "--size=16m", "--verify=crc32c", "--do_verify=1", "--verify_fatal=1", "--output-format=terse")
	if fields := strings.Split(strings.TrimSpace(fio), ";"); len(fields) < 5 || fields[4] != "0" {
		t.Fatalf("fio terse output reports errors: %s", fio)
	}

	// After the VS stops, the backing file holds what the clients wrote.
	stop()
	b, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b[1000:4001], bytes.Repeat([]byte{0xab}, 3001)) || !bytes.Equal(b[8192:8192+65536], make([]byte, 65536)) ||
		!bytes.Equal(b[100000:104096], bytes.Repeat([]byte{0x5c}, 4096)) {
		t.Fatal("backing file does not hold the qemu-io writes")
	}
}

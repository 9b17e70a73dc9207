package nbd_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
	nbdsvc "github.com/ftvs/ftvs/ftvs/services/nbd"
)

var updateLog = flag.Bool("update-log", false, "write the recorded session to testdata/machine/nbd-session.log")

// TestRecordedSessionReplays records a real session (nbdinfo, qemu-io
// writes with FUA, zeroes, discard, flush and reads, nbdcopy with several
// connections) on a zero-filled export, then replays the input log into two
// fresh machines with their own in-memory disks: outputs agree at every
// step, the state hashes at the end, and both disks end equal to the
// backing file the real run wrote. With -update-log the log becomes
// testdata/machine/nbd-session.log for ftvs/machine's replay tests.
func TestRecordedSessionReplays(t *testing.T) {
	disk := filepath.Join(t.TempDir(), "disk.img")
	const size = 4 << 20
	if err := os.WriteFile(disk, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	var lw *inputlog.Writer
	cl, stop := startVSRec(t, []nbdsvc.Export{{Name: "disk"}}, []string{disk}, func(cfg machine.Config) func(machine.Input) error {
		lw = inputlog.NewWriter(&log, cfg)
		lw.Disk(size, 512)
		return func(in machine.Input) error { lw.Input(in); return nil }
	})
	uri := "nbd://" + vsIP + "/disk"
	cl.MustRun("nbdinfo", uri)
	o := cl.MustRun("qemu-io", "-f", "raw",
		"-c", "write -P 0x11 0 65536",
		"-c", "write -P 0x22 -f 70000 5000",
		"-c", "write -z 131072 131072",
		"-c", "discard 262144 4096",
		"-c", "flush",
		"-c", "read -P 0x22 70000 5000",
		"-c", "read 0 1572864", uri)
	if strings.Contains(o, "failed") {
		t.Fatalf("qemu-io:\n%s", o)
	}
	cl.MustRun("nbdcopy", "--connections=2", uri, "null:")
	time.Sleep(200 * time.Millisecond) // the last ACKs and FINs
	stop()
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(disk)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := inputlog.Read(bytes.NewReader(log.Bytes()), "recorded")
	if err != nil {
		t.Fatal(err)
	}
	ms, err := lg.Replay(2)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if got := m.Env().Disks[0].(*blockdev.Mem).Bytes(); !bytes.Equal(got, want) {
			t.Fatalf("replica %d's disk differs from the backing file of the real run", i)
		}
	}
	c := ms[0].Counters().NBD
	if c.ReadBytes < 1<<20 || c.WriteBytes == 0 || c.Flushes == 0 {
		t.Fatalf("the replay did not carry the session: %+v", c)
	}
	t.Logf("replayed %d inputs: %+v", len(lg.Inputs), c)
	if *updateLog {
		dst := filepath.Join("..", "..", "..", "testdata", "machine", "nbd-session.log")
		if err := os.WriteFile(dst, log.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes, %d inputs)", dst, log.Len(), len(lg.Inputs))
	}
}

package ftp_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
)

var updateLog = flag.Bool("update-log", false, "write the recorded session to testdata/machine/ftp-session.log")

// TestRecordedSessionReplays records a real lftp session (login, listing,
// a download, an upload, mkdir, rename, delete) through the VS, then replays
// the input log into two fresh machines with their own copies of the files:
// outputs agree at every step and the state hashes at the end. With
// -update-log the log becomes testdata/machine/ftp-session.log, which
// ftvs/machine's replay tests run too.
func TestRecordedSessionReplays(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(filepath.Join(root, "pub"), 0o755); err != nil {
		t.Fatal(err)
	}
	const mt = 1700000000
	small := make([]byte, 1500_000)
	memfs.Fill(small, 42, 0)
	if err := os.WriteFile(filepath.Join(root, "pub", "small.bin"), small, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"pub/small.bin", "pub"} {
		os.Chtimes(filepath.Join(root, p), time.Unix(mt, 0), time.Unix(mt, 0))
	}
	var log bytes.Buffer
	var lw *inputlog.Writer
	cl := startVSRec(t, root, func(cfg machine.Config) func(machine.Input) error {
		lw = inputlog.NewWriter(&log, cfg)
		lw.Dir("pub", mt)
		lw.Synthetic("pub/small.bin", mt, int64(len(small)), 42)
		return func(in machine.Input) error { lw.Input(in); return nil }
	})
	up := filepath.Join(t.TempDir(), "up.bin")
	upSum := writePattern(t, up, 200_000, 9)
	got := filepath.Join(t.TempDir(), "got.bin")
	cl.MustRun("lftp", "-e", lftpSet+"cls -l pub; get pub/small.bin -o "+got+"; put "+up+" -o up.bin; mkdir d; mv up.bin d/up.bin; quit",
		"ftp://alice:s3cret@"+vsIP+"/")
	if b, _ := os.ReadFile(got); !bytes.Equal(b, small) {
		t.Fatal("download differs")
	}
	if sum(t, filepath.Join(root, "d", "up.bin")) != upSum {
		t.Fatal("upload differs")
	}
	cl.MustRun("lftp", "-e", lftpSet+"rm d/up.bin; rmdir d; quit", "ftp://alice:s3cret@"+vsIP+"/")
	time.Sleep(200 * time.Millisecond) // let the last ACKs and FINs land in the log
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	lg, err := inputlog.Read(bytes.NewReader(log.Bytes()), "recorded")
	if err != nil {
		t.Fatal(err)
	}
	replayTwice(t, lg)
	if *updateLog {
		dst := filepath.Join("..", "..", "..", "testdata", "machine", "ftp-session.log")
		if err := os.WriteFile(dst, log.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes, %d inputs)", dst, log.Len(), len(lg.Inputs))
	}
}

func replayTwice(t *testing.T, lg *inputlog.Log) {
	t.Helper()
	ms, err := lg.Replay(2)
	if err != nil {
		t.Fatal(err)
	}
	c := ms[0].Counters().FTP
	if c.BytesSent < 1<<20 || c.BytesReceived == 0 || c.Transfers < 3 {
		t.Fatalf("the replay did not carry the session: %+v", c)
	}
	t.Logf("replayed %d inputs: %+v", len(lg.Inputs), c)
}

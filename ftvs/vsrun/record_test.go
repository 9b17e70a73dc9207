package vsrun_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
	"github.com/ftvs/ftvs/ftvs/port"
	"github.com/ftvs/ftvs/ftvs/vsrun/internal/vstest"
)

// TestRecordedSessionReplays records a real session (Linux's TCP and curl as
// the client, real clocks, the solo driver) as an input log, then replays it
// into two fresh machines: they must agree with each other at every step and
// end in the live machine's state. FTVS_RECORD_TESTDATA=1 also writes the log
// to testdata/machine/ for the machine package's replay tests.
func TestRecordedSessionReplays(t *testing.T) {
	const mtime = 1_700_000_000
	files := []struct {
		path string
		size int64
		seed uint64
	}{{"a.bin", 300_000, 21}, {"b.bin", 1 << 20, 22}, {"sub/c.txt", 5000, 23}}
	dir := vstest.Dir(t)
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, f.size)
		memfs.Fill(b, f.seed, 0)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, time.Unix(mtime, 0), time.Unix(mtime, 0)); err != nil {
			t.Fatal(err)
		}
	}
	var logBuf bytes.Buffer
	var w *inputlog.Writer
	tp := vstest.Start(t, vstest.Options{Kind: port.Default, Record: func(cfg machine.Config) func(machine.Input) error {
		w = inputlog.NewWriter(&logBuf, cfg)
		w.Dir("sub", mtime)
		for _, f := range files {
			w.Synthetic(f.path, mtime, f.size, f.seed)
		}
		return func(in machine.Input) error { w.Input(in); return nil }
	}}, dir)

	tp.Client.MustRun("ping", "-c", "2", "-i", "0.2", "-W", "2", vstest.VSIP)
	curl(t, tp, "-o", "/dev/null", vstest.URL("a.bin"))
	if code := curl(t, tp, "-o", "/dev/null", "-w", "%{http_code}", "-r", "1000-99999", vstest.URL("b.bin")); code != "206" {
		t.Fatalf("range: %s", code)
	}
	if code := tp.Client.MustRun("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", vstest.URL("missing")); code != "404" {
		t.Fatalf("missing file: %s", code)
	}
	curl(t, tp, "-o", "/dev/null", "--head", vstest.URL("a.bin"))
	args := []string{"-Z"}
	for i := 0; i < 5; i++ {
		args = append(args, "-o", "/dev/null", vstest.URL("b.bin"))
	}
	curl(t, tp, append(args, "-o", "/dev/null", vstest.URL("sub/c.txt"))...)
	if err := tp.Stop(); err != nil {
		t.Fatal(err)
	}
	live := tp.Solo.Machine.StateHash()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("FTVS_RECORD_TESTDATA") == "1" {
		out := filepath.Join("..", "..", "testdata", "machine", "vs-solo-curl.log")
		if err := os.WriteFile(out, logBuf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", out, logBuf.Len())
	}

	lg, err := inputlog.Read(bytes.NewReader(logBuf.Bytes()), "live session")
	if err != nil {
		t.Fatal(err)
	}
	var ms [2]*machine.Machine
	for i := range ms {
		if ms[i], err = machine.New(lg.Config, lg.Files); err != nil {
			t.Fatal(err)
		}
	}
	frames := 0
	for _, in := range lg.Inputs {
		a, b := ms[0].Step(in), ms[1].Step(in)
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("input %d: replicas' outputs differ", in.Seq)
		}
		for _, o := range a {
			if o.Kind == machine.OutEvent && strings.Contains(string(o.Payload), "error") {
				t.Logf("event: %s", o.Payload)
			}
			if o.Kind == machine.OutFrame {
				frames++
			}
		}
	}
	if h0, h1 := ms[0].StateHash(), ms[1].StateHash(); h0 != h1 || h0 != live {
		t.Fatalf("state hashes: replicas %x %x, live machine %x", h0, h1, live)
	}
	t.Logf("%d inputs replayed, %d frames out, %d-byte log, state hash %x", len(lg.Inputs), frames, logBuf.Len(), live)
}

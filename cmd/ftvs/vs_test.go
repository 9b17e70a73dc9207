package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
)

func TestVSRunFlagErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := []string{"vs", "run", "--iface", "eth9", "--mac", "02:00:00:00:00:01", "--ip", "10.0.0.2/24", "--root", dir}
	with := func(flag, val string) []string {
		args := append([]string(nil), ok...)
		for i := range args {
			if args[i] == flag {
				args[i+1] = val
				return args
			}
		}
		return append(args, flag, val)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"vs", "run", "--mac", "02:00:00:00:00:01"}, "--iface is required"},
		{with("--mac", "02:00:00:00:01"), "--mac"},
		{with("--mac", "03:00:00:00:00:01"), "multicast"},
		{with("--ip", "10.0.0.2"), "--ip"},
		{with("--ip", "10.0.0.2/33"), "--ip"},
		{with("--gw", "10.0.0"), "--gw"},
		{with("--port", "pcap"), "--port \"pcap\""},
		{with("--root", file), "not a directory"},
		{with("--root", filepath.Join(dir, "none")), "--root"},
		{with("--isn-key", "abc"), "--isn-key"},
		{with("--mtu", "100"), "--mtu"},
		{with("--iface", "fv4-no-such-if"), "fv4-no-such-if"},
	} {
		root := newRootCmd()
		root.SetArgs(c.args)
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %q", c.args[2:], err, c.want)
		}
		var ee *exitError
		if !errors.As(err, &ee) || ee.code == 0 {
			t.Errorf("%v: error %v carries no exit status", c.args[2:], err)
		}
	}
}

// TestVSRunServes runs `ftvs vs run` (in-process, on a thread inside a VS
// namespace) and fetches a file with curl from a client namespace.
func TestVSRunServes(t *testing.T) {
	vs, cl := vethPair(t, "fv4", "10.78.0.2/24", "curl", "ping")

	dir := t.TempDir()
	content := bytes.Repeat([]byte("ftvs solo driver\n"), 100_000)
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "session.log")
	stop := runVS(t, vs, "--iface", "v0", "--mac", "02:f4:00:00:00:09", "--ip", "10.78.0.1/24", "--root", dir, "--record", logPath)
	if !waitFor(10*time.Second, func() bool { _, err := cl.Run("ping", "-c", "1", "-W", "1", "10.78.0.1"); return err == nil }) {
		t.Fatalf("VS never answered ping; its output: %s", stop())
	}
	out, err := cl.Run("curl", "-sS", "--fail", "--max-time", "30", "http://10.78.0.1/f.txt")
	if err != nil || out != string(content) {
		t.Fatalf("curl: %v (%d bytes of %d): %.200s", err, len(out), len(content), out)
	}
	log := stop()
	if !strings.Contains(log, "serving "+dir) || !strings.Contains(log, "frames out") {
		t.Fatalf("output lacks the start line or the counters: %s", log)
	}

	// The recorded session replays: two machines agree at every step and
	// serve the file's bytes.
	lf, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	lg, err := inputlog.Read(lf, logPath)
	if err != nil {
		t.Fatal(err)
	}
	var ms [2]*machine.Machine
	for i := range ms {
		if ms[i], err = machine.New(lg.Config, lg.Files); err != nil {
			t.Fatal(err)
		}
	}
	var sent int
	for _, in := range lg.Inputs {
		a, b := ms[0].Step(in), ms[1].Step(in)
		if len(a) != len(b) {
			t.Fatalf("input %d: %d vs %d outputs", in.Seq, len(a), len(b))
		}
		for i := range a {
			if !bytes.Equal(a[i].Payload, b[i].Payload) || a[i].GSO != b[i].GSO {
				t.Fatalf("input %d: output %d differs", in.Seq, i)
			}
			sent += len(a[i].Payload)
		}
	}
	if ms[0].StateHash() != ms[1].StateHash() || sent < len(content) || len(lg.Inputs) < 5 {
		t.Fatalf("replay: %d inputs, %d bytes out, hashes %x %x", len(lg.Inputs), sent, ms[0].StateHash(), ms[1].StateHash())
	}
}

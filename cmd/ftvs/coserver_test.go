package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
)

func TestStallmeter(t *testing.T) {
	data := strings.Repeat("ftvs", 100000)
	marks := filepath.Join(t.TempDir(), "marks")
	if err := os.WriteFile(marks, []byte(strconv.FormatInt(time.Now().UnixNano(), 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out strings.Builder
	root.SetOut(&out)
	root.SetIn(strings.NewReader(data))
	root.SetArgs([]string{"coserver", "stallmeter", "--marks", marks})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Bytes  int64     `json:"bytes"`
		SHA256 string    `json:"sha256"`
		Marks  []float64 `json:"stalls_at_marks_ms"`
	}
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	sum := sha256.Sum256([]byte(data))
	if r.Bytes != int64(len(data)) || r.SHA256 != hex.EncodeToString(sum[:]) || len(r.Marks) != 1 {
		t.Fatalf("stallmeter said %+v", r)
	}
}

func TestCoserverCLIErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("node: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"coserver", "--config", bad}, "bad.yaml:1: field node: is 3"},
		{[]string{"status"}, "give --config FILE or --addr HOST:PORT"},
		{[]string{"status", "--config", bad}, "bad.yaml:1: field node"},
		{[]string{"witness", "--listen", "127.0.0.1:0", "--key", "abcd"}, "want the pair key"},
		{[]string{"witness", "--key", strings.Repeat("ab", 32)}, "--listen is required"},
	} {
		_, stderr, code := runHwcheck(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("ftvs %s: exit %d, %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
}

func TestStatusText(t *testing.T) {
	var b strings.Builder
	printStatus(&b, &coserver.Status{Node: 2, Role: "primary", Peer: "synced", PeerAlive: true, PeerRole: "secondary",
		Seq: 10, PeerApplied: 9, Lag: 1, LastPauseUS: 1500,
		Links:  []coserver.LinkStatus{{Name: "link1", Up: true, Active: true, RTTUS: 80}, {Name: "link2"}},
		Events: []coserver.Event{{Kind: "go-live", Seq: 7, Detail: "peer silent"}}})
	for _, want := range []string{"node 2: primary (secondary: synced)", "seq 10, peer applied 9, lag 1", "link1: up, active, rtt 80µs", "link2: down", "go-live", "1.5ms"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, b.String())
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/ftvs/manager"
	"github.com/ftvs/ftvs/ftvs/manager/api"
	"github.com/ftvs/ftvs/ftvs/manager/state"
)

type ctlSource struct{ snap state.Snapshot }

func (s ctlSource) Snapshot() state.Snapshot   { return s.snap }
func (s ctlSource) Events() <-chan state.Event { return nil }

type ctlRecorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *ctlRecorder) rec(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
	if s == "resync busy" {
		return errors.New("a resync of busy is running")
	}
	return nil
}
func (r *ctlRecorder) SetInService(_ context.Context, n int, in bool) error {
	return r.rec(fmt.Sprintf("service %d %v", n, in))
}
func (r *ctlRecorder) MovePort(_ context.Context, n int) error {
	return r.rec(fmt.Sprintf("port %d", n))
}
func (r *ctlRecorder) StartVS(context.Context) error { return r.rec("start") }
func (r *ctlRecorder) StopVS(context.Context) error  { return r.rec("stop") }
func (r *ctlRecorder) StartResync(_ context.Context, d string) error {
	return r.rec("resync " + d)
}
func (r *ctlRecorder) StartVerify(_ context.Context, d string) error { return r.rec("verify " + d) }
func (r *ctlRecorder) ResolveSplitBrain(_ context.Context, n int) error {
	return r.rec(fmt.Sprintf("resolve %d", n))
}

func TestCtlAgainstARunningManager(t *testing.T) {
	dir := t.TempDir()
	var sec manager.Sections
	sec.Manager.Listen, sec.Manager.StateDir = "127.0.0.1:0", dir
	src := ctlSource{state.Snapshot{LocalNode: 1, CoServers: []state.CoServer{{Node: 1, Role: "primary", Health: state.OK, InService: true},
		{Node: 2, Role: "secondary", Health: state.Degraded, InService: true}}}}
	rec := &ctlRecorder{}
	ctx, cancel := context.WithCancel(context.Background())
	m, err := manager.Start(ctx, manager.Options{Sections: sec, Host: "cs1", Source: src, Control: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = m.Wait() }()
	base := []string{"ctl", "--addr", m.Addr.String(), "--ca", m.CertFile, "--token-file", filepath.Join(dir, api.TokenFileName)}
	run := func(args ...string) (string, int) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append(append([]string{}, base...), args...))
		err := root.Execute()
		code := 0
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else if err != nil {
			code = -1
		}
		return out.String(), code
	}
	out, code := run("status", "--json")
	var s state.Snapshot
	if code != 0 || json.Unmarshal([]byte(out), &s) != nil || s.CoServer(2) == nil || s.CoServer(2).Health != state.Degraded {
		t.Fatalf("status --json: code %d\n%s", code, out)
	}
	if out, code = run("status"); code != 0 || !strings.Contains(out, "coserver 2: secondary, degraded") {
		t.Fatalf("status: code %d\n%s", code, out)
	}
	steps := []struct {
		args []string
		call string
	}{
		{[]string{"out", "2"}, "service 2 false"}, {[]string{"in", "2"}, "service 2 true"}, {[]string{"move-port", "2"}, "port 2"},
		{[]string{"vs", "stop"}, "stop"}, {[]string{"vs", "start"}, "start"}, {[]string{"resync", "vd0"}, "resync vd0"},
		{[]string{"verify", "vd0"}, "verify vd0"}, {[]string{"resolve-split-brain", "--keep", "1"}, "resolve 1"},
	}
	for _, st := range steps {
		if out, code := run(append(st.args, "--json")...); code != 0 || !strings.Contains(out, `"ok": true`) {
			t.Fatalf("%v: code %d\n%s", st.args, code, out)
		}
		rec.mu.Lock()
		last := rec.calls[len(rec.calls)-1]
		rec.mu.Unlock()
		if last != st.call {
			t.Fatalf("%v reached the controller as %q", st.args, last)
		}
	}
	if _, code := run("resync", "busy"); code != 4 {
		t.Fatalf("refused control exit %d, want 4", code)
	}
	if _, code := run("out", "3"); code != 2 {
		t.Fatalf("bad node exit %d, want 2", code)
	}
	if _, code := run("resolve-split-brain"); code != 2 {
		t.Fatalf("resolve without --keep exit %d, want 2", code)
	}
	bad := filepath.Join(dir, "bad-token")
	if err := os.WriteFile(bad, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base[len(base)-1] = bad
	if _, code := run("status"); code != 3 {
		t.Fatalf("wrong token exit %d, want 3", code)
	}
	rec.mu.Lock()
	n := len(rec.calls)
	rec.mu.Unlock()
	if _, code := run("out", "1"); code != 3 {
		t.Fatalf("control with a wrong token exit %d, want 3", code)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != n {
		t.Fatalf("a refused control reached the controller: %v", rec.calls)
	}
}

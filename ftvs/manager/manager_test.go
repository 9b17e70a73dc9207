package manager

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/manager/alert"
	"github.com/ftvs/ftvs/ftvs/manager/api"
	"github.com/ftvs/ftvs/ftvs/manager/state"
	"github.com/ftvs/ftvs/internal/yamlconf"
)

type source struct {
	mu  sync.Mutex
	cur state.Snapshot
	evs chan state.Event
}

func (s *source) Snapshot() state.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}
func (s *source) Events() <-chan state.Event { return s.evs }
func (s *source) set(fn func(*state.Snapshot)) {
	s.mu.Lock()
	fn(&s.cur)
	s.mu.Unlock()
}

type noControl struct{}

func (noControl) SetInService(context.Context, int, bool) error { return nil }
func (noControl) MovePort(context.Context, int) error           { return nil }
func (noControl) StartVS(context.Context) error                 { return nil }
func (noControl) StopVS(context.Context) error                  { return nil }
func (noControl) StartResync(context.Context, string) error     { return nil }
func (noControl) StartVerify(context.Context, string) error     { return nil }
func (noControl) ResolveSplitBrain(context.Context, int) error  { return nil }

// TestStartEndToEnd runs the manager as the daemon will: a Source whose
// CoServer 2 dies, a daemon event (divergence) on the event stream; the API
// shows it, the metrics count it and a webhook receives both alerts.
func TestStartEndToEnd(t *testing.T) {
	var mu sync.Mutex
	var got []alert.Alert
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a alert.Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err == nil {
			mu.Lock()
			got = append(got, a)
			mu.Unlock()
		}
	}))
	defer hook.Close()
	dir := t.TempDir()
	src := `manager:
  listen: "127.0.0.1:0"
  state_dir: ` + dir + `
  poll: 50ms
alerts:
  webhooks:
    - url: ` + hook.URL + `
`
	var sec Sections
	doc, err := yamlconf.Load("cs.yaml", []byte(src), &sec)
	if err != nil {
		t.Fatal(err)
	}
	if err := sec.Check(doc, "cs1"); err != nil {
		t.Fatal(err)
	}
	s := &source{evs: make(chan state.Event, 4), cur: state.Snapshot{LocalNode: 1,
		CoServers: []state.CoServer{{Node: 1, Role: "primary", Health: state.OK}, {Node: 2, Role: "secondary", Health: state.OK}}}}
	ctx, cancel := context.WithCancel(context.Background())
	m, err := Start(ctx, Options{Sections: sec, Doc: doc, Host: "cs1", Source: s, Control: noControl{}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := m.Wait(); err != nil {
			t.Error(err)
		}
	}()
	c, err := api.NewClient(api.ClientOptions{Addr: m.Addr.String(), Token: m.Token, CAFile: m.CertFile})
	if err != nil {
		t.Fatal(err)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; alerts %+v; events %+v", what, m.Alerts.Stats(), m.Model.Current().Events)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait("the first snapshot", func() bool {
		st, err := c.Status(ctx)
		return err == nil && st.CoServer(2) != nil
	})
	s.set(func(p *state.Snapshot) { p.CoServers[1].Health, p.CoServers[1].Role = state.Failed, "lost" })
	s.evs <- state.Event{Kind: "divergence", Detail: "ack hash mismatch at 4242"}
	wait("both alerts at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		kinds := map[alert.Kind]bool{}
		for _, a := range got {
			kinds[a.Kind] = true
		}
		return kinds[alert.CoServerLost] && kinds[alert.Divergence]
	})
	st, err := c.Status(ctx)
	if err != nil || st.CoServer(2).Health != state.Failed {
		t.Fatalf("status %v %+v", err, st)
	}
	text, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(text, `ftvs_coserver_up{node="2"} 0`) {
		t.Fatalf("metrics %v:\n%.400s", err, text)
	}
	mu.Lock()
	for _, a := range got {
		if a.Host != "cs1" {
			t.Errorf("alert host %q", a.Host)
		}
	}
	mu.Unlock()
}

func TestChecksRefuseEveryInterfaceAndNameTheLine(t *testing.T) {
	src := "manager:\n  listen: \"0.0.0.0:8443\"\n"
	var sec Sections
	doc, err := yamlconf.Load("cs.yaml", []byte(src), &sec)
	if err != nil {
		t.Fatal(err)
	}
	err = sec.Check(doc, "cs1")
	if err == nil || !strings.Contains(err.Error(), "cs.yaml:2: field manager.listen") {
		t.Fatalf("err = %v", err)
	}
}

package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// recorder is the test's Controller: it records every call.
type recorder struct {
	mu    sync.Mutex
	calls []string
	fail  error
}

func (r *recorder) rec(s string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
	return r.fail
}
func (r *recorder) SetInService(_ context.Context, n int, in bool) error {
	return r.rec(fmt.Sprintf("service %d %v", n, in))
}
func (r *recorder) MovePort(_ context.Context, n int) error { return r.rec(fmt.Sprintf("port %d", n)) }
func (r *recorder) StartVS(context.Context) error           { return r.rec("start") }
func (r *recorder) StopVS(context.Context) error            { return r.rec("stop") }
func (r *recorder) StartResync(_ context.Context, d string) error {
	return r.rec("resync " + d)
}
func (r *recorder) StartVerify(_ context.Context, d string) error { return r.rec("verify " + d) }
func (r *recorder) ResolveSplitBrain(_ context.Context, n int) error {
	return r.rec(fmt.Sprintf("resolve %d", n))
}
func (r *recorder) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

// makeCA writes a CA and a client certificate it signs into dir.
func makeCA(t testing.TB, dir, name string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ct := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name + "-operator"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, ct, ca, &k.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	caFile, certFile, keyFile = filepath.Join(dir, name+"-ca.pem"), filepath.Join(dir, name+"-cert.pem"), filepath.Join(dir, name+"-key.pem")
	for f, b := range map[string][]byte{
		caFile:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}),
	} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return
}

type fixture struct {
	addr, dir, token, serverCert string
	model                        *state.Model
	ctl                          *recorder
	goodCA, goodCert, goodKey    string
	badCert, badKey              string
}

func startServer(t *testing.T) *fixture { return startServerTB(t) }

func startServerB(b *testing.B, _ *testing.T) *fixture { return startServerTB(b) }

func startServerTB(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), model: state.NewModel(0), ctl: &recorder{}}
	f.model.Update(state.Snapshot{LocalNode: 1, CoServers: []state.CoServer{{Node: 1, Role: "primary", Health: state.OK}, {Node: 2, Role: "secondary", Health: state.OK}}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	cert, err := LoadOrCreateCert("", "", f.dir, f.addr)
	if err != nil {
		t.Fatal(err)
	}
	f.serverCert = filepath.Join(f.dir, CertFileName)
	if f.token, err = LoadOrCreateToken("", f.dir); err != nil {
		t.Fatal(err)
	}
	f.goodCA, f.goodCert, f.goodKey = makeCA(t, f.dir, "good")
	_, f.badCert, f.badKey = makeCA(t, f.dir, "bad")
	pool, err := LoadCAPool(f.goodCA)
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Model: f.model, Control: f.ctl, Token: f.token, ClientCAs: pool, Heartbeat: 50 * time.Millisecond,
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ftvs_up 1\n") })}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, cert) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return f
}

func (f *fixture) client(t *testing.T, token, cert, key string) *Client {
	t.Helper()
	c, err := NewClient(ClientOptions{Addr: f.addr, Token: token, CAFile: f.serverCert, CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func statusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func TestAuthRefusals(t *testing.T) {
	f := startServer(t)
	ctx := context.Background()
	if _, err := f.client(t, "", "", "").Status(ctx); statusOf(err) != 401 {
		t.Fatalf("no token: %v, want 401", err)
	}
	if _, err := f.client(t, "not-the-token-at-all", "", "").Status(ctx); statusOf(err) != 401 {
		t.Fatalf("wrong token: %v, want 401", err)
	}
	if err := f.client(t, f.token[:len(f.token)-1], "", "").StopVS(ctx); statusOf(err) != 401 {
		t.Fatalf("truncated token on a control: %v, want 401", err)
	}
	if _, err := f.client(t, "", "", "").Metrics(ctx); statusOf(err) != 401 {
		t.Fatalf("metrics without token: %v, want 401", err)
	}
	// Go's client offers only a certificate from a CA the server names, so
	// a certificate from another CA is not sent: 401.
	if _, err := f.client(t, "", f.badCert, f.badKey).Status(ctx); statusOf(err) != 401 {
		t.Fatalf("wrong client certificate: %v, want 401", err)
	}
	// A client that presents it anyway fails the TLS handshake.
	bad, err := tls.LoadX509KeyPair(f.badCert, f.badKey)
	if err != nil {
		t.Fatal(err)
	}
	pool, _ := LoadCAPool(f.serverCert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &bad, nil }}}}
	resp, err := hc.Get("https://" + f.addr + "/api/v1/status")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("forced wrong client certificate: %s, want a handshake failure", resp.Status)
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("forced wrong client certificate: %v", err)
	}
	if len(f.ctl.Calls()) != 0 {
		t.Fatalf("refused calls reached the controller: %v", f.ctl.Calls())
	}
	// The right ways in.
	s, err := f.client(t, f.token, "", "").Status(ctx)
	if err != nil || s.CoServer(2) == nil {
		t.Fatalf("token: %v %+v", err, s)
	}
	if _, err := f.client(t, "", f.goodCert, f.goodKey).Status(ctx); err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	// A client that does not trust the server's certificate refuses it.
	c, _ := NewClient(ClientOptions{Addr: f.addr, Token: f.token, CAFile: f.badCert})
	if _, err := c.Status(ctx); err == nil {
		t.Fatal("client accepted an untrusted server certificate")
	}
}

func raw(t *testing.T, f *fixture, method, path, ctype, body string) int {
	t.Helper()
	pool, _ := LoadCAPool(f.serverCert)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequest(method, "https://"+f.addr+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestMethodsAndBodies(t *testing.T) {
	f := startServer(t)
	cases := []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"DELETE", "/api/v1/status", "", "", 405},
		{"GET", "/api/v1/vs/stop", "", "", 405},
		{"PUT", "/api/v1/split-brain/resolve", "application/json", `{"node":1}`, 405},
		{"POST", "/api/v1/vs/stop", "text/plain", "", 415},
		{"POST", "/api/v1/vs/port", "application/json", `{"node":3}`, 400},
		{"POST", "/api/v1/vs/port", "application/json", `{"node":1,"x":2}`, 400},
		{"POST", "/api/v1/coservers/7/service", "application/json", `{"in_service":false}`, 400},
		{"POST", "/api/v1/disks/..%2fetc/resync", "application/json", `{}`, 400},
		{"GET", "/api/v1/nothing", "", "", 404},
		{"GET", "/api/v1/status", "", "", 200},
	}
	for _, c := range cases {
		if got := raw(t, f, c.method, c.path, c.ctype, c.body); got != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, got, c.want)
		}
	}
	if n := len(f.ctl.Calls()); n != 0 {
		t.Fatalf("bad requests reached the controller: %v", f.ctl.Calls())
	}
}

func TestControlsReachTheController(t *testing.T) {
	f := startServer(t)
	ctx := context.Background()
	c := f.client(t, f.token, "", "")
	steps := []struct {
		call func() error
		want string
	}{
		{func() error { return c.SetInService(ctx, 2, false) }, "service 2 false"},
		{func() error { return c.SetInService(ctx, 2, true) }, "service 2 true"},
		{func() error { return c.MovePort(ctx, 1) }, "port 1"},
		{func() error { return c.StopVS(ctx) }, "stop"},
		{func() error { return c.StartVS(ctx) }, "start"},
		{func() error { return c.StartResync(ctx, "vd0") }, "resync vd0"},
		{func() error { return c.StartVerify(ctx, "vd0") }, "verify vd0"},
		{func() error { return c.ResolveSplitBrain(ctx, 2) }, "resolve 2"},
	}
	for i, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.want, err)
		}
		if got := f.ctl.Calls(); len(got) != i+1 || got[i] != s.want {
			t.Fatalf("controller saw %v, want ... %q", got, s.want)
		}
	}
	f.ctl.mu.Lock()
	f.ctl.fail = errors.New("peer is not in sync")
	f.ctl.mu.Unlock()
	err := c.SetInService(ctx, 1, false)
	if statusOf(err) != 409 || !strings.Contains(err.Error(), "peer is not in sync") {
		t.Fatalf("refused control: %v, want 409 with the reason", err)
	}
	evs, err := c.Events(ctx)
	if err != nil || len(evs) != len(steps) || evs[0].Kind != "control" || !strings.Contains(evs[0].Detail, "by token") {
		t.Fatalf("control events %v %+v", err, evs)
	}
}

func TestWatchStreamsChanges(t *testing.T) {
	f := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := f.client(t, "", f.goodCert, f.goodKey)
	got := make(chan state.Snapshot, 16)
	go func() {
		_ = c.Watch(ctx, func(s state.Snapshot) error { got <- s; return nil })
	}()
	first := <-got
	if first.CoServer(2).Health != state.OK {
		t.Fatalf("first %+v", first)
	}
	lost := first
	lost.CoServers = []state.CoServer{{Node: 1, Role: "primary", Health: state.Degraded}, {Node: 2, Role: "lost", Health: state.Failed}}
	f.model.Update(lost)
	for {
		select {
		case s := <-got:
			if s.CoServer(2).Health == state.Failed {
				if len(s.Events) == 0 || s.Events[len(s.Events)-1].Kind != state.KindCoServerLost {
					t.Fatalf("lost without its event: %+v", s.Events)
				}
				return
			}
		case <-ctx.Done():
			t.Fatal("the change never reached the watcher")
		}
	}
}

func TestTokenAndCertPersist(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateToken("", dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateToken("", dir)
	if err != nil || a != b || len(a) != 64 {
		t.Fatalf("token %q then %q (%v)", a, b, err)
	}
	st, _ := os.Stat(filepath.Join(dir, TokenFileName))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode %v", st.Mode())
	}
	c1, err := LoadOrCreateCert("", "", dir, "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := LoadOrCreateCert("", "", dir, "127.0.0.1:1")
	if err != nil || string(c1.Certificate[0]) != string(c2.Certificate[0]) {
		t.Fatal("certificate regenerated at second start")
	}
	if err := os.WriteFile(filepath.Join(dir, "short"), []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateToken(filepath.Join(dir, "short"), dir); err == nil {
		t.Fatal("a 3-character token was accepted")
	}
}

func FuzzReadSSE(f *testing.F) {
	f.Add([]byte("event: status\nid: 1\ndata: {}\n\n: keep-alive\n\n"))
	f.Add([]byte("data: a\ndata: b\n\nevent\n\n:x\nid\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := ReadSSE(strings.NewReader(string(b)), func(e SSE) error {
			n++
			if len(e.Data) > len(b) {
				t.Fatalf("event data longer than the input")
			}
			return nil
		})
		if err == nil {
			t.Fatal("a finished stream must report its end")
		}
		if n > len(b) {
			t.Fatalf("%d events from %d bytes", n, len(b))
		}
	})
}

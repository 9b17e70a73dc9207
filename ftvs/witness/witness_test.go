package witness

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

var key = bytes.Repeat([]byte{7}, 32)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestServer(t *testing.T, ttl time.Duration) (*Server, *clock, *httptest.Server) {
	t.Helper()
	s := NewServer(key, ttl, nil)
	c := &clock{t: time.Now()}
	s.now = c.now
	s.start = c.t.Add(-time.Hour) // past the restart quarantine
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return s, c, hs
}

// TestOneLeaseAtATime: node 1 holds and renews; node 2 is refused until
// node 1's lease expires, then granted; node 1 is refused after that.
func TestOneLeaseAtATime(t *testing.T) {
	_, c, hs := newTestServer(t, time.Second)
	addr := strings.TrimPrefix(hs.URL, "http://")
	n1, n2 := NewClient(addr, key, 1), NewClient(addr, key, 2)
	must := func(cl *Client, want bool, what string) {
		t.Helper()
		got, err := cl.Acquire(2 * time.Second)
		if err != nil || got != want {
			t.Fatalf("%s: granted=%v err=%v, want %v", what, got, err, want)
		}
	}
	must(n1, true, "node 1 first")
	must(n2, false, "node 2 while node 1 holds")
	c.t = c.t.Add(800 * time.Millisecond)
	must(n1, true, "node 1 renews")
	c.t = c.t.Add(800 * time.Millisecond)
	must(n2, false, "node 2 inside the renewed lease")
	c.t = c.t.Add(300 * time.Millisecond)
	must(n2, true, "node 2 after node 1's lease expired")
	must(n1, false, "node 1 after losing the lease")
	if n1.TTL() != time.Second {
		t.Fatalf("client TTL %s, want the witness's 1s", n1.TTL())
	}
}

// TestRestartQuarantine: a fresh witness grants nothing for one TTL.
func TestRestartQuarantine(t *testing.T) {
	s, c, hs := newTestServer(t, time.Second)
	s.start = c.t
	cl := NewClient(strings.TrimPrefix(hs.URL, "http://"), key, 2)
	if ok, _ := cl.Acquire(time.Second); ok {
		t.Fatal("granted during the restart quarantine")
	}
	c.t = c.t.Add(1100 * time.Millisecond)
	if ok, err := cl.Acquire(time.Second); !ok {
		t.Fatalf("not granted after the quarantine: %v", err)
	}
}

// TestRefusals: wrong key, replayed nonce and stale time are refused; a
// client with the wrong key also rejects the witness's reply.
func TestRefusals(t *testing.T) {
	s, c, hs := newTestServer(t, time.Second)
	addr := strings.TrimPrefix(hs.URL, "http://")
	bad := NewClient(addr, bytes.Repeat([]byte{8}, 32), 1)
	if ok, err := bad.Acquire(time.Second); ok || err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("wrong key: granted=%v err=%v", ok, err)
	}
	r := Request{Node: 1, TimeMS: c.t.UnixMilli(), Nonce: strings.Repeat("ab", 16)}
	r.MAC = r.sum(key)
	post := func(r Request) int {
		b, _ := json.Marshal(r)
		resp, err := http.Post(hs.URL+"/lease", "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(r); code != 200 {
		t.Fatalf("first request: %d", code)
	}
	if code := post(r); code != http.StatusForbidden {
		t.Fatalf("replayed request: %d, want 403", code)
	}
	r.Nonce, r.TimeMS = strings.Repeat("cd", 16), c.t.Add(-time.Minute).UnixMilli()
	r.MAC = r.sum(key)
	if code := post(r); code != http.StatusForbidden {
		t.Fatalf("stale request: %d, want 403", code)
	}
	if s.holder != 1 {
		t.Fatalf("holder %d after refusals, want 1", s.holder)
	}
}

func FuzzParseRequest(f *testing.F) {
	r := Request{Node: 1, TimeMS: 1, Nonce: strings.Repeat("ab", 16)}
	r.MAC = r.sum(key)
	b, _ := json.Marshal(r)
	f.Add(b)
	f.Add([]byte(`{"node":3}`))
	f.Add([]byte(`{"node":1,"nonce":"zz","mac":"00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		s := NewServer(key, time.Second, nil)
		_, _ = s.decide(r, time.Now())
	})
}

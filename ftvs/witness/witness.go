// Package witness is the small third-party service (`ftvs witness`) that
// decides which CoServer of a SplitSite pair may serve when they cannot see
// each other: it grants one lease to one node at a time.
//
// Protocol: HTTP POST /lease with a JSON request
//
//	{"node": 1|2, "time_ms": unix ms, "nonce": 16 random bytes hex, "mac": hex}
//	mac = HMAC-SHA256(pair key, "ftvs-witness v1 req|node|time_ms|nonce")
//
// A request older or newer than MaxSkew, or whose nonce was seen within
// MaxSkew, or with a wrong MAC is refused (403, logged). The lease goes to
// the node asking when nobody holds it, its holder's lease has expired, or
// the node already holds it (renewal); it lasts TTL from when the witness
// received the request. The reply
//
//	{"granted": bool, "holder": n, "ttl_ms": ms, "nonce": the request's, "mac": hex}
//	mac = HMAC-SHA256(pair key, "ftvs-witness v1 rep|granted|holder|ttl_ms|nonce")
//
// is bound to the request's nonce, so a node cannot be fooled by a replayed
// or forged grant. The witness keeps no state on disk: after a restart it
// waits one TTL before granting anything, so a lease it granted before the
// restart has run out first.
package witness

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Defaults.
const (
	DefaultTTL = 2 * time.Second
	MaxSkew    = 10 * time.Second
)

// Request is a lease request.
type Request struct {
	Node   int    `json:"node"`
	TimeMS int64  `json:"time_ms"`
	Nonce  string `json:"nonce"`
	MAC    string `json:"mac"`
}

// Reply is the witness's answer.
type Reply struct {
	Granted bool   `json:"granted"`
	Holder  int    `json:"holder"`
	TTLMS   int64  `json:"ttl_ms"`
	Nonce   string `json:"nonce"`
	MAC     string `json:"mac"`
}

func sum(key []byte, parts ...string) string {
	m := hmac.New(sha256.New, key)
	for i, p := range parts {
		if i > 0 {
			m.Write([]byte{'|'})
		}
		m.Write([]byte(p))
	}
	return hex.EncodeToString(m.Sum(nil))
}

func (r *Request) sum(key []byte) string {
	return sum(key, "ftvs-witness v1 req", strconv.Itoa(r.Node), strconv.FormatInt(r.TimeMS, 10), r.Nonce)
}

func (r *Reply) sum(key []byte) string {
	return sum(key, "ftvs-witness v1 rep", strconv.FormatBool(r.Granted), strconv.Itoa(r.Holder), strconv.FormatInt(r.TTLMS, 10), r.Nonce)
}

// ParseRequest decodes and checks the shape of a request body.
func ParseRequest(b []byte) (*Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("lease request: %w", err)
	}
	if r.Node != 1 && r.Node != 2 {
		return nil, fmt.Errorf("lease request: node %d, want 1 or 2", r.Node)
	}
	if n, err := hex.DecodeString(r.Nonce); err != nil || len(n) != 16 {
		return nil, errors.New("lease request: nonce is not 16 bytes of hex")
	}
	if m, err := hex.DecodeString(r.MAC); err != nil || len(m) != sha256.Size {
		return nil, errors.New("lease request: mac is not 32 bytes of hex")
	}
	return &r, nil
}

// Server grants the lease.
type Server struct {
	key   []byte
	ttl   time.Duration
	log   *slog.Logger
	now   func() time.Time
	start time.Time

	mu      sync.Mutex
	holder  int
	expires time.Time
	nonces  map[string]time.Time
}

// NewServer makes a witness for the pair key.
func NewServer(key []byte, ttl time.Duration, log *slog.Logger) *Server {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if log == nil {
		log = slog.Default()
	}
	return &Server{key: key, ttl: ttl, log: log, now: time.Now, start: time.Now(), nonces: map[string]time.Time{}}
}

// Decide handles one checked request at time now.
func (s *Server) decide(r *Request, now time.Time) (*Reply, error) {
	if !hmac.Equal([]byte(r.sum(s.key)), []byte(r.MAC)) {
		return nil, errors.New("bad MAC (wrong pair key?)")
	}
	if d := now.Sub(time.UnixMilli(r.TimeMS)); d > MaxSkew || d < -MaxSkew {
		return nil, fmt.Errorf("request time is %s off the witness clock", d.Round(time.Millisecond))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, t := range s.nonces { //detcheck:orderless (not deterministic code; expiry only)
		if now.Sub(t) > 2*MaxSkew {
			delete(s.nonces, n)
		}
	}
	if _, seen := s.nonces[r.Nonce]; seen {
		return nil, errors.New("replayed nonce")
	}
	s.nonces[r.Nonce] = now
	rep := &Reply{TTLMS: s.ttl.Milliseconds(), Nonce: r.Nonce}
	free := s.holder == 0 || now.After(s.expires)
	if now.Sub(s.start) < s.ttl && s.holder == 0 {
		free = false // a lease granted before a restart may still run
	}
	if free || s.holder == r.Node {
		if s.holder != r.Node {
			s.log.Info("witness: lease granted", "node", r.Node, "previous", s.holder)
		}
		s.holder, s.expires, rep.Granted = r.Node, now.Add(s.ttl), true
	}
	rep.Holder = s.holder
	rep.MAC = rep.sum(s.key)
	return rep, nil
}

// Handler is the HTTP handler (POST /lease).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /lease", func(w http.ResponseWriter, req *http.Request) {
		b, err := io.ReadAll(io.LimitReader(req.Body, 4096))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		r, err := ParseRequest(b)
		if err != nil {
			s.log.Warn("witness: bad request", "from", req.RemoteAddr, "err", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rep, err := s.decide(r, s.now())
		if err != nil {
			s.log.Warn("witness: request refused", "from", req.RemoteAddr, "node", r.Node, "err", err)
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		h, left := s.holder, time.Until(s.expires)
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"holder": h, "expires_in_ms": max(left.Milliseconds(), 0)})
	})
	return mux
}

// Client asks a witness for the lease.
type Client struct {
	addr string
	key  []byte
	node int

	mu  sync.Mutex
	ttl time.Duration
}

// NewClient makes a client for node at addr (host:port).
func NewClient(addr string, key []byte, node int) *Client {
	return &Client{addr: addr, key: key, node: node, ttl: DefaultTTL}
}

// TTL is the witness's lease length (DefaultTTL until it has answered).
func (c *Client) TTL() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ttl
}

// Acquire asks for (or renews) the lease.
func (c *Client) Acquire(timeout time.Duration) (bool, error) {
	var nb [16]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return false, err
	}
	r := Request{Node: c.node, TimeMS: time.Now().UnixMilli(), Nonce: hex.EncodeToString(nb[:])}
	r.MAC = r.sum(c.key)
	body, _ := json.Marshal(&r)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.addr+"/lease", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, fmt.Errorf("witness %s: %w", c.addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("witness %s: %s", c.addr, resp.Status)
	}
	var rep Reply
	if err := json.NewDecoder(io.LimitReader(resp.Body, 4096)).Decode(&rep); err != nil {
		return false, fmt.Errorf("witness %s: reply: %w", c.addr, err)
	}
	if rep.Nonce != r.Nonce || !hmac.Equal([]byte(rep.sum(c.key)), []byte(rep.MAC)) {
		return false, fmt.Errorf("witness %s: reply not authenticated", c.addr)
	}
	if rep.TTLMS > 0 {
		c.mu.Lock()
		c.ttl = time.Duration(rep.TTLMS) * time.Millisecond
		c.mu.Unlock()
	}
	return rep.Granted, nil
}

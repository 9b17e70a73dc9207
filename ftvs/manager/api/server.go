// Package api is the manager's HTTPS API on the management address: the
// pair's state as JSON, a server-sent-events stream of it, the controls, the
// Prometheus metrics and the web page. Every call but the static page needs
// a bearer token or a client certificate signed by the configured CA.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// Server serves the API.
type Server struct {
	Model     *state.Model
	Control   state.Controller
	Token     string         // bearer token; empty: token auth off
	ClientCAs *x509.CertPool // nil: client-certificate auth off
	Metrics   http.Handler   // served at /metrics behind auth; nil: none
	Page      http.Handler   // the web page at / (static, no auth); nil: none
	Log       *slog.Logger
	// Heartbeat is the interval of SSE keep-alive comments (default 15s).
	Heartbeat time.Duration
}

// APIPrefix is where the JSON API lives.
const APIPrefix = "/api/v1/"

// Handler returns the routes with authentication.
func (s *Server) Handler() http.Handler {
	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/status", s.status)
	api.HandleFunc("GET /api/v1/events", s.events)
	api.HandleFunc("GET /api/v1/watch", s.watch)
	api.HandleFunc("POST /api/v1/coservers/{node}/service", s.service)
	api.HandleFunc("POST /api/v1/vs/port", s.movePort)
	api.HandleFunc("POST /api/v1/vs/start", s.simple("start the VS", func(ctx context.Context) error { return s.Control.StartVS(ctx) }))
	api.HandleFunc("POST /api/v1/vs/stop", s.simple("stop the VS", func(ctx context.Context) error { return s.Control.StopVS(ctx) }))
	api.HandleFunc("POST /api/v1/disks/{disk}/resync", s.disk("resync", func(ctx context.Context, d string) error { return s.Control.StartResync(ctx, d) }))
	api.HandleFunc("POST /api/v1/disks/{disk}/verify", s.disk("verify", func(ctx context.Context, d string) error { return s.Control.StartVerify(ctx, d) }))
	api.HandleFunc("POST /api/v1/split-brain/resolve", s.resolve)
	if s.Metrics != nil {
		api.Handle("GET /metrics", s.Metrics)
	}
	root := http.NewServeMux()
	authed := s.auth(api)
	root.Handle("/api/", authed)
	root.Handle("/metrics", authed)
	if s.Page != nil {
		root.Handle("/", s.Page)
	}
	return securityHeaders(root)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:")
		h.ServeHTTP(w, r)
	})
}

// who reports how a request authenticated, or "" when it did not.
func (s *Server) who(r *http.Request) string {
	if s.ClientCAs != nil && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return "cert:" + r.TLS.VerifiedChains[0][0].Subject.CommonName
	}
	if s.Token == "" {
		return ""
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return ""
	}
	// Hashing first makes the comparison independent of the length too.
	a, b := sha256.Sum256([]byte(strings.TrimSpace(tok))), sha256.Sum256([]byte(s.Token))
	if subtle.ConstantTimeCompare(a[:], b[:]) == 1 {
		return "token"
	}
	return ""
}

func (s *Server) auth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		who := s.who(r)
		if who == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ftvs"`)
			writeErr(w, http.StatusUnauthorized, "authentication required: a bearer token or a client certificate")
			return
		}
		// A browser sends client certificates on its own; refusing
		// non-JSON posts stops a cross-site form from using them.
		if r.Method == http.MethodPost && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			writeErr(w, http.StatusUnsupportedMediaType, "POST bodies must be application/json")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), whoKey{}, who)))
	})
}

type whoKey struct{}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is the JSON of every refusal.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeErr(w http.ResponseWriter, code int, msg string) { writeJSON(w, code, ErrorBody{msg}) }

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Model.Current())
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Model.Current().Events)
}

// watch streams the snapshot as server-sent events: one "status" event now
// and one after every change.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	tick, cancel := s.Model.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	hb := s.Heartbeat
	if hb <= 0 {
		hb = 15 * time.Second
	}
	keep := time.NewTicker(hb)
	defer keep.Stop()
	var last uint64
	for {
		if cur := s.Model.Current(); cur.Version != last || last == 0 {
			last = cur.Version
			b, err := json.Marshal(cur)
			if err != nil {
				return
			}
			if _, err := fmt.Fprintf(w, "event: status\nid: %d\ndata: %s\n\n", cur.Version, b); err != nil {
				return
			}
			fl.Flush()
		}
		select {
		case <-r.Context().Done():
			return
		case <-tick:
		case <-keep.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// decode reads a small JSON body strictly.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	return nil
}

func (s *Server) done(w http.ResponseWriter, r *http.Request, what string, err error) {
	who, _ := r.Context().Value(whoKey{}).(string)
	if err != nil {
		if s.Log != nil {
			s.Log.Warn("control refused", "what", what, "by", who, "err", err)
		}
		writeErr(w, http.StatusConflict, what+": "+err.Error())
		return
	}
	if s.Log != nil {
		s.Log.Info("control", "what", what, "by", who)
	}
	s.Model.AddEvent(state.Event{Kind: "control", Detail: what + " (by " + who + ")"})
	s.Model.Refresh()
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "done": what})
}

func nodeArg(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || (n != 1 && n != 2) {
		return 0, fmt.Errorf("node %q: must be 1 or 2", v)
	}
	return n, nil
}

// ServiceRequest is the body of POST /api/v1/coservers/{node}/service.
type ServiceRequest struct {
	InService bool `json:"in_service"`
}

func (s *Server) service(w http.ResponseWriter, r *http.Request) {
	n, err := nodeArg(r.PathValue("node"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	var req ServiceRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	what := fmt.Sprintf("take CoServer %d out of service", n)
	if req.InService {
		what = fmt.Sprintf("bring CoServer %d back into service", n)
	}
	s.done(w, r, what, s.Control.SetInService(r.Context(), n, req.InService))
}

// NodeRequest names a CoServer: POST /api/v1/vs/port and
// /api/v1/split-brain/resolve ({"node": 2}).
type NodeRequest struct {
	Node int `json:"node"`
}

func (s *Server) nodeBody(w http.ResponseWriter, r *http.Request) (int, bool) {
	var req NodeRequest
	if err := decode(r, &req); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return 0, false
	}
	if req.Node != 1 && req.Node != 2 {
		writeErr(w, http.StatusBadRequest, fmt.Sprintf("node %d: must be 1 or 2", req.Node))
		return 0, false
	}
	return req.Node, true
}

func (s *Server) movePort(w http.ResponseWriter, r *http.Request) {
	if n, ok := s.nodeBody(w, r); ok {
		s.done(w, r, fmt.Sprintf("move the VS's port to CoServer %d", n), s.Control.MovePort(r.Context(), n))
	}
}

func (s *Server) resolve(w http.ResponseWriter, r *http.Request) {
	if n, ok := s.nodeBody(w, r); ok {
		s.done(w, r, fmt.Sprintf("resolve the split brain keeping CoServer %d's data", n), s.Control.ResolveSplitBrain(r.Context(), n))
	}
}

func (s *Server) simple(what string, fn func(context.Context) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var empty struct{}
		if err := decode(r, &empty); err != nil && !errors.Is(err, io.EOF) {
			writeErr(w, http.StatusBadRequest, err.Error())
			return
		}
		s.done(w, r, what, fn(r.Context()))
	}
}

var diskName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func (s *Server) disk(verb string, fn func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := r.PathValue("disk")
		if !diskName.MatchString(d) {
			writeErr(w, http.StatusBadRequest, fmt.Sprintf("disk %q: not a disk name", d))
			return
		}
		s.done(w, r, verb+" disk "+d, fn(r.Context(), d))
	}
}

// Listen binds addr (the management address: never 0.0.0.0 or the
// production LAN, which the caller's config check enforces) and serves
// HTTPS until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener, cert tls.Certificate) error {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if s.ClientCAs != nil {
		// A certificate is optional (the token is the other way in), but one
		// that is presented must verify: a wrong one fails the handshake.
		tc.ClientCAs, tc.ClientAuth = s.ClientCAs, tls.VerifyClientCertIfGiven
	}
	srv := &http.Server{Handler: s.Handler(), TLSConfig: tc, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: nil, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	err := srv.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("manager api: %w", err)
}

package http

import (
	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Counters count the service's work and every refusal.
type Counters struct {
	Accepted      uint64
	RefusedConns  uint64 // reset on accept: MaxConns reached
	Requests      uint64
	Responses2xx  uint64
	Responses3xx  uint64
	Responses4xx  uint64
	Responses5xx  uint64
	BodyBytes     uint64 // response body bytes handed to the stack
	IdleClosed    uint64
	StalledAborts uint64 // idle timeout hit mid-response: reset
	ReadErrors    uint64 // file store errors mid-stream: reset
}

// Service is the HTTP file server.
type Service struct {
	cfg      Config
	files    fsapi.FileStore
	listener sockapi.SockID
	started  bool
	ctr      Counters
}

// New makes a service serving files; Start opens its listener.
func New(cfg Config, files fsapi.FileStore) *Service {
	return &Service{cfg: cfg.WithDefaults(), files: files}
}

func (s *Service) Name() string        { return "http" }
func (s *Service) Counters() Counters  { return s.ctr }
func (s *Service) NextDeadline() int64 { return 0 }

func (s *Service) Start(sk sockapi.Sockets) error {
	l, err := sk.Listen(s.cfg.Port, s.cfg.Backlog)
	if err != nil {
		return err
	}
	s.listener, s.started = l, true
	return nil
}

func (s *Service) Owns(l sockapi.SockID) bool                        { return s.started && l == s.listener }
func (s *Service) Handle(sk sockapi.Sockets, ev sockapi.Event, now int64) {}
func (s *Service) Timer(sk sockapi.Sockets, now int64)                {}
func (s *Service) Snapshot() []byte                                   { return nil }
func (s *Service) Restore(b []byte) error                             { return nil }

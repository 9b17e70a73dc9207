// Package http is the VS's HTTP/1.1 static file server. It runs inside
// machine.Step on the deterministic socket API (ftvs/sockapi) and serves files
// from an fsapi.FileStore: GET and HEAD, PUT under a configured prefix when
// the store is writable (upload.go), single byte ranges,
// keep-alive with bounded pipelining, directory listings, idle timeouts in
// virtual time. Big files are streamed from the store as the socket's send
// space frees up, never loaded whole, and every connection's progress is part
// of the snapshot so a restored machine continues a download byte-exact.
package http

import "time"

// Config bounds the service. Zero fields take the defaults below.
type Config struct {
	Port    uint16 // TCP port (80)
	Backlog int    // accept queue of the listener (128)
	// MaxConns bounds open connections; more are reset on accept (512).
	MaxConns int
	// MaxURIBytes bounds the request target; longer gets 414 (4096).
	MaxURIBytes int
	// MaxHeaderBytes bounds request line plus header fields; more gets 431 (8192).
	MaxHeaderBytes int
	// MaxHeaderFields bounds the number of header fields; more gets 431 (100).
	MaxHeaderFields int
	// MaxBodyBytes is the largest request body the service reads and
	// discards to keep the connection open; a bigger one gets 413 (65536).
	MaxBodyBytes int64
	// MaxBuffered bounds the bytes read ahead from a connection while a
	// response is in progress (pipelined requests); beyond it the service
	// stops reading and TCP flow control holds the client back (65536).
	MaxBuffered int
	// MaxListing bounds the entries shown in a directory listing (10000).
	MaxListing int
	// IdleTimeout closes a connection with no progress for this long (60s).
	IdleTimeout time.Duration
	// RequestTimeout closes a connection whose request head takes longer
	// than this to arrive, however slowly it trickles in (30s).
	RequestTimeout time.Duration
	// UploadPrefix turns PUT on for paths under it (e.g. "/upload/"), when
	// the file store is writable; "" (the default) refuses PUT with 405.
	UploadPrefix string
	// MaxUploadBytes is the largest PUT body; more gets 413 (4 GiB - 1,
	// FAT32's largest file).
	MaxUploadBytes int64
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Port == 0 {
		c.Port = 80
	}
	if c.Backlog <= 0 {
		c.Backlog = 128
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 512
	}
	if c.MaxURIBytes <= 0 {
		c.MaxURIBytes = 4096
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 8192
	}
	if c.MaxHeaderFields <= 0 {
		c.MaxHeaderFields = 100
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 65536
	}
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = 65536
	}
	if c.MaxBuffered < c.MaxHeaderBytes {
		c.MaxBuffered = c.MaxHeaderBytes
	}
	if c.MaxListing <= 0 {
		c.MaxListing = 10000
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 30 * time.Second
	}
	if c.MaxUploadBytes <= 0 {
		c.MaxUploadBytes = 1<<32 - 1
	}
	return c
}

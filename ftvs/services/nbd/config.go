// Package nbd is the VS's Network Block Device server (NetworkBlockDevice/nbd
// doc/proto.md): the fixed newstyle handshake with INFO, GO, LIST,
// EXPORT_NAME and ABORT ("unsupported" for every other option), and the
// transmission commands READ, WRITE, FLUSH, TRIM, WRITE_ZEROES and DISC with
// FUA, simple replies only. It runs inside machine.Step on the deterministic
// socket API (ftvs/sockapi); the exports are blockdev.Devices read and written
// synchronously, so a request is done when it is parsed and many requests can
// be in flight per connection (bounded by MaxInFlight replies waiting to be
// sent). READ replies are streamed from the device as send space frees, WRITE
// payloads are applied in pieces as they arrive: no request is held in memory
// whole.
package nbd

import (
	"fmt"
	"time"
)

// Export is one named device.
type Export struct {
	Name        string
	Description string
	ReadOnly    bool
}

// MaxPayload bounds a READ or WRITE (the spec's recommended 32 MiB).
const MaxPayload = 32 << 20

// maxNameLen is the spec's limit on export names and option payloads we parse.
const maxNameLen = 4096

// Config bounds the service. Zero fields take the defaults below.
type Config struct {
	Port    uint16 // TCP port (10809)
	Backlog int    // accept queue (32)
	// MaxConns bounds open connections; more are reset on accept (64).
	MaxConns int
	// MaxInFlight bounds the replies queued per connection; beyond it the
	// service stops reading requests and TCP holds the client back (128).
	MaxInFlight int
	// HandshakeTimeout closes a connection still haggling options (30s).
	HandshakeTimeout time.Duration
	// StallTimeout resets a connection with replies pending and no
	// progress for this long (120s). An idle connection in transmission
	// phase is never timed out: a mounted device may sit still for hours.
	StallTimeout time.Duration
	// Exports, in order; the first is the default ("") export.
	Exports []Export
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Port == 0 {
		c.Port = 10809
	}
	if c.Backlog <= 0 {
		c.Backlog = 32
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 64
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 128
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 30 * time.Second
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 120 * time.Second
	}
	return c
}

// Validate names what is wrong with the exports.
func (c Config) Validate() error {
	if len(c.Exports) == 0 {
		return fmt.Errorf("nbd config: no exports")
	}
	if len(c.Exports) > 256 {
		return fmt.Errorf("nbd config: %d exports, at most 256", len(c.Exports))
	}
	seen := map[string]bool{}
	for i, e := range c.Exports {
		if e.Name == "" || len(e.Name) > maxNameLen {
			return fmt.Errorf("nbd config: export %d: name must be 1..%d bytes", i, maxNameLen)
		}
		if len(e.Description) > maxNameLen {
			return fmt.Errorf("nbd config: export %q: description longer than %d bytes", e.Name, maxNameLen)
		}
		if seen[e.Name] {
			return fmt.Errorf("nbd config: export %q appears twice", e.Name)
		}
		seen[e.Name] = true
	}
	return nil
}

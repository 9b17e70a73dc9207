// Package ftp is the VS's FTP server (RFC 959, with EPSV from RFC 2428 and
// SIZE, MDTM, MLST/MLSD and REST STREAM from RFC 3659). It runs inside
// machine.Step on the deterministic socket API (ftvs/sockapi): the control
// connection and the passive data connections are sockets of the VS, data
// listeners are opened on a configured port range with a deterministic
// choice, files are streamed from and to an fsapi store in chunks (never
// loaded whole), and every connection's progress is part of the snapshot.
//
// Active mode (PORT/EPRT) dials the client through sockapi.Dialer when the
// stack offers it (502 otherwise), only to the control connection's own
// address and an unprivileged port (no FTP bounce). Transfers are
// byte-exact in TYPE A as in TYPE I (no CRLF translation, as vsftpd does by
// default).
package ftp

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// User is an account. The password is kept only as its SHA-256 (hex), since
// the configuration travels in snapshots and input logs.
type User struct {
	Name           string
	PasswordSHA256 string
	Write          bool
}

// HashPassword is the PasswordSHA256 of a password.
func HashPassword(pw string) string {
	h := sha256.Sum256([]byte(pw))
	return hex.EncodeToString(h[:])
}

// Config bounds the service. Zero fields take the defaults below.
type Config struct {
	Port    uint16 // control port (21)
	Backlog int    // accept queue of the control listener (32)
	// MaxConns bounds control connections; more get 421 and a close (64).
	MaxConns int
	// PasvMin..PasvMax is the passive data port range (30000..30099).
	PasvMin, PasvMax uint16
	// Anonymous allows USER anonymous/ftp with any password;
	// AnonymousWrite lets it change files too.
	Anonymous      bool
	AnonymousWrite bool
	Users          []User
	// MaxListing bounds the entries of one LIST/NLST/MLSD (10000).
	MaxListing int
	// IdleTimeout closes a control connection with no command for this
	// long (300s); DataTimeout gives up a transfer whose data connection
	// does not come or does not move for this long (60s).
	IdleTimeout time.Duration
	DataTimeout time.Duration
}

// maxLine bounds a command line (RFC 959 has no limit; paths are < 4096).
const maxLine = 4096 + 16

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Port == 0 {
		c.Port = 21
	}
	if c.Backlog <= 0 {
		c.Backlog = 32
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 64
	}
	if c.PasvMin == 0 && c.PasvMax == 0 {
		c.PasvMin, c.PasvMax = 30000, 30099
	}
	if c.MaxListing <= 0 {
		c.MaxListing = 10000
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 300 * time.Second
	}
	if c.DataTimeout <= 0 {
		c.DataTimeout = 60 * time.Second
	}
	return c
}

// Validate names what is wrong.
func (c Config) Validate() error {
	d := c.WithDefaults()
	if d.PasvMin > d.PasvMax {
		return fmt.Errorf("ftp config: passive port range %d-%d is empty", d.PasvMin, d.PasvMax)
	}
	if d.PasvMin <= d.Port && d.Port <= d.PasvMax {
		return fmt.Errorf("ftp config: control port %d lies in the passive range %d-%d", d.Port, d.PasvMin, d.PasvMax)
	}
	seen := map[string]bool{}
	for i, u := range c.Users {
		if u.Name == "" || len(u.Name) > 64 {
			return fmt.Errorf("ftp config: user %d: name must be 1..64 bytes", i)
		}
		if u.Name == "anonymous" || u.Name == "ftp" {
			return fmt.Errorf("ftp config: user %q is reserved for anonymous access", u.Name)
		}
		if b, err := hex.DecodeString(u.PasswordSHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("ftp config: user %q: PasswordSHA256 is not 64 hex digits", u.Name)
		}
		if seen[u.Name] {
			return fmt.Errorf("ftp config: user %q appears twice", u.Name)
		}
		seen[u.Name] = true
	}
	return nil
}

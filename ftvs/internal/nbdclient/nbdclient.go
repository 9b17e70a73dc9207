// Package nbdclient is a small NBD client for tests: the fixed newstyle
// handshake with NBD_OPT_GO, then READ, WRITE (optionally FUA), FLUSH and
// DISC with many requests in flight on one TCP connection, replies matched
// by cookie. It speaks to any NBD server over a net.Conn the caller dialed
// (in a test, from inside a network namespace).
package nbdclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// Wire constants (NBD doc/proto.md), written out again rather than shared
// with ftvs/services/nbd on purpose: a test client that took the server's
// constants would agree with the server's mistakes.
const (
	magicNBD     = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt     = 0x49484156454F5054 // "IHAVEOPT"
	magicRep     = 0x0003e889045565a9
	magicRequest = 0x25609513
	magicSimple  = 0x67446698

	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	optGo     = 7
	repAck    = 1
	repInfo   = 3
	infoExprt = 0

	cmdRead  = 0
	cmdWrite = 1
	cmdDisc  = 2
	cmdFlush = 3

	cmdFlagFUA = 1 << 0

	// maxOptReply bounds one option reply's data (a server's error text).
	maxOptReply = 64 << 10
)

// ErrClosed is returned for requests after the connection failed or closed.
var ErrClosed = errors.New("nbd client: connection closed")

// Client is one NBD connection in the transmission phase. Safe for
// concurrent use: each call is one request; replies may come in any order.
type Client struct {
	conn   net.Conn
	size   int64
	tflags uint16

	wmu sync.Mutex // one request written at a time

	mu      sync.Mutex
	next    uint64
	pending map[uint64]*call
	err     error // set once the reader stopped
	timeout time.Duration
}

type call struct {
	buf  []byte // READ: where the data goes
	done chan error
}

// Handshake negotiates export name on conn and starts the reply reader.
// timeout bounds each later request (0: none).
func Handshake(conn net.Conn, name string, timeout time.Duration) (*Client, error) {
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var g [18]byte
	if _, err := io.ReadFull(conn, g[:]); err != nil {
		return nil, fmt.Errorf("nbd greeting: %w", err)
	}
	if binary.BigEndian.Uint64(g[0:]) != magicNBD || binary.BigEndian.Uint64(g[8:]) != magicOpt {
		return nil, fmt.Errorf("nbd greeting: bad magic %x", g[:16])
	}
	hf := binary.BigEndian.Uint16(g[16:])
	if hf&flagFixedNewstyle == 0 {
		return nil, fmt.Errorf("nbd greeting: server flags %#x lack fixed newstyle", hf)
	}
	cf := uint32(flagFixedNewstyle)
	if hf&flagNoZeroes != 0 {
		cf |= flagNoZeroes
	}
	opt := binary.BigEndian.AppendUint32(nil, cf)
	data := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	data = append(data, name...)
	data = binary.BigEndian.AppendUint16(data, 0) // no info requests: the server sends NBD_INFO_EXPORT anyway
	opt = binary.BigEndian.AppendUint64(opt, magicOpt)
	opt = binary.BigEndian.AppendUint32(opt, optGo)
	opt = binary.BigEndian.AppendUint32(opt, uint32(len(data)))
	opt = append(opt, data...)
	if _, err := conn.Write(opt); err != nil {
		return nil, fmt.Errorf("nbd option GO: %w", err)
	}
	c := &Client{conn: conn, pending: map[uint64]*call{}, timeout: timeout, size: -1}
	for {
		var h [20]byte
		if _, err := io.ReadFull(conn, h[:]); err != nil {
			return nil, fmt.Errorf("nbd option reply: %w", err)
		}
		if m := binary.BigEndian.Uint64(h[0:]); m != magicRep {
			return nil, fmt.Errorf("nbd option reply: bad magic %#x", m)
		}
		typ, n := binary.BigEndian.Uint32(h[12:]), binary.BigEndian.Uint32(h[16:])
		if n > maxOptReply {
			return nil, fmt.Errorf("nbd option reply: %d bytes of data", n)
		}
		d := make([]byte, n)
		if _, err := io.ReadFull(conn, d); err != nil {
			return nil, fmt.Errorf("nbd option reply data: %w", err)
		}
		switch {
		case typ&(1<<31) != 0:
			return nil, fmt.Errorf("nbd export %q refused: reply %#x %q", name, typ, d)
		case typ == repInfo && len(d) >= 12 && binary.BigEndian.Uint16(d) == infoExprt:
			c.size = int64(binary.BigEndian.Uint64(d[2:]))
			c.tflags = binary.BigEndian.Uint16(d[10:])
		case typ == repAck:
			if c.size < 0 {
				return nil, fmt.Errorf("nbd export %q: no NBD_INFO_EXPORT before the ack", name)
			}
			_ = conn.SetDeadline(time.Time{})
			go c.readReplies()
			return c, nil
		}
	}
}

// Size is the export's size in bytes.
func (c *Client) Size() int64 { return c.size }

// Flags are the export's transmission flags.
func (c *Client) Flags() uint16 { return c.tflags }

func (c *Client) readReplies() {
	var h [16]byte
	fail := func(err error) {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		for k, cl := range c.pending {
			cl.done <- c.err
			delete(c.pending, k)
		}
		c.mu.Unlock()
		_ = c.conn.Close()
	}
	for {
		if _, err := io.ReadFull(c.conn, h[:]); err != nil {
			fail(fmt.Errorf("%w: reading a reply: %v", ErrClosed, err))
			return
		}
		if m := binary.BigEndian.Uint32(h[0:]); m != magicSimple {
			fail(fmt.Errorf("nbd reply: bad magic %#x", m))
			return
		}
		errno, cookie := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint64(h[8:])
		c.mu.Lock()
		cl := c.pending[cookie]
		delete(c.pending, cookie)
		c.mu.Unlock()
		if cl == nil {
			fail(fmt.Errorf("nbd reply: unknown cookie %d", cookie))
			return
		}
		if errno == 0 && cl.buf != nil {
			if _, err := io.ReadFull(c.conn, cl.buf); err != nil {
				cl.done <- fmt.Errorf("nbd read reply data: %w", err)
				fail(fmt.Errorf("%w: reading read data: %v", ErrClosed, err))
				return
			}
		}
		if errno != 0 {
			cl.done <- fmt.Errorf("nbd: server error %d", errno)
		} else {
			cl.done <- nil
		}
	}
}

func (c *Client) do(typ, flags uint16, off int64, length uint32, payload, readBuf []byte) error {
	cl := &call{buf: readBuf, done: make(chan error, 1)}
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.next++
	cookie := c.next
	c.pending[cookie] = cl
	c.mu.Unlock()
	req := make([]byte, 28, 28+len(payload))
	binary.BigEndian.PutUint32(req[0:], magicRequest)
	binary.BigEndian.PutUint16(req[4:], flags)
	binary.BigEndian.PutUint16(req[6:], typ)
	binary.BigEndian.PutUint64(req[8:], cookie)
	binary.BigEndian.PutUint64(req[16:], uint64(off))
	binary.BigEndian.PutUint32(req[24:], length)
	req = append(req, payload...)
	c.wmu.Lock()
	_, err := c.conn.Write(req)
	c.wmu.Unlock()
	if err != nil {
		c.mu.Lock()
		delete(c.pending, cookie)
		c.mu.Unlock()
		_ = c.conn.Close()
		return fmt.Errorf("%w: sending: %v", ErrClosed, err)
	}
	var tmo <-chan time.Time
	if c.timeout > 0 {
		t := time.NewTimer(c.timeout)
		defer t.Stop()
		tmo = t.C
	}
	select {
	case err := <-cl.done:
		return err
	case <-tmo:
		// The reply may still come; the connection is no longer trusted.
		_ = c.conn.Close()
		return fmt.Errorf("nbd request type %d at %d: no reply in %s", typ, off, c.timeout)
	}
}

// ReadAt reads len(p) bytes at off.
func (c *Client) ReadAt(p []byte, off int64) error {
	return c.do(cmdRead, 0, off, uint32(len(p)), nil, p)
}

// WriteAt writes p at off; with fua the reply means it is durable.
func (c *Client) WriteAt(p []byte, off int64, fua bool) error {
	var f uint16
	if fua {
		f = cmdFlagFUA
	}
	return c.do(cmdWrite, f, off, uint32(len(p)), p, nil)
}

// Flush makes every write completed before it durable.
func (c *Client) Flush() error { return c.do(cmdFlush, 0, 0, 0, nil, nil) }

// Close sends DISC and closes the connection.
func (c *Client) Close() error {
	req := make([]byte, 28)
	binary.BigEndian.PutUint32(req[0:], magicRequest)
	binary.BigEndian.PutUint16(req[6:], cmdDisc)
	c.wmu.Lock()
	_, _ = c.conn.Write(req)
	c.wmu.Unlock()
	return c.conn.Close()
}

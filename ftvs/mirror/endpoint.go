package mirror

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
)

// Transport is the message stream to the peer, shaped like lockstep's:
// *link.Session implements it. When the daemon shares one session between
// lockstep and the mirrors it passes each delivery of a mirror type to
// Mirror.Handle instead (Demux does that split).
type Transport interface {
	Send(typ uint8, payload []byte) error
	Incoming() <-chan link.Delivery
}

// DefaultTypeBase is the first of the two link message types a mirror uses
// (requests, replies). The daemon gives each virtual disk its own pair.
const DefaultTypeBase uint8 = 0xB0

// ErrPeerLost fails remote calls in flight when the peer goes away.
var ErrPeerLost = errors.New("mirror: peer lost")

// errNoReply: a call's reply did not come within the call timeout.
var errNoReply = errors.New("no reply")

// ErrPeer wraps an error the peer reported for a remote operation.
var ErrPeer = errors.New("mirror: peer reported")

// endpoint matches requests to replies and runs the served requests in
// arrival order on one worker (writes and flushes must not reorder).
type endpoint struct {
	send    func(typ uint8, p []byte) error
	reqType uint8
	timeout time.Duration
	serve   func(Request) Reply

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan Reply
	work    chan Request
	dropped uint64 // requests refused because the queue was full
	bad     uint64 // undecodable messages
	// silent: the link says the peer is silent; calls fail at once
	// (ErrPeerLost) instead of waiting out their timeout, until it is up.
	silent bool
	// linkSig is closed (and replaced) at every peer-silent or peer-up
	// event: waits that span many calls (a resync target waiting for the
	// source's bulk) end on it, and the caller runs a new Connect round.
	linkSig chan struct{}
}

func newEndpoint(send func(uint8, []byte) error, base uint8, timeout time.Duration, serve func(Request) Reply) *endpoint {
	return &endpoint{send: send, reqType: base, timeout: timeout, serve: serve,
		pending: map[uint64]chan Reply{}, work: make(chan Request, 256), linkSig: make(chan struct{})}
}

func (e *endpoint) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-e.work:
			if r.Op == OpResyncFlush {
				// A resync checkpoint's flush covers the writes served
				// before it (all done: this worker serves in order) and
				// runs beside the next ones: a target's flush must not
				// stall the stream. The source sends nothing that must
				// follow the flush before its reply.
				go e.reply(r)
				continue
			}
			e.reply(r)
		}
	}
}

func (e *endpoint) reply(r Request) {
	rep := e.serve(r)
	rep.ID = r.ID
	_ = e.send(e.reqType+1, rep.Marshal()) // a lost reply times out the caller
}

// handle takes one delivery; it reports whether the delivery was ours.
func (e *endpoint) handle(d link.Delivery) (bool, error) {
	if d.Event != nil {
		switch d.Event.Kind {
		case link.EventPeerSilent, link.EventPeerUp:
			silent := d.Event.Kind == link.EventPeerSilent
			e.mu.Lock()
			e.silent = silent
			close(e.linkSig)
			e.linkSig = make(chan struct{})
			e.mu.Unlock()
			if silent || d.Event.Restarted {
				e.failAll(ErrPeerLost)
			}
		}
		return false, nil
	}
	switch d.Type {
	case e.reqType:
		r, err := ParseRequest(d.Payload)
		if err != nil {
			e.mu.Lock()
			e.bad++
			e.mu.Unlock()
			return true, err
		}
		// The payload is ours (a link delivery is a fresh copy): no copy.
		select {
		case e.work <- r:
		default:
			e.mu.Lock()
			e.dropped++
			e.mu.Unlock()
			_ = e.send(e.reqType+1, Reply{ID: r.ID, Err: "mirror: peer request queue full"}.Marshal())
		}
		return true, nil
	case e.reqType + 1:
		r, err := ParseReply(d.Payload)
		if err != nil {
			e.mu.Lock()
			e.bad++
			e.mu.Unlock()
			return true, err
		}
		e.mu.Lock()
		ch := e.pending[r.ID]
		delete(e.pending, r.ID)
		e.mu.Unlock()
		if ch != nil {
			ch <- r
		}
		return true, nil
	}
	return false, nil
}

// linkEvents returns a channel closed at the next peer-silent or peer-up.
func (e *endpoint) linkEvents() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.linkSig
}

func (e *endpoint) failAll(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for id, ch := range e.pending {
		ch <- Reply{ID: id, Err: err.Error()}
		delete(e.pending, id)
	}
}

// call sends one request and waits for its reply.
func (e *endpoint) call(ctx context.Context, r Request) ([]byte, error) {
	return e.callFramed(ctx, r, nil)
}

// callFramed is call for a request whose message is already laid out in
// framed: reqHeader bytes of room, then the data (r.Data is ignored). The
// header is written in place and the message sent without a copy; the
// link owns framed afterwards.
func (e *endpoint) callFramed(ctx context.Context, r Request, framed []byte) ([]byte, error) {
	ch := make(chan Reply, 1)
	e.mu.Lock()
	if e.silent {
		e.mu.Unlock()
		return nil, fmt.Errorf("mirror: %s at %d: %w (the link hears nothing from it)", r.Op, r.Off, ErrPeerLost)
	}
	e.nextID++
	r.ID = e.nextID
	e.pending[r.ID] = ch
	e.mu.Unlock()
	forget := func() {
		e.mu.Lock()
		delete(e.pending, r.ID)
		e.mu.Unlock()
	}
	msg := framed
	if msg == nil {
		msg = r.Marshal()
	} else {
		r.putHeader(msg[:reqHeader], len(msg)-reqHeader)
	}
	if err := e.send(e.reqType, msg); err != nil {
		forget()
		return nil, fmt.Errorf("mirror: send %s [%d]: %w", r.Op, r.Off, err)
	}
	t := time.NewTimer(e.timeout)
	defer t.Stop()
	select {
	case rep := <-ch:
		if rep.Err != "" {
			if rep.Err == ErrPeerLost.Error() {
				return nil, fmt.Errorf("mirror: %s at %d: %w", r.Op, r.Off, ErrPeerLost)
			}
			return nil, fmt.Errorf("mirror: %s at %d: %w: %s", r.Op, r.Off, ErrPeer, rep.Err)
		}
		return rep.Data, nil
	case <-t.C:
		forget()
		return nil, fmt.Errorf("mirror: %s at %d: %w within %v", r.Op, r.Off, errNoReply, e.timeout)
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

// Demux splits one transport between a mirror set and lockstep: deliveries
// whose type IsMine accepts go to mine (events go to both), the rest to
// the returned Transport, whose Incoming lockstep reads.
func Demux(ctx context.Context, tr Transport, isMine func(typ uint8) bool, mine func(link.Delivery)) Transport {
	rest := make(chan link.Delivery, 1024)
	go func() {
		defer close(rest)
		in := tr.Incoming()
		for {
			select {
			case <-ctx.Done():
				return
			case d, ok := <-in:
				if !ok {
					return
				}
				ev := d.Event != nil
				ours := !ev && isMine(d.Type)
				if ev || ours {
					mine(d)
				}
				if !ours {
					select {
					case rest <- d:
					case <-ctx.Done():
						return
					}
				}
			}
		}
	}()
	return demuxed{tr, rest}
}

type demuxed struct {
	tr   Transport
	rest chan link.Delivery
}

func (d demuxed) Send(typ uint8, p []byte) error { return d.tr.Send(typ, p) }
func (d demuxed) Incoming() <-chan link.Delivery { return d.rest }

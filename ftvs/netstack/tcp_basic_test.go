package netstack

import (
	"errors"
	"testing"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// RFC 9293 3.5: three-way handshake, then data both ways, then close.
func TestHandshakeDataClose(t *testing.T) {
	p := newPair(t, cfgA(), cfgB())
	srv, cli := p.connect(80)
	if p.a.stateOf(srv) != stEstablished {
		t.Fatalf("server state %v", p.a.stateOf(srv))
	}
	req := []byte("GET / HTTP/1.1\r\n\r\n")
	got := p.transfer(p.b, cli, p.a, srv, req, 1e9)
	mustEqual(t, "request", got, req)
	resp := pattern(3 << 20)
	got = p.transfer(p.a, srv, p.b, cli, resp, 60e9)
	mustEqual(t, "response", got, resp)
	if err := p.a.Close(srv); err != nil {
		t.Fatal(err)
	}
	p.advance(p.now + 10e6)
	if _, err := p.b.Read(cli, make([]byte, 10)); !errors.Is(err, sockapi.ErrEOF) {
		t.Fatalf("client read after server close: %v", err)
	}
	if st := p.a.stateOf(srv); st != stFinWait2 {
		t.Fatalf("server state after close %v, want FIN-WAIT-2", st)
	}
	if err := p.b.Close(cli); err != nil {
		t.Fatal(err)
	}
	p.advance(p.now + 10e6)
	if st := p.a.stateOf(srv); st != stTimeWait {
		t.Fatalf("server state %v, want TIME-WAIT", st)
	}
	if st := p.b.stateOf(cli); st != stClosed {
		t.Fatalf("client state %v, want CLOSED", st)
	}
	p.advance(p.now + 61e9)
	if len(p.a.order) != 1 { // only the listener remains
		t.Fatalf("server sockets after TIME-WAIT: %d", len(p.a.order))
	}
}

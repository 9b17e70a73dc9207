package link

import (
	"bytes"
	"encoding/binary"
	"testing"
)

var fuzzKey = bytes.Repeat([]byte{7}, keyLen)

func fuzzCodec(t testing.TB) *codec {
	c, err := newCodec(fuzzKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// FuzzReadFrame feeds arbitrary bytes to the frame reader of a connection
// (header checks, AEAD, body parsing): it must return an error, never panic
// or allocate beyond maxBody.
func FuzzReadFrame(f *testing.F) {
	tx := fuzzCodec(f)
	var stream []byte
	stream = tx.seal(stream, framePing, binary.BigEndian.AppendUint64(nil, 42))
	stream = tx.seal(stream, frameData, append(binary.BigEndian.AppendUint64(nil, 1), 7, 'h', 'i'))
	stream = tx.seal(stream, frameAck, binary.BigEndian.AppendUint64(nil, 1))
	f.Add(stream)
	f.Add(stream[:20])
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 16, 9, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rx := fuzzCodec(t)
		r := bytes.NewReader(b)
		var hdr [headerLen]byte
		for range 64 {
			typ, plain, err := rx.readFrame(r, &hdr, nil)
			if err != nil {
				return
			}
			if _, err := parseBody(typ, plain); err != nil {
				return
			}
		}
	})
}

// FuzzParseBody checks the body decoder directly (the AEAD would reject
// almost every input FuzzReadFrame makes up).
func FuzzParseBody(f *testing.F) {
	f.Add(uint8(1), append(binary.BigEndian.AppendUint64(nil, 5), 3, 'x'))
	f.Add(uint8(2), binary.BigEndian.AppendUint64(nil, 5))
	f.Add(uint8(3), []byte{1, 2, 3})
	f.Add(uint8(9), []byte{})
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		fr, err := parseBody(frameType(typ), b)
		if err != nil {
			return
		}
		if fr.typ == frameData && (fr.seq == 0 || len(fr.payload) != len(b)-dataOverhead) {
			t.Fatalf("data frame accepted wrongly: %+v", fr)
		}
	})
}

// FuzzParseHello checks the handshake hello parser (read before the peer
// is authenticated: anyone on the wire can send it).
func FuzzParseHello(f *testing.F) {
	h := hello{Version: wireVersion, Node: 2, Link: 1, Incarnation: 99}
	f.Add(h.marshal())
	f.Add([]byte("FTVSLNK1"))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHello(b)
		if err != nil {
			return
		}
		if !bytes.Equal(h.marshal(), b) {
			t.Fatalf("hello does not round-trip: %x", b)
		}
	})
}

func TestFrameRoundTripAndTamper(t *testing.T) {
	tx, rx := fuzzCodec(t), fuzzCodec(t)
	payload := append(binary.BigEndian.AppendUint64(nil, 3), 9, 'a', 'b')
	fr := tx.seal(nil, frameData, payload)
	var hdr [headerLen]byte
	typ, plain, err := rx.readFrame(bytes.NewReader(fr), &hdr, nil)
	if err != nil || typ != frameData || !bytes.Equal(plain, payload) {
		t.Fatalf("round trip: %v %v %x", typ, err, plain)
	}
	// The same frame again (a replay) must not open: the nonce moved on.
	if _, _, err := rx.readFrame(bytes.NewReader(fr), &hdr, nil); err == nil {
		t.Fatal("replayed frame accepted")
	}
	for i := range fr {
		tx2, rx2 := fuzzCodec(t), fuzzCodec(t)
		b := tx2.seal(nil, frameData, payload)
		b[i] ^= 1
		if _, _, err := rx2.readFrame(bytes.NewReader(b), &hdr, nil); err == nil {
			t.Fatalf("frame with bit flipped at byte %d accepted", i)
		}
	}
}

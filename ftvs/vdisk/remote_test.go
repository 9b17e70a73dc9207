package vdisk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev/faultdev"
)

// pipeLink carries length-prefixed frames over net.Pipe: a stand-in for
// the CoServer link's request/response channel.
type pipeLink struct {
	mu sync.Mutex
	c  net.Conn
}

func writeFrame(w io.Writer, b []byte) error {
	var h [4]byte
	binary.LittleEndian.PutUint32(h[:], uint32(len(b)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

func readFrame(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.LittleEndian.Uint32(h[:]))
	_, err := io.ReadFull(r, b)
	return b, err
}

func (l *pipeLink) Call(_ context.Context, req []byte) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := writeFrame(l.c, req); err != nil {
		return nil, err
	}
	return readFrame(l.c)
}

// servePeer answers sums requests for the peer's copy until the pipe closes.
func servePeer(t *testing.T, local Summer, size int64) *pipeLink {
	near, far := net.Pipe()
	t.Cleanup(func() { near.Close(); far.Close() })
	go func() {
		for {
			req, err := readFrame(far)
			if err != nil {
				return
			}
			if err := writeFrame(far, ServeSums(context.Background(), local, size, req)); err != nil {
				return
			}
		}
	}()
	return &pipeLink{c: near}
}

func TestVerifyWithRemoteSums(t *testing.T) {
	a, b, _ := pair(t)
	if _, err := b.disk.WriteAt(bytes.Repeat([]byte{3}, 4096), 13<<20); err != nil {
		t.Fatal(err)
	}
	link := servePeer(t, ReaderSummer{b.disk}, testData)
	remote := RemoteSummer{Call: link.Call}
	// 8192 regions of 4 KiB in one Verify batch: RemoteSummer must split
	// them into two requests of MaxSumsPerRequest.
	diffs, err := Verify(context.Background(), ReaderSummer{a.disk}, remote, testData, VerifyOptions{Region: 4096, Batch: 8192})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 || diffs[0] != (Range{13 << 20, 4096}) {
		t.Fatalf("diffs %v", diffs)
	}
	// The peer's read error comes back with its region.
	fd := faultdev.New(b.dev)
	fd.Add(faultdev.Rule{Ops: faultdev.Read, Off: b.disk.Metadata().DataOffset + 2<<20, Len: 4096})
	bd, err := Open(fd)
	if err != nil {
		t.Fatal(err)
	}
	bad := servePeer(t, ReaderSummer{bd}, testData)
	_, err = Verify(context.Background(), ReaderSummer{a.disk}, RemoteSummer{Call: bad.Call}, testData, VerifyOptions{})
	if !errors.Is(err, ErrPeerSums) || !strings.Contains(err.Error(), "checksum region [2097152, 3145728)") {
		t.Fatalf("peer read error: %v", err)
	}
	// A request beyond the peer's data is refused, not served.
	_, err = RemoteSummer{Call: link.Call}.Sums(context.Background(), testData-4096, 8192, 4096)
	if !errors.Is(err, ErrPeerSums) || !strings.Contains(err.Error(), "beyond data size") {
		t.Fatalf("request past the end: %v", err)
	}
}

func TestSumsWire(t *testing.T) {
	r := SumsRequest{Off: 1 << 20, Len: 3 << 20, Region: 1 << 20}
	got, err := ParseSumsRequest(r.Marshal())
	if err != nil || got != r {
		t.Fatalf("request round trip: %+v %v", got, err)
	}
	for _, bad := range []SumsRequest{{-1, 1, 1}, {0, 0, 1}, {0, 1, 0}, {0, 1 << 40, 1}} {
		if _, err := ParseSumsRequest(bad.Marshal()); err == nil {
			t.Errorf("request %+v accepted", bad)
		}
	}
	sums := []Sum{{1}, {2}, {3}}
	b := marshalSums(sums)
	if s, err := ParseSumsReply(b, 3); err != nil || len(s) != 3 || s[2] != (Sum{3}) {
		t.Fatalf("reply round trip: %v %v", s, err)
	}
	if _, err := ParseSumsReply(b, 2); err == nil {
		t.Fatal("reply with the wrong count accepted")
	}
	if _, err := ParseSumsReply(b[:len(b)-1], 3); err == nil {
		t.Fatal("short reply accepted")
	}
	if _, err := ParseSumsReply(marshalSumsError(errors.New("disk on fire")), 3); !errors.Is(err, ErrPeerSums) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("error reply: %v", err)
	}
}

func FuzzParseSumsRequest(f *testing.F) {
	f.Add(SumsRequest{Off: 0, Len: 1 << 20, Region: 4096}.Marshal())
	f.Add(SumsRequest{Off: 5 << 30, Len: 64 << 20, Region: 1 << 20}.Marshal())
	f.Add([]byte("S\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseSumsRequest(b)
		if err != nil {
			return
		}
		if r.Count() <= 0 || r.Count() > MaxSumsPerRequest || !bytes.Equal(r.Marshal(), b) {
			t.Fatalf("accepted %+v from %x", r, b)
		}
	})
}

func FuzzParseSumsReply(f *testing.F) {
	f.Add(marshalSums([]Sum{{1}, {2}}), int64(2))
	f.Add(marshalSumsError(errors.New("read error")), int64(1))
	f.Add([]byte("s\x01\x00\xff\xff\xff\xff"), int64(4))
	f.Fuzz(func(t *testing.T, b []byte, want int64) {
		s, err := ParseSumsReply(b, want)
		if err != nil {
			return
		}
		if int64(len(s)) != want || !bytes.Equal(marshalSums(s), b) {
			t.Fatalf("accepted %d sums (want %d) from %d bytes", len(s), want, len(b))
		}
	})
}

package svcutil

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/services/svctest"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

type refusing struct{ *svctest.Net }

func (refusing) Listen(uint16, int) (sockapi.SockID, error) { return 0, sockapi.ErrPortInUse }

func TestListener(t *testing.T) {
	var l Listener
	if l.Is(0) {
		t.Fatal("an unopened listener owns socket 0")
	}
	if err := l.Open(svctest.NewNet(10), "http", 80, 16); err != nil || !l.Is(1) || l.Is(2) {
		t.Fatalf("open: %v %+v", err, l)
	}
	// The encoding the services always wrote by hand: bool, then u32.
	a, b := snap.NewWriter(16), snap.NewWriter(16)
	a.Section("t", 1, func(w *snap.Writer) { l.Encode(w) })
	b.Section("t", 1, func(w *snap.Writer) { w.Bool(true); w.U32(1) })
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("encoding changed")
	}
	var back Listener
	r := snap.NewReader(a.Bytes())
	r.Section("t", 1, func(r *snap.Reader, _ uint16) { back = DecodeListener(r) })
	if r.Err() != nil || back != l {
		t.Fatalf("decoded %+v (%v)", back, r.Err())
	}
	var m Listener
	err := m.Open(refusing{svctest.NewNet(1)}, "nbd", 10809, 16)
	if err == nil || !strings.Contains(err.Error(), "nbd: listen on port 10809") || !errors.Is(err, sockapi.ErrPortInUse) || m.Started {
		t.Fatalf("refused listen: %v %+v", err, m)
	}
}

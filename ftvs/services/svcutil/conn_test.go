package svcutil

import (
	"slices"
	"testing"

	"github.com/ftvs/ftvs/ftvs/services/svctest"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

func TestConnHelpers(t *testing.T) {
	n := svctest.NewNet(0)
	n.Socks[5] = &svctest.Sock{Space: 0}
	n.Socks[6] = &svctest.Sock{Space: 3}
	n.Queue = []sockapi.SockID{5, 6}
	var got []sockapi.SockID
	AcceptAll(n, 1, func(id sockapi.SockID) { got = append(got, id) })
	if !slices.Equal(got, []sockapi.SockID{5, 6}) || len(n.Queue) != 0 {
		t.Fatalf("AcceptAll: %v", got)
	}
	p := make([]byte, 8)
	if len(SendChunk(n, 5, p)) != 1 || len(SendChunk(n, 6, p)) != 3 || len(SendChunk(n, 6, p[:2])) != 2 {
		t.Fatal("SendChunk")
	}
	var log []string
	for _, k := range []sockapi.EventKind{sockapi.EvAccept, sockapi.EvReadable, sockapi.EvWritable, sockapi.EvClosed} {
		Dispatch(sockapi.Event{Kind: k, Sock: 7}, func() { log = append(log, "a") },
			func(id sockapi.SockID) { log = append(log, "r") },
			func(id sockapi.SockID) { log = append(log, "c") })
	}
	if !slices.Equal(log, []string{"a", "r", "r", "c"}) {
		t.Fatalf("Dispatch: %v", log)
	}
	dl := func(v int64) int64 { return v }
	if EarliestDeadline(map[sockapi.SockID]int64{}, dl) != 0 || EarliestDeadline(map[sockapi.SockID]int64{1: 9, 2: 4, 3: 7}, dl) != 4 {
		t.Fatal("EarliestDeadline")
	}
}

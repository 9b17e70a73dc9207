package svcutil

import (
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/snap"
)

func TestSnapshotHelpers(t *testing.T) {
	a, b := uint64(7), uint64(9)
	w := snap.NewWriter(64)
	w.Section("t", 1, func(w *snap.Writer) {
		EncodeCounters(w, []*uint64{&a, &b})
		w.U32(3)
	})
	for _, tc := range []struct {
		max int
		n   int
		ok  bool
	}{{3, 3, true}, {2, 0, false}} {
		var x, y uint64
		var n int
		var ok bool
		r := snap.NewReader(w.Bytes())
		r.Section("t", 1, func(r *snap.Reader, _ uint16) {
			DecodeCounters(r, []*uint64{&x, &y})
			n, ok = DecodeConnCount(r, tc.max)
		})
		if x != 7 || y != 9 || n != tc.n || ok != tc.ok {
			t.Fatalf("max %d: %d %d %d %v", tc.max, x, y, n, ok)
		}
		if !ok && (r.Err() == nil || !strings.Contains(r.Err().Error(), "3 connections exceed MaxConns 2")) {
			t.Fatalf("max %d: err %v", tc.max, r.Err())
		}
	}
}

package svcutil

import (
	"fmt"

	"github.com/ftvs/ftvs/ftvs/snap"
)

// EncodeCounters writes each counter as a U64, in order.
func EncodeCounters(w *snap.Writer, fields []*uint64) {
	for _, f := range fields {
		w.U64(*f)
	}
}

// DecodeCounters reads what EncodeCounters wrote into fields.
func DecodeCounters(r *snap.Reader, fields []*uint64) {
	for _, f := range fields {
		*f = r.U64()
	}
}

// DecodeConnCount reads a U32 connection count; a count above maxConns
// fails r and reports false.
func DecodeConnCount(r *snap.Reader, maxConns int) (int, bool) {
	n := int(r.U32())
	if r.Err() == nil && n > maxConns {
		r.Fail(fmt.Errorf("%d connections exceed MaxConns %d", n, maxConns))
		return 0, false
	}
	return n, true
}

package mirror

import (
	"bytes"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	f.Add(Request{Op: OpRead, ID: 1, Off: 4096, Count: 4096, Wait: 7}.Marshal())
	f.Add(Request{Op: OpWrite, ID: 2, Off: 0, Data: bytes.Repeat([]byte{1}, 512)}.Marshal())
	f.Add(Request{Op: OpFlush, ID: 3}.Marshal())
	f.Add(Request{Op: OpSetMeta, ID: 4, Data: make([]byte, 4096)}.Marshal())
	f.Add(Request{Op: OpGoSolo, ID: 5, Off: 8192, Count: 4096}.Marshal())
	f.Add([]byte("B\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		// A request that decodes re-encodes to the same bytes.
		if got := r.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, decoded from %x", got, b)
		}
		if r.Op == OpRead && (r.Count == 0 || r.Count > MaxData) {
			t.Fatalf("read of %d bytes accepted", r.Count)
		}
		if r.Off < 0 {
			t.Fatalf("negative offset %d accepted", r.Off)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add(Reply{ID: 1, Data: []byte("data")}.Marshal())
	f.Add(Reply{ID: 2, Err: "disk on fire"}.Marshal())
	f.Add(Reply{ID: 3}.Marshal())
	f.Add([]byte("b\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			return
		}
		if got := r.Marshal(); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, decoded from %x", got, b)
		}
	})
}

package mirror

import (
	"bytes"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/vdisk"
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

type nullTransport struct{}

func (nullTransport) Send(uint8, []byte) error       { return nil }
func (nullTransport) Incoming() <-chan link.Delivery { return nil }

// FuzzServe feeds decoded requests from the peer to the serving side of a
// mirror on an in-memory copy: whatever the peer sends, no panic, and an
// out-of-range or malformed request is an error reply, never an access
// outside the data area.
func FuzzServe(f *testing.F) {
	f.Add(Request{Op: OpRead, Off: 4096, Count: 4096}.Marshal())
	f.Add(Request{Op: OpWrite, Off: 8 << 20, Data: make([]byte, 512)}.Marshal())
	f.Add(Request{Op: OpResyncWrite, Off: 512, Data: make([]byte, 1024)}.Marshal())
	f.Add(Request{Op: OpSums, Data: vdisk.SumsRequest{Off: 0, Len: 1 << 20, Region: 4096}.Marshal()}.Marshal())
	f.Add(Request{Op: OpGetMeta}.Marshal())
	f.Add(Request{Op: OpSetMeta, Data: make([]byte, 4096)}.Marshal())
	f.Add(Request{Op: OpGoSolo, Off: 4096, Count: 4096}.Marshal())
	f.Add(Request{Op: OpFlushed, Count: 3}.Marshal())
	f.Add(Request{Op: OpBulkDone, Data: []byte("x")}.Marshal())
	const size = 4 << 20
	l, err := vdisk.Layout(size, 512, 1<<20)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseRequest(b)
		if err != nil {
			return
		}
		mem, _ := blockdev.NewMem(l.DeviceSize, 512)
		d, err := vdisk.Create(mem, vdisk.CreateOptions{UUID: testUUID, Node: 1, DataSize: size, Granularity: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		var gen uint64 = 100
		m, err := New(Config{Disk: d, Link: nullTransport{}, NewGen: func() uint64 { gen++; return gen }, CallTimeout: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		rep := m.serve(r)
		if r.Op == OpRead && rep.Err == "" && len(rep.Data) != 8+int(r.Count) {
			t.Fatalf("read of %d bytes answered with %d", r.Count, len(rep.Data))
		}
		if (r.Op == OpWrite || r.Op == OpRead) && rep.Err == "" && r.Off+int64(max(len(r.Data), int(r.Count))) > size {
			t.Fatalf("%s beyond the data area accepted", r.Op)
		}
	})
}

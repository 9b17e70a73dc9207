package http

import (
	"bytes"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine/memfs"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

func uploadService(t *testing.T, cfg Config, space int) (*Service, *fakeNet, memfs.Writable) {
	t.Helper()
	fs := testFS()
	fs.Mkdir("up", modTime)
	w := memfs.Writable{FS: fs}
	if cfg.UploadPrefix == "" {
		cfg.UploadPrefix = "/up/"
	}
	svc := New(cfg, w)
	fn := newFakeNet(space)
	if err := svc.Start(fn); err != nil {
		t.Fatal(err)
	}
	return svc, fn, w
}

func fileBytes(t *testing.T, w memfs.Writable, name string) []byte {
	t.Helper()
	fi, err := w.Stat(name)
	if err != nil {
		t.Fatalf("stat %s: %v", name, err)
	}
	b := make([]byte, fi.Size)
	if n, err := w.ReadAt(name, b, 0); n != len(b) {
		t.Fatalf("read %s: %d of %d: %v", name, n, len(b), err)
	}
	return b
}

func put(name string, body []byte, extra string) string {
	return "PUT " + name + " HTTP/1.1\r\nHost: vs\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n" + extra + "\r\n" + string(body)
}

func TestPutCreatesThenReplaces(t *testing.T) {
	svc, fn, w := uploadService(t, Config{}, 1<<20)
	id := fn.connect(t, svc, 0)
	body := bytes.Repeat([]byte("upload "), 100_000) // 700 KB, many reads
	req := put("/up/new.bin", body, "")
	// Fed in 10 KB pieces: the body streams to the store as it comes.
	for i := 0; i < len(req); i += 10_000 {
		fn.send(svc, id, req[i:min(i+10_000, len(req))], int64(i))
		if c := svc.conns[id]; c != nil && len(c.in) > svc.cfg.MaxBuffered {
			t.Fatalf("%d bytes buffered", len(c.in))
		}
	}
	out := string(fn.drain(svc, id, 0))
	if !strings.HasPrefix(out, "HTTP/1.1 201 Created\r\n") || !strings.Contains(out, "Location: /up/new.bin\r\n") {
		t.Fatalf("first PUT: %q", out)
	}
	if got := fileBytes(t, w, "up/new.bin"); !bytes.Equal(got, body) {
		t.Fatalf("stored %d bytes, want %d", len(got), len(body))
	}
	// Same name again, shorter, keep-alive: replaced, 204, then a GET.
	fn.send(svc, id, put("/up/new.bin", []byte("short"), "")+"GET /up/new.bin HTTP/1.1\r\nHost: vs\r\n\r\n", 1)
	out = string(fn.drain(svc, id, 1))
	if !strings.HasPrefix(out, "HTTP/1.1 204 No Content\r\n") || strings.Contains(out[:strings.Index(out, "\r\n\r\n")], "Content-Length") {
		t.Fatalf("second PUT: %q", out)
	}
	if !strings.HasSuffix(out, "\r\n\r\nshort") {
		t.Fatalf("GET after the PUT: %q", out)
	}
	if u := svc.UploadCounters(); u.Uploads != 2 || u.UploadBytes != uint64(len(body)+5) {
		t.Fatalf("counters %+v", u)
	}
}

func TestPutRefusals(t *testing.T) {
	for _, c := range []struct {
		name, raw, want string
	}{
		{"outside the prefix", put("/hello.txt", []byte("x"), ""), "403"},
		{"the prefix itself", put("/up/", []byte("x"), ""), "403"},
		{"no length", "PUT /up/a HTTP/1.1\r\nHost: vs\r\n\r\n", "411"},
		{"too large", "PUT /up/a HTTP/1.1\r\nHost: vs\r\nContent-Length: 1001\r\n\r\n", "413"},
		{"no parent", put("/up/nodir/a", []byte("x"), ""), "409"},
		{"a directory", put("/up/d", []byte("x"), ""), "409"},
		{"chunked", "PUT /up/a HTTP/1.1\r\nHost: vs\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n", "501"},
		{"escape", put("/up/../hello.txt", []byte("x"), ""), "403"},
		{"DELETE lists PUT", "DELETE /up/a HTTP/1.1\r\nHost: vs\r\n\r\n", "405"},
	} {
		svc, fn, w := uploadService(t, Config{MaxUploadBytes: 1000}, 1<<20)
		w.Mkdir("up/d", modTime)
		id := fn.connect(t, svc, 0)
		fn.send(svc, id, c.raw, 0)
		out := string(fn.drain(svc, id, 0))
		if !strings.HasPrefix(out, "HTTP/1.1 "+c.want+" ") {
			t.Errorf("%s: %q, want %s", c.name, out, c.want)
		}
		if c.want == "405" && !strings.Contains(out, "Allow: GET, HEAD, PUT\r\n") {
			t.Errorf("%s: %q lacks PUT in Allow", c.name, out)
		}
		if got := fileBytes(t, w, "hello.txt"); string(got) != "hello, world\n" {
			t.Errorf("%s: hello.txt changed to %q", c.name, got)
		}
	}
	// A read-only store, or no prefix: 405, and the body is skipped so the
	// next request on the connection is answered.
	for _, svc := range []*Service{New(Config{UploadPrefix: "/up/"}, testFS()), New(Config{}, memfs.Writable{FS: testFS()})} {
		fn := newFakeNet(1 << 20)
		svc.Start(fn)
		id := fn.connect(t, svc, 0)
		fn.send(svc, id, put("/up/a", []byte("body"), "")+"GET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n", 0)
		out := string(fn.drain(svc, id, 0))
		if !strings.HasPrefix(out, "HTTP/1.1 405 ") || !strings.HasSuffix(out, "hello, world\n") {
			t.Errorf("PUT without uploads: %q", out)
		}
	}
}

// Expect: 100-continue gets the go-ahead, then the final status.
func TestPutExpectContinue(t *testing.T) {
	svc, fn, w := uploadService(t, Config{}, 1<<20)
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, "PUT /up/e.txt HTTP/1.1\r\nHost: vs\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 0)
	if out := string(fn.drain(svc, id, 0)); out != "HTTP/1.1 100 Continue\r\n\r\n" {
		t.Fatalf("before the body: %q", out)
	}
	fn.send(svc, id, "hello", 0)
	if out := string(fn.drain(svc, id, 0)); !strings.HasPrefix(out, "HTTP/1.1 201 ") {
		t.Fatalf("after the body: %q", out)
	}
	if got := fileBytes(t, w, "up/e.txt"); string(got) != "hello" {
		t.Fatalf("stored %q", got)
	}
}

// A snapshot taken mid-upload restores and the upload finishes; a client
// that goes away mid-body is closed and the upload dropped.
func TestPutSnapshotAndAbort(t *testing.T) {
	svc, fn, w := uploadService(t, Config{}, 1<<20)
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, put("/up/s.txt", []byte("0123456789"), "")[:len(put("/up/s.txt", []byte("0123456789"), ""))-4], 0)
	b := svc.Snapshot()
	svc2 := New(svc.cfg, w)
	if err := svc2.Restore(b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svc2.Snapshot(), b) {
		t.Fatal("restored snapshot differs")
	}
	if svc2.conns[id].upload == nil || svc2.conns[id].upload.left != 4 {
		t.Fatalf("upload not restored: %+v", svc2.conns[id].upload)
	}
	fn.send(svc2, id, "6789", 0)
	if out := string(fn.drain(svc2, id, 0)); !strings.HasPrefix(out, "HTTP/1.1 201 ") {
		t.Fatalf("after restore: %q", out)
	}
	if got := fileBytes(t, w, "up/s.txt"); string(got) != "0123456789" {
		t.Fatalf("stored %q", got)
	}
	// Restored into a read-only store: the rest of the body fails with 500.
	svc3 := New(Config{UploadPrefix: "/up/"}, testFS())
	if err := svc3.Restore(b); err != nil {
		t.Fatal(err)
	}
	fn.send(svc3, id, "6789", 0)
	if out := string(fn.drain(svc3, id, 0)); !strings.HasPrefix(out, "HTTP/1.1 500 ") {
		t.Fatalf("restored into a read-only store: %q", out)
	}

	id2 := fn.connect(t, svc, 0)
	fn.send(svc, id2, "PUT /up/cut.txt HTTP/1.1\r\nHost: vs\r\nContent-Length: 100\r\n\r\nonly part", 0)
	fn.Socks[id2].EOF = true
	fn.send(svc, id2, "", 0)
	if !fn.Socks[id2].Closed || svc.conns[id2] != nil {
		t.Fatal("a client gone mid-body left its connection open")
	}
}

// Snapshot version 2 (before uploads) still restores.
func TestSnapshotV2Restores(t *testing.T) {
	svc, fn := newTestService(t, Config{}, 100)
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, "GET /big.img HTTP/1.1\r\nHost: vs\r\n\r\n", 0)
	v3 := svc.Snapshot()
	v2 := encodeV2(svc)
	svc2 := New(Config{}, testFS())
	if err := svc2.Restore(v2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svc2.Snapshot(), v3) {
		t.Fatal("a v2 snapshot restores to a different state")
	}
}

// encodeV2 is the version 2 encoding (as committed before uploads).
func encodeV2(s *Service) []byte {
	w := snap.NewWriter(256)
	w.Section("http", 2, func(w *snap.Writer) {
		w.Bool(s.lis.Started)
		w.U32(uint32(s.lis.ID))
		for _, f := range s.ctr.fields() {
			w.U64(*f)
		}
		ids := make([]sockapi.SockID, 0, len(s.conns))
		for id := range s.conns {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		w.U32(uint32(len(ids)))
		for _, id := range ids {
			c := s.conns[id]
			w.U32(uint32(c.sock))
			w.Blob(c.in)
			w.Blob(c.out)
			w.String(c.filePath)
			w.I64(c.fileOff)
			w.I64(c.fileLeft)
			w.I64(c.skipBody)
			w.Bool(c.closeAfter)
			w.Bool(c.peerEOF)
			w.I64(c.lastActive)
			w.I64(c.headSince)
		}
	})
	return w.Bytes()
}

// syncingFS is the test store with a Sync hook (fsapi.Syncer).
type syncingFS struct {
	memfs.Writable
	syncs int
	fail  error
}

func (s *syncingFS) Sync() error { s.syncs++; return s.fail }

// A complete PUT is made durable before its 2xx; a store that cannot make
// it durable answers 500 and counts an upload error.
func TestPutSyncsBeforeReply(t *testing.T) {
	fs := testFS()
	fs.Mkdir("up", modTime)
	ss := &syncingFS{Writable: memfs.Writable{FS: fs}}
	svc := New(Config{UploadPrefix: "/up/"}, ss)
	fn := newFakeNet(1 << 20)
	if err := svc.Start(fn); err != nil {
		t.Fatal(err)
	}
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, put("/up/a.bin", []byte("durable"), ""), 1)
	if out := string(fn.drain(svc, id, 1)); !strings.HasPrefix(out, "HTTP/1.1 201 Created\r\n") || ss.syncs != 1 {
		t.Fatalf("PUT: %d syncs, %q", ss.syncs, out)
	}
	ss.fail = errors.New("disk gone")
	fn.send(svc, id, put("/up/a.bin", []byte("lost"), ""), 2)
	if out := string(fn.drain(svc, id, 2)); !strings.HasPrefix(out, "HTTP/1.1 500 ") || ss.syncs != 2 {
		t.Fatalf("PUT with a failing sync: %d syncs, %q", ss.syncs, out)
	}
	if u := svc.UploadCounters(); u.Uploads != 1 || u.UploadErrors != 1 {
		t.Fatalf("counters %+v", u)
	}
}

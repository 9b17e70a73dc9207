package http

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"io"
	nethttp "net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine/memfs"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

const modTime = 784111777 // Sun, 06 Nov 1994 08:49:37 GMT

func testFS() *memfs.FS {
	fs := memfs.New()
	fs.Add("hello.txt", []byte("hello, world\n"), modTime)
	fs.Add("empty.bin", nil, modTime)
	fs.Add("docs/a & <b>.html", []byte("<p>x</p>"), modTime)
	fs.Add("docs/sub/deep.json", []byte(`{"a":1}`), modTime)
	fs.Add("docs/\"quoted\" name.txt", []byte("q"), modTime)
	fs.AddSynthetic("big.img", 10<<20, 7, modTime)
	return fs
}

func newTestService(t *testing.T, cfg Config, space int) (*Service, *fakeNet) {
	t.Helper()
	svc := New(cfg, testFS())
	fn := newFakeNet(space)
	if err := svc.Start(fn); err != nil {
		t.Fatal(err)
	}
	return svc, fn
}

// exchange opens a connection, sends raw, and returns the raw reply bytes.
func exchange(t *testing.T, raw string, space int) (string, *fakeSock) {
	t.Helper()
	svc, fn := newTestService(t, Config{}, space)
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, raw, 0)
	out := fn.drain(svc, id, 0)
	return string(out), fn.Socks[id]
}

func readResponses(t *testing.T, raw string, method string) []*nethttp.Response {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(raw))
	var out []*nethttp.Response
	for {
		if _, err := br.Peek(1); err == io.EOF {
			return out
		}
		resp, err := nethttp.ReadResponse(br, &nethttp.Request{Method: method})
		if err != nil {
			t.Fatalf("response %d does not parse: %v\nraw:\n%q", len(out)+1, err, raw)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("response %d body: %v", len(out)+1, err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		out = append(out, resp)
	}
}

func body(t *testing.T, r *nethttp.Response) string {
	t.Helper()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func TestGetFile(t *testing.T) {
	raw, sk := exchange(t, "GET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n", 1<<20)
	rs := readResponses(t, raw, "GET")
	if len(rs) != 1 {
		t.Fatalf("%d responses", len(rs))
	}
	r := rs[0]
	if r.StatusCode != 200 || body(t, r) != "hello, world\n" {
		t.Fatalf("status %d", r.StatusCode)
	}
	want := map[string]string{
		"Content-Length": "13",
		"Content-Type":   "text/plain; charset=utf-8",
		"Last-Modified":  "Sun, 06 Nov 1994 08:49:37 GMT",
		"Accept-Ranges":  "bytes",
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if sk.Closed || sk.Aborted {
		t.Fatal("HTTP/1.1 keep-alive connection was closed")
	}
}

func TestHead(t *testing.T) {
	raw, _ := exchange(t, "HEAD /big.img HTTP/1.1\r\nHost: vs\r\n\r\n", 1<<20)
	if !strings.HasSuffix(raw, "\r\n\r\n") {
		t.Fatalf("HEAD response carries a body: %q", raw)
	}
	rs := readResponses(t, raw, "HEAD")
	if rs[0].StatusCode != 200 || rs[0].ContentLength != 10<<20 {
		t.Fatalf("status %d length %d", rs[0].StatusCode, rs[0].ContentLength)
	}
}

func synth(off, n int64) string {
	b := make([]byte, n)
	memfs.Fill(b, 7, off)
	return string(b)
}

func TestRanges(t *testing.T) {
	const size = 10 << 20
	cases := []struct {
		rng, ifRange string
		status       int
		first, last  int64
		contentRange string
	}{
		{"bytes=0-9", "", 206, 0, 9, "bytes 0-9/10485760"},
		{"bytes=10485750-", "", 206, size - 10, size - 1, "bytes 10485750-10485759/10485760"},
		{"bytes=-5", "", 206, size - 5, size - 1, "bytes 10485755-10485759/10485760"},
		{"bytes=100-99999999999999999999999", "", 206, 100, size - 1, "bytes 100-10485759/10485760"},
		{"bytes=-99999999", "", 206, 0, size - 1, "bytes 0-10485759/10485760"},
		{"bytes=10485760-", "", 416, 0, 0, "bytes */10485760"},
		{"bytes=-0", "", 416, 0, 0, "bytes */10485760"},
		{"bytes=0-1,5-6", "", 200, 0, size - 1, ""},
		{"bytes=9-3", "", 200, 0, size - 1, ""},
		{"lines=1-2", "", 200, 0, size - 1, ""},
		{"bytes=x-", "", 200, 0, size - 1, ""},
		{"bytes=3-4", "Sun, 06 Nov 1994 08:49:37 GMT", 206, 3, 4, "bytes 3-4/10485760"},
		{"bytes=3-4", "Mon, 07 Nov 1994 08:49:37 GMT", 200, 0, size - 1, ""},
		{"bytes=3-4", `"some-etag"`, 200, 0, size - 1, ""},
	}
	for _, c := range cases {
		req := "GET /big.img HTTP/1.1\r\nHost: vs\r\nRange: " + c.rng + "\r\n"
		if c.ifRange != "" {
			req += "If-Range: " + c.ifRange + "\r\n"
		}
		raw, _ := exchange(t, req+"\r\n", 1<<20)
		r := readResponses(t, raw, "GET")[0]
		if r.StatusCode != c.status {
			t.Errorf("Range %q If-Range %q: status %d, want %d", c.rng, c.ifRange, r.StatusCode, c.status)
			continue
		}
		if got := r.Header.Get("Content-Range"); got != c.contentRange {
			t.Errorf("Range %q: Content-Range %q, want %q", c.rng, got, c.contentRange)
		}
		if c.status != 416 && body(t, r) != synth(c.first, c.last-c.first+1) {
			t.Errorf("Range %q: wrong bytes", c.rng)
		}
	}
	raw, _ := exchange(t, "GET /empty.bin HTTP/1.1\r\nHost: vs\r\nRange: bytes=0-\r\n\r\n", 1<<20)
	if r := readResponses(t, raw, "GET")[0]; r.StatusCode != 416 || r.Header.Get("Content-Range") != "bytes */0" {
		t.Errorf("range on empty file: %d %q", r.StatusCode, r.Header.Get("Content-Range"))
	}
}

func TestErrors(t *testing.T) {
	long := strings.Repeat("a", 5000)
	cases := []struct {
		name, req string
		status    int
		closed    bool
	}{
		{"not found", "GET /nope HTTP/1.1\r\nHost: vs\r\n\r\n", 404, false},
		{"file with slash", "GET /hello.txt/ HTTP/1.1\r\nHost: vs\r\n\r\n", 404, false},
		{"traversal cleaned", "GET /../../etc/passwd HTTP/1.1\r\nHost: vs\r\n\r\n", 404, false},
		{"method", "POST /hello.txt HTTP/1.1\r\nHost: vs\r\nContent-Length: 3\r\n\r\nabc", 405, false},
		{"delete", "DELETE /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n", 405, false},
		{"expect 100", "PUT /x HTTP/1.1\r\nHost: vs\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n", 405, true},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400, true},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, true},
		{"garbage", "HELLO\r\n\r\n", 400, true},
		{"bad version", "GET / HTTP/1.x\r\nHost: vs\r\n\r\n", 400, true},
		{"http2", "GET / HTTP/2.0\r\nHost: vs\r\n\r\n", 505, true},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: vs\r\nX-A: 1\r\n  2\r\n\r\n", 400, true},
		{"space before colon", "GET / HTTP/1.1\r\nHost : vs\r\n\r\n", 400, true},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: vs\r\n\r\n", 400, true},
		{"nul escape", "GET /a%00b HTTP/1.1\r\nHost: vs\r\n\r\n", 400, true},
		{"long uri", "GET /" + long + " HTTP/1.1\r\nHost: vs\r\n\r\n", 414, true},
		{"big headers", "GET / HTTP/1.1\r\nHost: vs\r\nX-Big: " + long + long + "\r\n\r\n", 431, true},
		{"many headers", "GET / HTTP/1.1\r\nHost: vs\r\n" + strings.Repeat("X-A: 1\r\n", 101) + "\r\n", 431, true},
		{"big body", "GET / HTTP/1.1\r\nHost: vs\r\nContent-Length: 1000000\r\n\r\n", 413, true},
		{"chunked", "GET / HTTP/1.1\r\nHost: vs\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 501, true},
		{"conflicting lengths", "GET / HTTP/1.1\r\nHost: vs\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, true},
	}
	for _, c := range cases {
		raw, sk := exchange(t, c.req, 1<<20)
		rs := readResponses(t, raw, "GET")
		if len(rs) != 1 {
			t.Errorf("%s: %d responses", c.name, len(rs))
			continue
		}
		r := rs[0]
		if r.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d", c.name, r.StatusCode, c.status)
		}
		if b := body(t, r); !strings.HasPrefix(b, nethttp.StatusText(c.status)[:3]) && !strings.Contains(b, "Not Found") && len(b) > 100 {
			t.Errorf("%s: body %q is not small", c.name, b)
		}
		if sk.Closed != c.closed {
			t.Errorf("%s: closed=%v, want %v", c.name, sk.Closed, c.closed)
		}
		if c.closed && !r.Close { // net/http moves "Connection: close" into Close
			t.Errorf("%s: closing response lacks Connection: close", c.name)
		}
		if c.status == 405 && r.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s: Allow = %q", c.name, r.Header.Get("Allow"))
		}
	}
}

func TestPipelining(t *testing.T) {
	reqs := "GET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n" +
		"GET /nope HTTP/1.1\r\nHost: vs\r\n\r\n" +
		"GET /big.img HTTP/1.1\r\nHost: vs\r\nRange: bytes=0-99999\r\n\r\n" +
		"HEAD /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n" +
		"GET /hello.txt HTTP/1.1\r\nHost: vs\r\nContent-Length: 4\r\n\r\nbody" +
		"GET /docs/sub/deep.json HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n"
	// Small send space: responses interleave with refills; byte-at-a-time
	// delivery of the requests exercises partial heads.
	for _, space := range []int{1 << 20, 1000, 7} {
		svc, fn := newTestService(t, Config{}, space)
		id := fn.connect(t, svc, 0)
		var out []byte
		for i := 0; i < len(reqs); i += 5 {
			fn.send(svc, id, reqs[i:min(i+5, len(reqs))], 0)
			out = append(out, fn.drain(svc, id, 0)...)
		}
		raw := string(out)
		br := bufio.NewReader(strings.NewReader(raw))
		want := []struct {
			method string
			status int
			body   string
		}{
			{"GET", 200, "hello, world\n"}, {"GET", 404, "404 Not Found\n"}, {"GET", 206, synth(0, 100000)},
			{"HEAD", 200, ""}, {"GET", 200, "hello, world\n"}, {"GET", 200, `{"a":1}`},
		}
		for i, w := range want {
			r, err := nethttp.ReadResponse(br, &nethttp.Request{Method: w.method})
			if err != nil {
				t.Fatalf("space %d: response %d: %v", space, i, err)
			}
			b, _ := io.ReadAll(r.Body)
			if r.StatusCode != w.status || string(b) != w.body {
				t.Fatalf("space %d: response %d: status %d body %.40q", space, i, r.StatusCode, b)
			}
		}
		if rest, _ := io.ReadAll(br); len(rest) != 0 {
			t.Fatalf("space %d: %d extra bytes", space, len(rest))
		}
		if !fn.Socks[id].Closed || svc.Conns() != 0 {
			t.Fatalf("space %d: not closed after Connection: close", space)
		}
	}
}

func TestPipelineBufferIsBounded(t *testing.T) {
	svc, fn := newTestService(t, Config{MaxBuffered: 8192}, 0) // no send space: nothing drains
	id := fn.connect(t, svc, 0)
	one := "GET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n"
	fn.send(svc, id, strings.Repeat(one, 2000), 0)
	c := svc.conns[id]
	if len(c.in) > 8192 {
		t.Fatalf("service buffered %d bytes, limit 8192", len(c.in))
	}
	if len(fn.Socks[id].In) == 0 {
		t.Fatal("service read everything instead of leaving it to flow control")
	}
	// Draining delivers every response in order.
	out := fn.drainWithSpace(svc, id, 1<<16)
	if n := strings.Count(string(out), "HTTP/1.1 200 OK"); n != 2000 {
		t.Fatalf("%d responses, want 2000", n)
	}
}

func (f *fakeNet) drainWithSpace(svc *Service, id sockapi.SockID, space int) []byte {
	f.Space = space
	return f.drain(svc, id, 0)
}

func TestConnectionPersistence(t *testing.T) {
	cases := []struct {
		req    string
		closed bool
		header string
	}{
		{"GET /hello.txt HTTP/1.0\r\n\r\n", true, "close"},
		{"GET /hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, "keep-alive"},
		{"GET /hello.txt HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n", true, "close"},
		{"GET /hello.txt HTTP/1.1\r\nHost: vs\r\nConnection: foo, Close\r\n\r\n", true, "close"},
		{"GET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n", false, "keep-alive"},
	}
	for _, c := range cases {
		raw, sk := exchange(t, c.req, 1<<20)
		r := readResponses(t, raw, "GET")[0]
		conn := r.Header.Get("Connection")
		if r.Close {
			conn = "close"
		}
		if r.StatusCode != 200 || sk.Closed != c.closed || conn != c.header {
			t.Errorf("%q: status %d closed %v Connection %q", c.req, r.StatusCode, sk.Closed, r.Header.Get("Connection"))
		}
	}
	// A client that half-closes after its request still gets the answer,
	// then the connection is closed.
	svc, fn := newTestService(t, Config{}, 1<<20)
	id := fn.connect(t, svc, 0)
	fn.Socks[id].EOF = true
	fn.send(svc, id, "GET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n", 0)
	out := fn.drain(svc, id, 0)
	if r := readResponses(t, string(out), "GET"); len(r) != 1 || r[0].StatusCode != 200 || !fn.Socks[id].Closed {
		t.Fatalf("half-close: %q closed=%v", out, fn.Socks[id].Closed)
	}
}

func TestDirectoryListing(t *testing.T) {
	raw, _ := exchange(t, "GET /docs HTTP/1.1\r\nHost: vs\r\n\r\n", 1<<20)
	r := readResponses(t, raw, "GET")[0]
	if r.StatusCode != 301 || r.Header.Get("Location") != "/docs/" {
		t.Fatalf("redirect: %d Location %q", r.StatusCode, r.Header.Get("Location"))
	}
	raw, _ = exchange(t, "GET /docs/ HTTP/1.1\r\nHost: vs\r\n\r\n", 1<<20)
	r = readResponses(t, raw, "GET")[0]
	b := body(t, r)
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("listing: %d %q", r.StatusCode, r.Header.Get("Content-Type"))
	}
	for _, want := range []string{
		`<a href="../">../</a>`,
		`<a href="a%20%26%20%3Cb%3E.html">a &amp; &lt;b&gt;.html</a>`,
		`<a href="%22quoted%22%20name.txt">&#34;quoted&#34; name.txt</a>`,
		`<a href="sub/">sub/</a>`,
		"<title>Index of /docs/</title>",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("listing lacks %q:\n%s", want, b)
		}
	}
	if strings.Contains(b, "<b>") {
		t.Error("listing holds an unescaped name")
	}
	raw, _ = exchange(t, "GET /docs/a%20%26%20%3Cb%3E.html HTTP/1.1\r\nHost: vs\r\n\r\n", 1<<20)
	if r := readResponses(t, raw, "GET")[0]; r.StatusCode != 200 || body(t, r) != "<p>x</p>" {
		t.Fatalf("escaped link does not resolve: %d", r.StatusCode)
	}
	// Root listing has no parent link; MaxListing truncates.
	fs := memfs.New()
	for i := 0; i < 30; i++ {
		fs.Add(string(rune('a'+i%26))+strings.Repeat("x", i), []byte("1"), modTime)
	}
	svc := New(Config{MaxListing: 10}, fs)
	fn := newFakeNet(1 << 20)
	_ = svc.Start(fn)
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, "GET / HTTP/1.1\r\nHost: vs\r\n\r\n", 0)
	b = body(t, readResponses(t, string(fn.drain(svc, id, 0)), "GET")[0])
	if strings.Contains(b, "../") || strings.Count(b, "<a href") != 10 || !strings.Contains(b, "(20 more entries not shown)") {
		t.Fatalf("root listing:\n%s", b)
	}
}

func TestIdleTimeout(t *testing.T) {
	svc, fn := newTestService(t, Config{IdleTimeout: 5 * time.Second}, 1<<20)
	const sec = int64(time.Second)
	idle := fn.connect(t, svc, 10*sec)
	if d := svc.NextDeadline(); d != 15*sec {
		t.Fatalf("deadline %d, want %d", d, 15*sec)
	}
	fn.send(svc, idle, "GET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n", 12*sec)
	fn.drain(svc, idle, 12*sec)
	if d := svc.NextDeadline(); d != 17*sec {
		t.Fatalf("deadline after activity %d, want %d", d, 17*sec)
	}
	// A stalled download: no send space at all.
	fn.Space = 0
	stalled := fn.connect(t, svc, 13*sec)
	fn.send(svc, stalled, "GET /big.img HTTP/1.1\r\nHost: vs\r\n\r\n", 13*sec)
	svc.Timer(fn, 16*sec)
	if fn.Socks[idle].Closed || fn.Socks[stalled].Aborted {
		t.Fatal("timer fired early")
	}
	svc.Timer(fn, 17*sec)
	if !fn.Socks[idle].Closed || svc.Conns() != 1 {
		t.Fatal("idle connection not closed at its deadline")
	}
	svc.Timer(fn, 18*sec)
	if !fn.Socks[stalled].Aborted || svc.Conns() != 0 || svc.NextDeadline() != 0 {
		t.Fatal("stalled download not reset at its deadline")
	}
	c := svc.Counters()
	if c.IdleClosed != 1 || c.StalledAborts != 1 {
		t.Fatalf("counters %+v", c)
	}
}

func TestMaxConns(t *testing.T) {
	svc, fn := newTestService(t, Config{MaxConns: 2}, 1<<20)
	a, b, c := fn.connect(t, svc, 0), fn.connect(t, svc, 0), fn.connect(t, svc, 0)
	if fn.Socks[a].Aborted || fn.Socks[b].Aborted || !fn.Socks[c].Aborted || svc.Counters().RefusedConns != 1 {
		t.Fatal("third connection not refused")
	}
}

func TestPeerReset(t *testing.T) {
	svc, fn := newTestService(t, Config{}, 1000)
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, "GET /big.img HTTP/1.1\r\nHost: vs\r\n\r\n", 0)
	fn.Socks[id].Gone = true
	svc.Handle(fn, sockapi.Event{Kind: sockapi.EvWritable, Sock: id, Listener: 1}, 0)
	if svc.Conns() != 0 {
		t.Fatal("connection kept after reset")
	}
	svc.Handle(fn, sockapi.Event{Kind: sockapi.EvClosed, Sock: id, Listener: 1}, 0) // unknown now: ignored
}

// A 1 GiB file streams through a bounded send space without the service
// holding more than its fixed buffers.
func TestLargeFileStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	const size = 1 << 30
	fs := memfs.New()
	fs.AddSynthetic("huge.img", size, 42, modTime)
	svc := New(Config{}, fs)
	fn := newFakeNet(1 << 20)
	_ = svc.Start(fn)
	id := fn.connect(t, svc, 0)

	var got int64
	var head []byte
	inBody := false
	want := make([]byte, 1<<20)
	gotHash, wantHash := sha256.New(), sha256.New()
	fn.Socks[id].Sink = func(p []byte) {
		if !inBody {
			head = append(head, p...)
			i := bytes.Index(head, []byte("\r\n\r\n"))
			if i < 0 {
				return
			}
			p = head[i+4:]
			inBody = true
		}
		gotHash.Write(p)
		got += int64(len(p))
	}
	// Memory: the live heap in mid-stream (after a forced GC) and the bytes
	// allocated over the whole stream must not grow with the file.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseLive, baseTotal := ms.HeapAlloc, ms.TotalAlloc
	var midLive uint64
	fn.send(svc, id, "GET /huge.img HTTP/1.1\r\nHost: vs\r\n\r\n", 0)
	for i := 0; got < size && i < 1<<16; i++ {
		fn.Socks[id].Space = 1 << 20
		svc.Handle(fn, sockapi.Event{Kind: sockapi.EvWritable, Sock: id, Listener: 1}, 0)
		if i == 512 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			midLive = ms.HeapAlloc
		}
	}
	runtime.ReadMemStats(&ms)
	if grown := int64(midLive) - int64(baseLive); grown > 16<<20 {
		t.Fatalf("live heap grew by %d MiB in mid-stream", grown>>20)
	}
	if alloc := ms.TotalAlloc - baseTotal; alloc > 64<<20 {
		t.Fatalf("streaming 1 GiB allocated %d MiB", alloc>>20)
	}
	t.Logf("live heap growth %d KiB, allocated %d KiB for 1 GiB", (int64(midLive)-int64(baseLive))>>10, (ms.TotalAlloc-baseTotal)>>10)
	if got != size {
		t.Fatalf("streamed %d bytes, want %d", got, size)
	}
	for off := int64(0); off < size; off += int64(len(want)) {
		memfs.Fill(want, 42, off)
		wantHash.Write(want)
	}
	if !bytes.Equal(gotHash.Sum(nil), wantHash.Sum(nil)) {
		t.Fatal("streamed bytes differ from the file")
	}
	if !strings.Contains(string(head), "Content-Length: 1073741824\r\n") {
		t.Fatalf("head %q", head)
	}
}

// A snapshot taken mid-download, restored into a new service, continues the
// download byte-exact.
func TestSnapshotMidDownload(t *testing.T) {
	svc, fn := newTestService(t, Config{}, 100000)
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, "GET /big.img HTTP/1.1\r\nHost: vs\r\n\r\nGET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\n", 0)
	part1 := append([]byte(nil), fn.Socks[id].Out...)
	fn.Socks[id].Out = nil

	snapBytes := svc.Snapshot()
	svc2 := New(Config{}, testFS())
	if err := svc2.Restore(snapBytes); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svc2.Snapshot(), snapBytes) {
		t.Fatal("snapshot of the restored service differs")
	}
	part2 := fn.drain(svc2, id, 0)
	rs := readResponses(t, string(part1)+string(part2), "GET")
	if len(rs) != 2 || body(t, rs[0]) != synth(0, 10<<20) || body(t, rs[1]) != "hello, world\n" {
		t.Fatalf("download after restore is wrong (%d responses)", len(rs))
	}
	if err := svc2.Restore(snapBytes[:len(snapBytes)-3]); err == nil {
		t.Fatal("truncated snapshot restored")
	}
}

func TestConditionalAndIndex(t *testing.T) {
	cases := []struct {
		hdr    string
		status int
	}{
		{"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT", 304},
		{"If-Modified-Since: Mon, 07 Nov 1994 00:00:00 GMT", 304},
		{"If-Modified-Since: Sat, 05 Nov 1994 08:49:37 GMT", 200},
		{"If-Modified-Since: yesterday", 200},
		{"If-Modified-Since: Sunday, 06-Nov-94 08:49:37 GMT", 200}, // RFC 850: not read, ignored
		{"If-None-Match: *", 304},
		{"If-None-Match: \"abc\"\r\nIf-Modified-Since: Mon, 07 Nov 1994 00:00:00 GMT", 200},
	}
	for _, c := range cases {
		raw, sk := exchange(t, "GET /hello.txt HTTP/1.1\r\nHost: vs\r\n"+c.hdr+"\r\n\r\n", 1<<20)
		r := readResponses(t, raw, "GET")[0]
		if r.StatusCode != c.status || sk.Closed {
			t.Errorf("%q: status %d closed %v, want %d", c.hdr, r.StatusCode, sk.Closed, c.status)
		}
		if c.status == 304 && (body(t, r) != "" || r.Header.Get("Last-Modified") != "Sun, 06 Nov 1994 08:49:37 GMT") {
			t.Errorf("%q: 304 with body or without Last-Modified", c.hdr)
		}
	}
	// A directory with index.html is served by it; without, it is listed.
	fs := memfs.New()
	fs.Add("site/index.html", []byte("<p>home</p>"), modTime)
	fs.Add("index.html", []byte("<p>root</p>"), modTime)
	fs.Add("plain/x.txt", []byte("x"), modTime)
	svc := New(Config{}, fs)
	fn := newFakeNet(1 << 20)
	_ = svc.Start(fn)
	id := fn.connect(t, svc, 0)
	fn.send(svc, id, "GET /site/ HTTP/1.1\r\nHost: vs\r\n\r\nGET / HTTP/1.1\r\nHost: vs\r\n\r\nGET /plain/ HTTP/1.1\r\nHost: vs\r\n\r\n", 0)
	rs := readResponses(t, string(fn.drain(svc, id, 0)), "GET")
	if len(rs) != 3 || body(t, rs[0]) != "<p>home</p>" || body(t, rs[1]) != "<p>root</p>" ||
		!strings.Contains(body(t, rs[2]), `<a href="x.txt">x.txt</a>`) || rs[0].Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("index.html handling wrong (%d responses)", len(rs))
	}
}

// A request head trickled in slowly is cut off after RequestTimeout even
// though every byte refreshes the idle timer (slowloris).
func TestRequestTimeout(t *testing.T) {
	const sec = int64(time.Second)
	svc, fn := newTestService(t, Config{IdleTimeout: 20 * time.Second, RequestTimeout: 30 * time.Second}, 1<<20)
	id := fn.connect(t, svc, 0)
	req := "GET /hello.txt HTTP/1.1\r\nHost: vs\r\nX-Slow: " + strings.Repeat("a", 100)
	for i := 0; i < len(req); i++ {
		now := int64(i) * 5 * sec
		if d := svc.NextDeadline(); d != 0 && d <= now {
			svc.Timer(fn, now)
		}
		if fn.Socks[id].Closed {
			if now < 30*sec || now > 35*sec {
				t.Fatalf("closed at %d s, want 30..35 s", now/sec)
			}
			return
		}
		fn.send(svc, id, req[i:i+1], now)
	}
	t.Fatal("trickled request never timed out")
}

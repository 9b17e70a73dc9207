package http

import (
	"bytes"
	nethttp "net/http"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine/memfs"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

func TestParseRequest(t *testing.T) {
	cfg := Config{}.WithDefaults()
	cases := []struct {
		in        string
		path      string
		keepAlive bool
		n         int // 0: need more
	}{
		{"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "/", true, 27},
		{"\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", "/a", true, 30},
		{"GET /a/./b/../c/ HTTP/1.1\nHost: x\n\n", "/a/c/", true, 35},
		{"GET http://example.com/x?y=1 HTTP/1.1\r\nHost: x\r\n\r\n", "/x", true, 50},
		{"GET http://example.com HTTP/1.1\r\nHost: x\r\n\r\n", "/", true, 44},
		{"GET /%7Euser/a%20b HTTP/1.0\r\n\r\n", "/~user/a b", false, 31},
		{"GET //../..//etc HTTP/1.1\r\nHost: x\r\n\r\n", "/etc", true, 38},
		{"GET / HTTP/1.1\r\nHost: x\r\n", "", false, 0},
		{"GET / HTTP/1.1", "", false, 0},
		{"", "", false, 0},
	}
	for _, c := range cases {
		req, n, e := ParseRequest([]byte(c.in), cfg)
		if e != nil {
			t.Errorf("%q: %v", c.in, e)
			continue
		}
		if n != c.n || (n > 0 && (req.Path != c.path || req.KeepAlive != c.keepAlive)) {
			t.Errorf("%q: n=%d path=%q keep=%v; want n=%d path=%q keep=%v", c.in, n, req.Path, req.KeepAlive, c.n, c.path, c.keepAlive)
		}
	}
}

func TestHTTPDate(t *testing.T) {
	if got := httpDate(modTime); got != "Sun, 06 Nov 1994 08:49:37 GMT" {
		t.Fatal(got)
	}
	// Compare with the time package (allowed in tests) across eras,
	// leap years and negative times.
	for _, sec := range []int64{0, -1, 86399, 951782400, 951868800, 4102444800, 253402300799, -62135596800, 1 << 33} {
		want := time.Unix(sec, 0).UTC().Format(nethttp.TimeFormat)
		if got := httpDate(sec); got != want {
			t.Errorf("httpDate(%d) = %q, want %q", sec, got, want)
		}
	}
	for sec := int64(-1e10); sec < 1e11; sec += 7777777 {
		got, want := httpDate(sec), time.Unix(sec, 0).UTC().Format(nethttp.TimeFormat)
		if got != want {
			t.Fatalf("httpDate(%d) = %q, want %q", sec, got, want)
		}
		if sec >= -62135596800 && sec < 253402300800 { // years 1..9999 fit the format
			if back, ok := parseHTTPDate(got); !ok || back != sec {
				t.Fatalf("parseHTTPDate(%q) = %d, %v; want %d", got, back, ok, sec)
			}
		}
	}
	for _, bad := range []string{"", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 0x Nov 1994 08:49:37 GMT"} {
		if _, ok := parseHTTPDate(bad); ok {
			t.Errorf("parseHTTPDate(%q) accepted", bad)
		}
	}
}

func TestContentType(t *testing.T) {
	for name, want := range map[string]string{
		"a.HTML": "text/html; charset=utf-8", "x.tar.gz": "application/gzip", "noext": "application/octet-stream",
		"d.v/file": "application/octet-stream", "p.png": "image/png", "disk.iso": "application/x-iso9660-image",
	} {
		if got := contentType(name); got != want {
			t.Errorf("contentType(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"HEAD /a%20b?q HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
		"GET http://h/x HTTP/1.1\r\nHost: h\r\nRange: bytes=0-5\r\nIf-Range: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
		"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET /../%2e%2e/x HTTP/1.1\nHost: h\n\n",
	} {
		f.Add([]byte(s))
	}
	cfg := Config{MaxURIBytes: 256, MaxHeaderBytes: 1024, MaxHeaderFields: 10}.WithDefaults()
	f.Fuzz(func(t *testing.T, b []byte) {
		req, n, e := ParseRequest(b, cfg)
		if e != nil {
			if n != 0 || e.Status < 400 || e.Status > 599 {
				t.Fatalf("error %v with n=%d", e, n)
			}
			return
		}
		if n == 0 {
			if len(b) > cfg.MaxHeaderBytes+8 {
				t.Fatalf("%d bytes neither parsed nor refused", len(b))
			}
			return
		}
		if n > len(b) || n > cfg.MaxHeaderBytes+8 {
			t.Fatalf("n=%d of %d bytes", n, len(b))
		}
		if req.Path != "*" && (!strings.HasPrefix(req.Path, "/") || strings.Contains(req.Path, "/../") ||
			strings.HasSuffix(req.Path, "/..") || strings.IndexByte(req.Path, 0) >= 0) {
			t.Fatalf("unsafe path %q", req.Path)
		}
		if req.Major != 1 || len(req.Target) > cfg.MaxURIBytes {
			t.Fatalf("request %+v passed the limits", req)
		}
		// Parsing is a pure function of the bytes.
		req2, n2, _ := ParseRequest(append([]byte(nil), b...), cfg)
		if n2 != n || req2 != req {
			t.Fatal("second parse differs")
		}
	})
}

// FuzzService feeds arbitrary client bytes, in arbitrary pieces, to the
// service and checks it never panics, answers with parseable HTTP, keeps its
// buffers bounded and snapshots to the same bytes after a restore.
func FuzzService(f *testing.F) {
	f.Add([]byte("GET /hello.txt HTTP/1.1\r\nHost: vs\r\n\r\nGET /big.img HTTP/1.1\r\nHost: vs\r\nRange: bytes=5-9\r\n\r\n"), uint8(7), uint16(100))
	f.Add([]byte("GET /docs HTTP/1.0\r\n\r\n"), uint8(1), uint16(3))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: vs\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\nHost: vs\r\n\r\n"), uint8(5), uint16(64))
	f.Add([]byte("PUT /up/a.txt HTTP/1.1\r\nHost: vs\r\nContent-Length: 5\r\n\r\nhelloGET /up/a.txt HTTP/1.1\r\nHost: vs\r\n\r\n"), uint8(3), uint16(50))
	f.Add([]byte("PUT /up/b HTTP/1.1\r\nHost: vs\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\nabcPUT /hello.txt HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"), uint8(9), uint16(10))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, space uint16) {
		fs := memfs.New()
		fs.Add("hello.txt", []byte("hello"), modTime)
		fs.Add("docs/x.txt", []byte("x"), modTime)
		fs.AddSynthetic("big.img", 1<<16, 3, modTime)
		fs.Mkdir("up", modTime)
		cfg := Config{MaxBuffered: 4096, MaxHeaderBytes: 1024, MaxURIBytes: 256, UploadPrefix: "/up", MaxUploadBytes: 1 << 16}
		files := memfs.Writable{FS: fs}
		svc := New(cfg, files)
		fn := newFakeNet(int(space))
		_ = svc.Start(fn)
		id := fn.connect(t, svc, 0)
		step := int(chunk%64) + 1
		for i := 0; i < len(data); i += step {
			fn.send(svc, id, string(data[i:min(i+step, len(data))]), int64(i))
			if c := svc.conns[id]; c != nil && len(c.in) > 4096 {
				t.Fatalf("buffered %d bytes", len(c.in))
			}
			if i%3 == 0 {
				snapBytes := svc.Snapshot()
				svc2 := New(cfg, files)
				if err := svc2.Restore(snapBytes); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(svc2.Snapshot(), snapBytes) {
					t.Fatal("restore changed the snapshot")
				}
				svc = svc2
			}
		}
		fn.Socks[id].EOF = true
		svc.Handle(fn, sockapi.Event{Kind: sockapi.EvReadable, Sock: id, Listener: 1}, 1)
		out := fn.drainWithSpace(svc, id, 1<<16)
		if len(out) > 0 && !bytes.HasPrefix(out, []byte("HTTP/1.1 ")) {
			t.Fatalf("reply does not start with a status line: %q", out[:min(len(out), 40)])
		}
		if svc.Conns() != 0 {
			t.Fatal("connection still open after the client's EOF and a full drain")
		}
	})
}

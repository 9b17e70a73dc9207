package machine_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"flag"
	"io"
	nethttp "net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
)

var update = flag.Bool("update", false, "re-record testdata/machine/*.log from the live sessions")

type wantResp struct {
	method string
	status int
	body   string
}

func synth(seed uint64, off, n int64) string {
	b := make([]byte, n)
	memfs.Fill(b, seed, off)
	return string(b)
}

func checkResponses(t *testing.T, name string, raw []byte, want []wantResp) {
	t.Helper()
	br := bufio.NewReader(bytes.NewReader(raw))
	for i, w := range want {
		r, err := nethttp.ReadResponse(br, &nethttp.Request{Method: w.method})
		if err != nil {
			t.Fatalf("%s: response %d: %v", name, i, err)
		}
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Fatalf("%s: response %d body: %v", name, i, err)
		}
		if r.StatusCode != w.status || (w.body != "" && string(b) != w.body) {
			t.Fatalf("%s: response %d: status %d, %d body bytes (want %d, %d)", name, i, r.StatusCode, len(b), w.status, len(w.body))
		}
	}
	if rest, _ := io.ReadAll(br); len(rest) != 0 {
		t.Fatalf("%s: %d bytes after the expected responses", name, len(rest))
	}
}

// httpScenario runs a mix of real HTTP traffic through the machine and
// returns the world (with its recorded input log).
func httpScenario(t *testing.T, cfg machine.Config, shadows int, delay int64, dropOut func(int) bool) *world {
	w := newWorld(t, cfg, shadows)
	w.dropOut = dropOut
	w.delay = delay
	w.hashEvery = 97
	pipelined := w.dial("GET /index.html HTTP/1.1\r\nHost: vs\r\n\r\n" +
		"GET /docs/ HTTP/1.1\r\nHost: vs\r\n\r\n" +
		"GET /missing HTTP/1.1\r\nHost: vs\r\n\r\n" +
		"GET /mid.bin HTTP/1.1\r\nHost: vs\r\nRange: bytes=100-199\r\n\r\n" +
		"HEAD /big.bin HTTP/1.1\r\nHost: vs\r\n\r\n" +
		"GET /big.bin HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n")
	var parallel []*client
	for i := 0; i < 4; i++ {
		parallel = append(parallel, w.dial("GET /mid.bin HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n"))
	}
	old := w.dial("GET /docs/readme.txt HTTP/1.0\r\n\r\n")
	bad := w.dial("GET /x HTTP/3.0\r\nHost: vs\r\n\r\n")
	w.run(w.allDone, 120e9)

	checkResponses(t, "pipelined", pipelined.resp, []wantResp{
		{"GET", 200, "<h1>ftvs</h1>\n"}, {"GET", 200, ""}, {"GET", 404, "404 Not Found\n"},
		{"GET", 206, synth(12, 100, 100)}, {"HEAD", 200, ""}, {"GET", 200, synth(11, 0, 3<<20)},
	})
	for _, c := range parallel {
		checkResponses(t, "parallel", c.resp, []wantResp{{"GET", 200, synth(12, 0, 200<<10)}})
	}
	checkResponses(t, "HTTP/1.0", old.resp, []wantResp{{"GET", 200, "read me\n"}})
	checkResponses(t, "HTTP/3.0", bad.resp, []wantResp{{"GET", 505, ""}})
	for _, c := range w.clients {
		if c.reset {
			t.Fatalf("a client connection was reset; machine counters %+v", w.m.Counters())
		}
	}
	// Let TIME-WAIT and idle timers run out so the log covers them.
	w.now += 200e9
	w.run(func() bool { return w.m.NextDeadline() == 0 || w.m.NextDeadline() > w.now }, 1)
	return w
}

func recordLog(t *testing.T, w *world, cfg machine.Config, name string) {
	if !*update {
		return
	}
	path := filepath.Join("..", "..", "testdata", "machine", name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	lw := inputlog.NewWriter(f, cfg)
	lw.File("index.html", modTime, []byte("<h1>ftvs</h1>\n"))
	lw.File("docs/readme.txt", modTime, []byte("read me\n"))
	lw.Synthetic("big.bin", modTime, 3<<20, 11)
	lw.Synthetic("mid.bin", modTime, 200<<10, 12)
	for _, in := range w.log {
		lw.Input(in)
	}
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d inputs to %s", len(w.log), path)
}

// Real HTTP sessions through the machine, with two shadow replicas fed the
// same inputs: outputs must agree at every step, state hashes regularly.
func TestHTTPSession(t *testing.T) {
	cfg := vsConfig(0)
	w := httpScenario(t, cfg, 2, 0, nil)
	if c := w.m.Counters(); c.HTTP.Requests != 12 || c.Stack.TCPRetransSegs != 0 || c.Machine.FramesIn < 500 {
		t.Fatalf("counters: %+v", c)
	}
	for _, sh := range w.shadows {
		if sh.StateHash() != w.m.StateHash() {
			t.Fatal("final state hashes differ")
		}
	}
	recordLog(t, w, cfg, "http-session.log")
}

// The same traffic with TSO super-segments and every 23rd frame from the
// machine lost: retransmission timers fire in virtual time, every byte still
// arrives, and the replicas still agree.
func TestHTTPSessionLossTSO(t *testing.T) {
	cfg := vsConfig(32 << 10)
	w := httpScenario(t, cfg, 1, 0, func(n int) bool { return n%23 == 0 })
	if c := w.m.Counters(); c.Stack.TCPRetransSegs == 0 {
		t.Fatalf("no retransmissions despite loss: %+v", c.Stack)
	}
	recordLog(t, w, cfg, "http-loss-tso.log")
}

// The traffic over a wire with 2 ms one-way latency: ACK clocking, delayed
// ACKs and congestion-window growth all run on timer ticks.
func TestHTTPSessionLatency(t *testing.T) {
	cfg := vsConfig(0)
	w := httpScenario(t, cfg, 1, 2e6, nil)
	if c := w.m.Counters(); c.Machine.FramesIn < 500 || c.Stack.TCPRetransSegs != 0 {
		t.Fatalf("counters %+v %+v", c.Machine, c.Stack)
	}
	recordLog(t, w, cfg, "http-latency.log")
}

// A snapshot taken mid-download, restored into a brand-new machine, carries
// on the download byte-exact; the shadow replica (never restored) agrees with
// the restored machine to the end.
func TestSnapshotMidDownload(t *testing.T) {
	cfg := vsConfig(0)
	w := newWorld(t, cfg, 1)
	w.hashEvery = 13
	h := sha256.New()
	c := w.dial("GET /big.bin HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n")
	var head []byte
	inBody := false
	c.sink = func(p []byte) {
		if !inBody {
			head = append(head, p...)
			i := bytes.Index(head, []byte("\r\n\r\n"))
			if i < 0 {
				return
			}
			p, inBody = head[i+4:], true
		}
		h.Write(p)
	}
	restored := 0
	w.onStep = func(w *world) {
		if c.nbytes < int64(restored+1)<<20 || restored >= 2 {
			return
		}
		restored++
		before := w.m.StateHash()
		b := w.m.Snapshot()
		fresh, err := machine.New(cfg, testFiles())
		if err != nil {
			t.Fatal(err)
		}
		if err := fresh.Restore(b); err != nil {
			t.Fatal(err)
		}
		if fresh.StateHash() != before {
			t.Fatal("restored machine has a different state hash")
		}
		w.m = fresh
	}
	w.run(w.allDone, 60e9)
	if restored != 2 {
		t.Fatalf("restored %d times", restored)
	}
	want := sha256.Sum256([]byte(synth(11, 0, 3<<20)))
	if !bytes.Equal(h.Sum(nil), want[:]) || !strings.Contains(string(head), "Content-Length: 3145728\r\n") {
		t.Fatal("download after restore differs from the file")
	}
	if c.reset {
		t.Fatal("connection reset")
	}
}

// A 1 GiB file streams through the whole machine (stack and HTTP service,
// TSO super-segments) without the machine's memory growing with the file.
func TestMachineStreams1GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 1 GiB")
	}
	cfg := vsConfig(65535 - 100)
	cfg.SendBuf, cfg.RecvBuf = 4<<20, 1<<20
	w := newWorld(t, cfg, 0)
	const size = 1 << 30
	files := testFiles()
	files.AddSynthetic("huge.bin", size, 99, modTime)
	m, err := machine.New(cfg, files)
	if err != nil {
		t.Fatal(err)
	}
	w.m = m
	w.noLog = true
	got := int64(0)
	h := sha256.New()
	var head []byte
	inBody := false
	c := w.dial("GET /huge.bin HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n")
	c.sink = func(p []byte) {
		if !inBody {
			head = append(head, p...)
			i := bytes.Index(head, []byte("\r\n\r\n"))
			if i < 0 {
				return
			}
			p, inBody = head[i+4:], true
		}
		got += int64(len(p))
		h.Write(p)
	}
	// The live heap (after a forced GC) in mid-stream must not grow with
	// the file: it holds the stacks' buffers, never the file.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapAlloc)
	var grown int64
	w.onStep = func(w *world) {
		if w.steps == 100000 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			grown = int64(ms.HeapAlloc) - base
		}
	}
	w.run(w.allDone, 600e9)
	if got != size || c.reset {
		t.Fatalf("got %d of %d bytes (reset %v)", got, size, c.reset)
	}
	want := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		memfs.Fill(buf, 99, off)
		want.Write(buf)
	}
	if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
		t.Fatal("1 GiB download differs from the file")
	}
	if grown > 48<<20 {
		t.Fatalf("live heap grew by %d MiB in mid-stream", grown>>20)
	}
	t.Logf("1 GiB in %d machine steps, live heap growth %d MiB", w.steps, grown>>20)
}

// With the poll/dispatch rounds of a Step bounded to one, work left over
// carries to the next Step (the machine asks for an immediate tick) and the
// sessions still complete.
func TestBoundedRoundsCarryOver(t *testing.T) {
	cfg := vsConfig(0)
	cfg.MaxRounds = 1
	w := httpScenario(t, cfg, 1, 1e6, nil)
	if c := w.m.Counters(); c.Machine.RoundsExhausted == 0 {
		t.Fatalf("MaxRounds 1 was never hit: %+v", c.Machine)
	}
	// A Step that hits the bound asks for a tick at once.
	hit := false
	m2, err := machine.New(cfg, testFiles())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range w.log {
		before := m2.Counters().Machine.RoundsExhausted
		m2.Step(in)
		if m2.Counters().Machine.RoundsExhausted > before {
			hit = true
			if m2.NextDeadline() != m2.Now() {
				t.Fatalf("after an exhausted step the deadline is %d, not now (%d)", m2.NextDeadline(), m2.Now())
			}
		}
	}
	if !hit {
		t.Fatal("replay never hit the bound")
	}
}

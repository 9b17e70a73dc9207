//go:build linux

package interop

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ftvs/ftvs/ftvs/netstack"
	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/snap"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

var (
	stackIP  = [4]byte{10, 77, 0, 1}
	peerIP   = "10.77.0.2"
	stackMAC = [6]byte{0x02, 0xf7, 0x00, 0x00, 0x00, 0x01}
)

// env is one namespace with a TAP device whose other end is a Stack.
type env struct {
	t    testing.TB
	ns   string
	tap  string
	fd   int
	vnet bool
	st   *netstack.Stack
	svc  *testService

	dropPct    float64 // loss applied to frames the stack sends
	reorderPct float64 // frames (both ways) held back and passed after the next one
	stop       atomic.Bool
	done       chan struct{}
	mu         sync.Mutex // guards counters snapshot
	counters   netstack.Counters
	framesTx   atomic.Uint64
	framesRx   atomic.Uint64

	record bool
	log    []logEntry // every call into the stack, when record is set
	outSum [32]byte   // hash of every frame the stack emitted, when record is set
}

// logEntry is one call into the stack: an input frame ('i'), a Poll ('p'),
// or a DrainEvents handing events to the service ('e').
type logEntry struct {
	kind  byte
	now   int64
	frame []byte
}

func need(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces and TAP devices")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs f on an OS thread switched into the namespace.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		nsf, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer nsf.Close()
		if err := unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

var envSeq atomic.Int32

func newEnv(t testing.TB, vnet bool, cfg netstack.Config, opts ...func(*env)) *env {
	t.Helper()
	n := envSeq.Add(1)
	e := &env{t: t, vnet: vnet, done: make(chan struct{}),
		ns:  fmt.Sprintf("fn2-%d-%d", os.Getpid()%100000, n),
		tap: fmt.Sprintf("fn2t%d", n)}
	run(t, "ip", "netns", "add", e.ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", e.ns).Run() })
	err := inNS(e.ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(e.tap)
		if err != nil {
			return err
		}
		flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
		if vnet {
			flags |= unix.IFF_VNET_HDR
		}
		ifr.SetUint16(flags)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return fmt.Errorf("TUNSETIFF: %w", err)
		}
		if vnet {
			if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4); err != nil {
				unix.Close(fd)
				return fmt.Errorf("TUNSETOFFLOAD: %w", err)
			}
		}
		e.fd = fd
		return unix.SetNonblock(fd, true)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(e.fd) })
	run(t, "ip", "-n", e.ns, "link", "set", "lo", "up")
	run(t, "ip", "-n", e.ns, "addr", "add", peerIP+"/24", "dev", e.tap)
	run(t, "ip", "-n", e.ns, "link", "set", e.tap, "up")
	cfg.MAC, cfg.IP, cfg.PrefixLen = stackMAC, stackIP, 24
	cfg.ISNKey = [16]byte{0xf7, 1, 2, 3}
	st, err := netstack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.st = st
	e.svc = newTestService(st)
	if err := e.svc.start(); err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		o(e) // before the loop starts: it owns e from then on
	}
	go e.loop()
	t.Cleanup(e.close)
	return e
}

func (e *env) close() {
	if e.stop.Swap(true) {
		return
	}
	<-e.done
}

const vnetHdrLen = 10

// loop is the test's shell: TAP frames in, stack frames out, virtual time = monotonic time.
func (e *env) loop() {
	defer close(e.done)
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) + 1 }
	buf := make([]byte, 70000)
	rng := rand.New(rand.NewSource(7))
	var hdr [vnetHdrLen]byte
	var outH hash.Hash = sha256.New()
	var heldOut, heldIn []byte
	var heldGSO uint16
	var writeFrame func(f []byte, gso uint16)
	input := func(f []byte) {
		e.framesRx.Add(1)
		t := now()
		if e.record {
			e.log = append(e.log, logEntry{kind: 'i', now: t, frame: append([]byte(nil), f...)})
		}
		e.st.Input(f, t)
	}
	poll := func() {
		t := now()
		if e.record {
			e.log = append(e.log, logEntry{kind: 'p', now: t})
		}
		e.st.Poll(t)
	}
	flush := func() {
		if e.record {
			e.log = append(e.log, logEntry{kind: 'e'})
		}
		e.st.DrainEvents(func(ev sockapi.Event) { e.svc.handle(ev) })
		poll()
		e.st.DrainFrames(func(f []byte, gso uint16) {
			if e.record {
				outH.Write(f)
			}
			if e.dropPct > 0 && rng.Float64()*100 < e.dropPct {
				return
			}
			if e.reorderPct > 0 && heldOut == nil && rng.Float64()*100 < e.reorderPct {
				heldOut = append([]byte(nil), f...)
				heldGSO = gso
				return
			}
			defer func() {
				if heldOut != nil {
					h := heldOut
					heldOut = nil
					writeFrame(h, heldGSO)
				}
			}()
			writeFrame(f, gso)
			e.st.Recycle(f)
		})
		if heldOut != nil { // reorder within a burst, never delay past it
			writeFrame(heldOut, heldGSO)
			heldOut = nil
		}
		e.mu.Lock()
		e.counters = e.st.Counters()
		e.mu.Unlock()
	}
	writeFrame = func(f []byte, gso uint16) {
		{
			e.framesTx.Add(1)
			if !e.vnet {
				unix.Write(e.fd, f)
				return
			}
			hdr = [vnetHdrLen]byte{}
			if len(f) >= 34 && binary.BigEndian.Uint16(f[12:14]) == wire.EtherTypeIPv4 && f[23] == wire.ProtoTCP {
				hdr[0] = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
				ihl := int(f[14]&0xf) * 4
				binary.LittleEndian.PutUint16(hdr[6:], uint16(14+ihl))
				binary.LittleEndian.PutUint16(hdr[8:], 16)
				if gso != 0 {
					hdr[1] = 1 // VIRTIO_NET_HDR_GSO_TCPV4
					thl := int(f[14+ihl+12]>>4) * 4
					binary.LittleEndian.PutUint16(hdr[2:], uint16(14+ihl+thl))
					binary.LittleEndian.PutUint16(hdr[4:], gso)
				}
			}
			unix.Writev(e.fd, [][]byte{hdr[:], f})
		}
	}
	for !e.stop.Load() {
		timeout := 20
		if d := e.st.NextDeadline(); d != 0 {
			ms := int((d - now()) / 1e6)
			if ms < timeout {
				timeout = max(ms, 0)
			}
		}
		pfd := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN}}
		unix.Poll(pfd, timeout)
		for i := 0; i < 256; i++ {
			n, err := unix.Read(e.fd, buf)
			if err != nil || n <= 0 {
				break
			}
			f := buf[:n]
			if e.vnet {
				if n < vnetHdrLen {
					continue
				}
				h := f[:vnetHdrLen]
				f = f[vnetHdrLen:]
				if h[0]&1 != 0 { // NEEDS_CSUM: complete it as a NIC would
					cs := int(binary.LittleEndian.Uint16(h[6:]))
					co := int(binary.LittleEndian.Uint16(h[8:]))
					if cs+co+2 <= len(f) {
						sum := ^wire.Fold(wire.Sum(f[cs:], 0))
						binary.BigEndian.PutUint16(f[cs+co:], sum)
					}
				}
			}
			if e.reorderPct > 0 && heldIn == nil && rng.Float64()*100 < e.reorderPct {
				heldIn = append([]byte(nil), f...)
				continue
			}
			input(f)
			if heldIn != nil {
				input(heldIn)
				heldIn = nil
			}
			poll()
			flush()
		}
		if heldIn != nil {
			input(heldIn)
			heldIn = nil
		}
		poll()
		flush()
	}
	copy(e.outSum[:], outH.Sum(nil))
}

func (e *env) snapshotCounters() netstack.Counters {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.counters
}

// dial connects from inside the namespace with Go's net package.
func (e *env) dial(port int) (net.Conn, error) {
	var c net.Conn
	err := inNS(e.ns, func() error {
		var err error
		c, err = net.DialTimeout("tcp", fmt.Sprintf("%d.%d.%d.%d:%d", stackIP[0], stackIP[1], stackIP[2], stackIP[3], port), 5*time.Second)
		return err
	})
	return c, err
}

func stackAddr() string {
	return fmt.Sprintf("%d.%d.%d.%d", stackIP[0], stackIP[1], stackIP[2], stackIP[3])
}

// blastByte is the content of the HTTP blast service at offset i.
var blastBlock = func() []byte {
	b := make([]byte, 1<<16)
	rand.New(rand.NewSource(42)).Read(b)
	return b
}()

func blastSHA(n int64) [32]byte {
	h := sha256.New()
	for n > 0 {
		k := min(n, int64(len(blastBlock)))
		h.Write(blastBlock[:k])
		n -= k
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func TestPingARP(t *testing.T) {
	need(t, "ip", "ping")
	e := newEnv(t, false, netstack.Config{})
	out := run(t, "ip", "netns", "exec", e.ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", stackAddr())
	if !strings.Contains(out, "3 received") {
		t.Fatalf("ping: %s", out)
	}
	if c := e.snapshotCounters(); c.ICMPEchoReplies < 3 || c.ARPReplies < 1 {
		t.Fatalf("counters: echo replies %d, arp replies %d", c.ICMPEchoReplies, c.ARPReplies)
	}
}

func TestEchoNetcat(t *testing.T) {
	need(t, "ip", "nc")
	e := newEnv(t, false, netstack.Config{})
	cmd := exec.Command("ip", "netns", "exec", e.ns, "nc", "-N", "-w", "5", stackAddr(), "7")
	cmd.Stdin = strings.NewReader("hello from linux\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nc: %v: %s", err, out)
	}
	if string(out) != "hello from linux\n" {
		t.Fatalf("echo returned %q", out)
	}
}

func testEchoGo(t *testing.T, vnet bool) {
	need(t, "ip")
	e := newEnv(t, vnet, netstack.Config{TSOMax: tsoIf(vnet), ChecksumOffload: vnet})
	c, err := e.dial(7)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 8<<20)
	rand.New(rand.NewSource(1)).Read(data)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read back: %v (got %d bytes)", err, len(got))
	}
	if werr := <-errc; werr != nil {
		t.Fatal(werr)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo mismatch: got %d bytes, want %d", len(got), len(data))
	}
}

func tsoIf(on bool) int {
	if on {
		return 65000
	}
	return 0
}

func TestEchoGoNet(t *testing.T)        { testEchoGo(t, false) }
func TestEchoGoNetOffload(t *testing.T) { testEchoGo(t, true) }

func testCurlReorder(t *testing.T) {
	need(t, "ip", "curl")
	e := newEnv(t, false, netstack.Config{}, func(e *env) { e.dropPct, e.reorderPct = 1, 5 })
	curlCheck(t, e, 32<<20)
}

func testCurl(t *testing.T, vnet bool, size int64, lossPct float64, netem ...string) {
	need(t, "ip", "curl")
	e := newEnv(t, vnet, netstack.Config{TSOMax: tsoIf(vnet), ChecksumOffload: vnet}, func(e *env) { e.dropPct = lossPct })
	if len(netem) > 0 {
		need(t, "tc")
		args := append([]string{"tc", "-n", e.ns, "qdisc", "add", "dev", e.tap, "root", "netem"}, netem...)
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			if strings.Contains(string(out), "qdisc kind is unknown") {
				t.Skip("this kernel has no sch_netem (TestCurlDownloadLossReorder covers loss and reordering in the test's own loop)")
			}
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	curlCheck(t, e, size)
}

// curlCheck downloads size bytes from the blast service with curl inside the
// namespace, checks length and sha256, and logs the throughput.
func curlCheck(t *testing.T, e *env, size int64) {
	url := fmt.Sprintf("http://%s/%d", stackAddr(), size)
	cmd := exec.Command("ip", "netns", "exec", e.ns, "curl", "-sS", "--max-time", "120", "-o", "-", "-w", "", url)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, _ := io.Copy(h, stdout)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("curl: %v: %s", err, stderr.String())
	}
	el := time.Since(start)
	if n != size {
		t.Fatalf("curl got %d bytes, want %d", n, size)
	}
	want := blastSHA(size)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("sha256 mismatch")
	}
	c := e.snapshotCounters()
	t.Logf("curl %d MiB offload=%v loss=%.1f%% reorder=%.1f%%: %.0f Mbit/s (%.2fs); frames tx %d rx %d; retrans %d, fast recoveries %d, RTOs %d",
		size>>20, e.vnet, e.dropPct, e.reorderPct, float64(size)*8/el.Seconds()/1e6, el.Seconds(), e.framesTx.Load(), e.framesRx.Load(),
		c.TCPRetransSegs, c.TCPFastRecoveries, c.TCPRTOs)
}

func TestCurlDownload(t *testing.T)        { testCurl(t, false, 256<<20, 0) }
func TestCurlDownloadOffload(t *testing.T) { testCurl(t, true, 1<<30, 0) }
func TestCurlDownloadLoss(t *testing.T)    { testCurl(t, true, 64<<20, 1) }

// Loss and reordering applied by the test's own loop, both directions
// (for kernels without sch_netem).
func TestCurlDownloadLossReorder(t *testing.T) { testCurlReorder(t) }

// netem on the client side (delay, loss, reordering of requests and ACKs)
// plus 1% loss of what the stack sends.
func TestCurlDownloadNetem(t *testing.T) {
	testCurl(t, false, 16<<20, 1, "delay", "10ms", "2ms", "loss", "1%", "reorder", "10%", "50%")
}

// testService is a tiny service written against sockapi: echo on port 7 and
// an HTTP "blast" on port 80 that answers GET /N with N bytes.
type testService struct {
	sk    sockapi.Sockets
	echo  sockapi.SockID
	http  sockapi.SockID
	conns map[sockapi.SockID]*svcConn
}

type svcConn struct {
	echo    bool
	req     []byte
	pending []byte // echo bytes not yet written
	size    int64  // blast bytes to send
	sent    int64
	started bool
	header  []byte
	eof     bool
}

func newTestService(sk sockapi.Sockets) *testService {
	return &testService{sk: sk, conns: map[sockapi.SockID]*svcConn{}}
}

func (s *testService) start() error {
	var err error
	if s.echo, err = s.sk.Listen(7, 64); err != nil {
		return err
	}
	s.http, err = s.sk.Listen(80, 128)
	return err
}

func (s *testService) handle(ev sockapi.Event) {
	switch ev.Kind {
	case sockapi.EvAccept:
		for {
			id, ok := s.sk.Accept(ev.Sock)
			if !ok {
				return
			}
			s.conns[id] = &svcConn{echo: ev.Sock == s.echo}
			s.pump(id)
		}
	case sockapi.EvReadable, sockapi.EvWritable:
		s.pump(ev.Sock)
	case sockapi.EvClosed:
		delete(s.conns, ev.Sock)
	}
}

func (s *testService) pump(id sockapi.SockID) {
	c := s.conns[id]
	if c == nil {
		return
	}
	buf := make([]byte, 65536)
	if c.echo {
		for {
			if len(c.pending) > 0 {
				n, err := s.sk.Write(id, c.pending)
				if err != nil {
					s.sk.Abort(id)
					delete(s.conns, id)
					return
				}
				c.pending = c.pending[n:]
				if len(c.pending) > 0 {
					return // wait for EvWritable
				}
			}
			n, err := s.sk.Read(id, buf)
			if n > 0 {
				c.pending = append(c.pending[:0], buf[:n]...)
				continue
			}
			if errors.Is(err, sockapi.ErrEOF) {
				s.sk.Close(id)
				delete(s.conns, id)
			} else if err != nil && !errors.Is(err, sockapi.ErrWouldBlock) {
				delete(s.conns, id)
			}
			return
		}
	}
	if !c.started {
		for {
			n, err := s.sk.Read(id, buf)
			c.req = append(c.req, buf[:n]...)
			if err != nil || n == 0 {
				break
			}
		}
		i := bytes.Index(c.req, []byte("\r\n\r\n"))
		if i < 0 {
			return
		}
		line := strings.Fields(string(c.req[:bytes.IndexByte(c.req, '\r')]))
		size := int64(0)
		if len(line) >= 2 {
			size, _ = strconv.ParseInt(strings.TrimPrefix(line[1], "/"), 10, 64)
		}
		c.size = size
		c.started = true
		c.header = []byte(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", size))
	}
	for len(c.header) > 0 {
		n, _ := s.sk.Write(id, c.header)
		c.header = c.header[n:]
		if n == 0 {
			return
		}
	}
	for c.sent < c.size {
		off := c.sent % int64(len(blastBlock))
		chunk := blastBlock[off:min(int64(len(blastBlock)), off+c.size-c.sent)]
		n, err := s.sk.Write(id, chunk)
		if err != nil {
			delete(s.conns, id)
			return
		}
		c.sent += int64(n)
		if n < len(chunk) {
			return
		}
	}
	s.sk.Close(id)
	delete(s.conns, id)
}

// replay runs a recorded call log against a fresh stack and service, as the
// second CoServer would, restoring from a snapshot at entry snapAt, and
// returns the hash of every frame it emitted.
func replay(t *testing.T, cfg netstack.Config, log []logEntry, snapAt int) [32]byte {
	t.Helper()
	st, err := netstack.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	svc := newTestService(st)
	if err := svc.start(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for i, le := range log {
		if i == snapAt {
			w := snap.NewWriter(1 << 20)
			st.Snapshot(w)
			fresh, _ := netstack.New(cfg)
			if err := fresh.Restore(snap.NewReader(w.Bytes())); err != nil {
				t.Fatalf("restore at entry %d: %v", i, err)
			}
			st = fresh
			svc.sk = fresh // the service's own state carries over as is
		}
		switch le.kind {
		case 'i':
			st.Input(le.frame, le.now)
		case 'p':
			st.Poll(le.now)
		case 'e':
			st.DrainEvents(func(ev sockapi.Event) { svc.handle(ev) })
		}
		st.DrainFrames(func(f []byte, _ uint16) { h.Write(f) })
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// A real session (curl downloads, with loss) replayed from its input log on
// fresh stacks, one restored from a snapshot half-way, emits the same frames.
func TestReplayRecordedSession(t *testing.T) {
	need(t, "ip", "curl")
	cfg := netstack.Config{TSOMax: 65000, ChecksumOffload: true}
	e := newEnv(t, true, cfg, func(e *env) { e.record, e.dropPct = true, 0.5 })
	for _, size := range []int{100, 3 << 20, 1 << 20} {
		out := run(t, "ip", "netns", "exec", e.ns, "curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{size_download}",
			fmt.Sprintf("http://%s/%d", stackAddr(), size))
		if out != strconv.Itoa(size) {
			t.Fatalf("curl got %s bytes, want %d", out, size)
		}
	}
	e.close()
	if len(e.log) < 100 {
		t.Fatalf("log has only %d entries", len(e.log))
	}
	full := netstack.Config{TSOMax: 65000, ChecksumOffload: true, MAC: stackMAC, IP: stackIP, PrefixLen: 24, ISNKey: [16]byte{0xf7, 1, 2, 3}}
	if got := replay(t, full, e.log, -1); got != e.outSum {
		t.Fatal("replay emitted different frames")
	}
	if got := replay(t, full, e.log, len(e.log)/2); got != e.outSum {
		t.Fatal("replay with snapshot/restore half-way emitted different frames")
	}
	t.Logf("replayed %d calls identically", len(e.log))
}

// 50 parallel curl transfers of mixed sizes (several rounds, so TIME-WAIT
// and the accept queue fill up) all complete with the right lengths.
func TestCurlParallelMixed(t *testing.T) {
	need(t, "ip", "curl")
	e := newEnv(t, true, netstack.Config{TSOMax: 65000, ChecksumOffload: true})
	var args []string
	want := 0
	sizes := []int{0, 1, 1000, 4096, 65536, 300000, 2 << 20}
	for i := 0; i < 150; i++ {
		size := sizes[i%len(sizes)]
		want += size
		args = append(args, "-o", "/dev/null", fmt.Sprintf("http://%s/%d", stackAddr(), size))
	}
	cmd := append([]string{"ip", "netns", "exec", e.ns, "curl", "-sS", "--no-progress-meter", "--fail", "--max-time", "120",
		"--parallel", "--parallel-max", "50", "-w", "%{size_download}\n"}, args...)
	var stderr strings.Builder
	c := exec.Command(cmd[0], cmd[1:]...)
	c.Stderr = &stderr
	outb, err := c.Output()
	if err != nil {
		t.Fatalf("curl: %v: %s", err, stderr.String())
	}
	out := string(outb)
	got, n := 0, 0
	for _, l := range strings.Fields(out) {
		v, err := strconv.Atoi(l)
		if err != nil {
			t.Fatalf("curl output %q", l)
		}
		got += v
		n++
	}
	if n != 150 || got != want {
		t.Fatalf("%d transfers, %d bytes; want 150, %d", n, got, want)
	}
	ctr := e.snapshotCounters()
	t.Logf("150 transfers, 50 at a time: established %d, listen overflows %d, resets out %d", ctr.TCPEstablished, ctr.TCPListenOverflows, ctr.TCPResetsOut)
}

// capture runs tcpdump on the TAP into $FTVS_PCAP when set (a debugging
// aid: the window updates and what the stack answers).
func (e *env) capture() {
	pcap := os.Getenv("FTVS_PCAP")
	if pcap == "" {
		return
	}
	td := exec.Command("ip", "netns", "exec", e.ns, "tcpdump", "-i", e.tap, "-s", "96", "-w", pcap)
	if err := td.Start(); err != nil {
		e.t.Logf("tcpdump: %v", err)
		return
	}
	time.Sleep(500 * time.Millisecond)
	e.t.Cleanup(func() { td.Process.Signal(os.Interrupt); td.Wait() })
}

// slowCurl downloads size bytes from url with curl --limit-rate inside ns,
// checks length and sha256, and returns the longest gap between arrivals.
func slowCurl(t testing.TB, ns, url string, size int64) time.Duration {
	cmd := exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "120", "--limit-rate", "1500k", "-o", "-", url)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n int64
	var maxGap time.Duration
	last := time.Now()
	for {
		m, err := stdout.Read(buf)
		if m > 0 {
			now := time.Now()
			if n > 0 && now.Sub(last) > maxGap {
				maxGap = now.Sub(last)
			}
			last = now
			h.Write(buf[:m])
			n += int64(m)
		}
		if err != nil {
			break
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("curl: %v: %s", err, stderr.String())
	}
	if n != size {
		t.Fatalf("curl got %d bytes, want %d", n, size)
	}
	want := blastSHA(size)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("sha256 mismatch")
	}
	return maxGap
}

const slowSize = 12 << 20

// A rate-limited reader (curl --limit-rate 1500k) closes the receive window
// again and again; the download must complete intact. The longest gap
// between arrivals is logged; BenchmarkSlowReader* compare it with Linux.
// FTVS_PCAP=file captures the TAP with tcpdump (to check that every window
// reopening is answered at once).
func TestCurlSlowReader(t *testing.T) {
	need(t, "ip", "curl")
	e := newEnv(t, false, netstack.Config{})
	e.capture()
	gap := slowCurl(t, e.ns, fmt.Sprintf("http://%s/%d", stackAddr(), slowSize), slowSize)
	c := e.snapshotCounters()
	t.Logf("slow reader: longest stall %d ms; window probes %d, RTOs %d", gap.Milliseconds(), c.TCPWindowProbes, c.TCPRTOs)
}

// BenchmarkSlowReaderStack / Kernel: longest stall of curl --limit-rate 1500k
// downloading 12 MiB from the Stack (TAP) and from Linux (veth).
func BenchmarkSlowReaderStack(b *testing.B) {
	needB(b)
	e := newEnv(b, false, netstack.Config{})
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		worst = max(worst, slowCurl(b, e.ns, fmt.Sprintf("http://%s/%d", stackAddr(), slowSize), slowSize))
	}
	b.ReportMetric(float64(worst.Milliseconds()), "stall-ms")
}

func BenchmarkSlowReaderKernel(b *testing.B) {
	needB(b)
	ns, addr := kernelBlast(b)
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		worst = max(worst, slowCurl(b, ns, fmt.Sprintf("http://%s/%d", addr, slowSize), slowSize))
	}
	b.ReportMetric(float64(worst.Milliseconds()), "stall-ms")
}

// pacedRead fetches GET /size from addr (host:port) inside ns over a socket
// with a small SO_RCVBUF, reading the body 16 KiB at a time at a steady
// 1.5 MB/s so the receive window closes and reopens in small steps. It
// checks the body and returns the longest time one Read blocked: the reader
// never sleeps inside Read, so that is time the sender left a reopened
// window unused (or the window update went unanswered).
func pacedRead(t testing.TB, ns, addr string, size int64) time.Duration {
	var conn net.Conn
	err := inNS(ns, func() error {
		d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 64<<10)
			}); err != nil {
				return err
			}
			return serr
		}}
		var err error
		conn, err = d.Dial("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(120 * time.Second))
	if _, err := fmt.Fprintf(conn, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", size); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("response: %v", err)
	}
	const chunk, rate = 16 << 10, 1500e3
	h := sha256.New()
	buf := make([]byte, chunk)
	var n int64
	var worst time.Duration
	start := time.Now()
	for n < size {
		t0 := time.Now()
		m, err := io.ReadFull(resp.Body, buf[:min(int64(chunk), size-n)])
		if d := time.Since(t0); d > worst {
			worst = d
		}
		h.Write(buf[:m])
		n += int64(m)
		if err != nil {
			t.Fatalf("body after %d bytes: %v", n, err)
		}
		if ahead := time.Duration(float64(n)/rate*1e9) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	want := blastSHA(size)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("sha256 mismatch")
	}
	return worst
}

const pacedSize = 6 << 20

// A reader draining a small receive buffer at 1.5 MB/s: every window update
// must restart the transfer (checked on the wire with FTVS_PCAP; the longest
// blocked read is logged and benchmarked against Linux).
func TestPacedReader(t *testing.T) {
	need(t, "ip")
	e := newEnv(t, false, netstack.Config{})
	e.capture()
	worst := pacedRead(t, e.ns, stackAddr()+":80", pacedSize)
	c := e.snapshotCounters()
	t.Logf("paced reader: longest blocked read %.2f ms; window probes %d, RTOs %d", float64(worst)/1e6, c.TCPWindowProbes, c.TCPRTOs)
}

func BenchmarkPacedReaderStack(b *testing.B) {
	needB(b)
	e := newEnv(b, false, netstack.Config{})
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		worst = max(worst, pacedRead(b, e.ns, stackAddr()+":80", pacedSize))
	}
	b.ReportMetric(float64(worst)/1e6, "stall-ms")
}

func BenchmarkPacedReaderKernel(b *testing.B) {
	needB(b)
	ns, addr := kernelBlast(b)
	var worst time.Duration
	for i := 0; i < b.N; i++ {
		worst = max(worst, pacedRead(b, ns, addr+":80", pacedSize))
	}
	b.ReportMetric(float64(worst)/1e6, "stall-ms")
}

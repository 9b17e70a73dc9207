package mirror

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/faultdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

const (
	testData = 64 << 20
	testGran = 4 << 20
)

var (
	testUUID = [16]byte{0xf5, 'm', 'i', 'r', 'r', 'o', 'r'}
	testKey  = []byte("fm5-mirror-test-pair-key-0123456")
)

// lockedDev serialises a faultdev (plain data) for concurrent callers. The
// faultdev only checks its rules (it wraps checkOnly): lockedDev does the
// file's reads, writes and flushes itself, outside the lock, concurrently,
// as the daemon's filedev does.
type lockedDev struct {
	mu      sync.Mutex
	d       *faultdev.Dev
	file    blockdev.Device
	onFlush func() // called after a successful flush (ordering tests)
}

// checkOnly is the file under the faultdev as far as the rules go: the
// faultdev's operations only check them; lockedDev does the I/O.
type checkOnly struct{ blockdev.Device }

func (checkOnly) ReadAt(p []byte, _ int64) (int, error)  { return len(p), nil }
func (checkOnly) WriteAt(p []byte, _ int64) (int, error) { return len(p), nil }
func (checkOnly) Flush() error                           { return nil }

func (l *lockedDev) ReadAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	_, err := l.d.ReadAt(p, off) // the fault rules
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return l.file.ReadAt(p, off)
}
func (l *lockedDev) WriteAt(p []byte, off int64) (int, error) {
	l.mu.Lock()
	_, err := l.d.WriteAt(p, off) // the fault rules
	l.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return l.file.WriteAt(p, off)
}
func (l *lockedDev) Flush() error {
	l.mu.Lock()
	err := l.d.Flush() // the fault rules
	f := l.onFlush
	l.mu.Unlock()
	if err == nil {
		err = l.file.Flush()
	}
	if err == nil && f != nil {
		f()
	}
	return err
}
func (l *lockedDev) Size() int64     { return l.d.Size() }
func (l *lockedDev) SectorSize() int { return l.d.SectorSize() }
func (l *lockedDev) add(r faultdev.Rule) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d.Add(r)
}

// node is one CoServer's process in the test: its copy on a file, its
// mirror, its half of a real link session.
type node struct {
	id     uint8
	path   string
	file   *filedev.Dev
	fault  *lockedDev
	disk   *vdisk.Disk
	m      *Mirror
	cancel context.CancelFunc
	events chan Event
}

type pair struct {
	t      testing.TB
	size   int64
	raw    atomic.Int64 // bytes of rawType messages received (link benchmark)
	dir    string
	sess   [3]*link.Session
	cur    [3]atomic.Pointer[Mirror]
	hook   [3]atomic.Pointer[chan link.Delivery] // set: deliveries go there instead
	n      [3]*node
	gen    atomic.Uint64
	rate   int64
	opts   pairOpts
	pacers [3]vdisk.Pacer
}

// rawType is a link message type no mirror uses (link benchmark).
const rawType = 250

// pairOpts: data size and, for namespaces, each node's links and Net.
type pairOpts struct {
	size     int64
	links    [3][]link.LinkConfig
	nets     [3]link.Net
	chunk    int64  // resync chunk (0: 256 KiB)
	dir      string // where the copies live (default t.TempDir())
	inflight int
	fresh    bool // leave both copies as vdisk.Create made them (never synced)
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// newPair creates two fresh copies, syncs them locally (both zero; not
// with pairOpts.fresh) and starts a real authenticated link session between the two nodes over
// loopback.
func newPair(t testing.TB) *pair { return newPairWith(t, pairOpts{}) }

func newPairWith(t testing.TB, o pairOpts) *pair {
	t.Helper()
	if o.size == 0 {
		o.size = testData
	}
	if o.chunk == 0 {
		o.chunk = 256 << 10
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	p := &pair{t: t, dir: o.dir, size: o.size, opts: o}
	p.gen.Store(1000)
	l, err := vdisk.Layout(o.size, 512, testGran)
	if err != nil {
		t.Fatal(err)
	}
	var disks [3]*vdisk.Disk
	for id := uint8(1); id <= 2; id++ {
		path := filepath.Join(p.dir, map[uint8]string{1: "node1.img", 2: "node2.img"}[id])
		dev, err := filedev.Create(path, l.DeviceSize, filedev.Options{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := vdisk.Create(dev, vdisk.CreateOptions{UUID: testUUID, Node: id, DataSize: o.size, Granularity: testGran})
		if err != nil {
			t.Fatal(err)
		}
		disks[id] = d
		defer dev.Close()
	}
	if o.fresh {
		// both copies new: the runtime's initial sync is under test
	} else if _, _, err := vdisk.SyncCopies(context.Background(), disks[1], disks[2], vdisk.SyncOptions{NewGen: p.newGen, SkipEqual: true, Offline: true}); err != nil {
		t.Fatalf("initial sync: %v", err)
	}
	var lc []link.LinkConfig
	if o.links[1] == nil {
		port := freePort(t)
		lc = []link.LinkConfig{{Local: "127.0.0.1", Peer: "127.0.0.1", Port: port}}
	}
	for id := 2; id >= 1; id-- {
		links := lc
		if links == nil {
			links = o.links[id]
		}
		c := link.Config{Node: id, Key: testKey, Links: links, Net: o.nets[id], MaxUnacked: 256 << 20, Heartbeat: 20 * time.Millisecond,
			LinkTimeout: 2 * time.Second, PeerTimeout: 3 * time.Second, Reconnect: 30 * time.Millisecond,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		s, err := link.Start(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		p.sess[id] = s
		go func() {
			for d := range s.Incoming() {
				if d.Event == nil && d.Type == rawType {
					p.raw.Add(int64(len(d.Payload)))
					continue
				}
				if h := p.hook[id].Load(); h != nil {
					*h <- d
					continue
				}
				if m := p.cur[id].Load(); m != nil {
					m.Handle(d)
				}
			}
		}()
	}
	p.start(1)
	p.start(2)
	return p
}

func (p *pair) newGen() uint64 { return p.gen.Add(7919) }

// start opens (or reopens, after a simulated crash) node id's copy and
// mirror: only what is on disk survives.
func (p *pair) start(id uint8) *node {
	t := p.t
	t.Helper()
	path := filepath.Join(p.dir, map[uint8]string{1: "node1.img", 2: "node2.img"}[id])
	f, err := filedev.Open(path, filedev.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	fd := &lockedDev{d: faultdev.New(checkOnly{f}), file: f}
	d, err := vdisk.Open(fd)
	if err != nil {
		t.Fatalf("open node %d: %v", id, err)
	}
	n := &node{id: id, path: path, file: f, fault: fd, disk: d, events: make(chan Event, 64)}
	m, err := New(Config{Disk: d, Link: p.sess[id], NewGen: p.newGen, CallTimeout: 5 * time.Second,
		OnEvent: func(e Event) {
			select {
			case n.events <- e:
			default:
			}
		},
		ResyncPacer: p.pacers[id], ResyncRate: p.rate, ResyncChunk: p.opts.chunk, ResyncInFlight: p.opts.inflight})
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	t.Cleanup(cancel)
	go m.Run(ctx, false)
	p.cur[id].Store(m)
	p.n[id] = n
	return n
}

// crash stops node id without any clean close.
func (p *pair) crash(id uint8) {
	n := p.n[id]
	p.cur[id].Store(nil)
	n.cancel()
	n.file.Close()
	p.n[id] = nil
}

// reconnect is "peer back": both sides Connect, the source finishes.
func (p *pair) reconnect(ctx context.Context) (vdisk.Decision, error) {
	p.t.Helper()
	var wg sync.WaitGroup
	var decs [3]vdisk.Decision
	var errs [3]error
	for id := uint8(1); id <= 2; id++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			decs[id], errs[id] = p.n[id].m.Connect(ctx)
		}()
	}
	wg.Wait()
	for id := 1; id <= 2; id++ {
		if errs[id] != nil {
			return decs[id], errs[id]
		}
	}
	src := decs[1].Source
	if src != 0 {
		if err := p.n[src].m.FinishResync(ctx); err != nil {
			return decs[1], err
		}
	}
	return decs[1], nil
}

func (p *pair) dataOf(id uint8) []byte {
	p.t.Helper()
	path := filepath.Join(p.dir, map[uint8]string{1: "node1.img", 2: "node2.img"}[id])
	b, err := os.ReadFile(path)
	if err != nil {
		p.t.Fatal(err)
	}
	l, _ := vdisk.Layout(p.size, 512, testGran)
	return b[l.DataOffset : l.DataOffset+p.size]
}

func (p *pair) assertIdentical() {
	p.t.Helper()
	a, b := p.dataOf(1), p.dataOf(2)
	if !bytes.Equal(a, b) {
		for i := 0; i < len(a); i += 4096 {
			if !bytes.Equal(a[i:i+4096], b[i:i+4096]) {
				p.t.Fatalf("copies differ, first at data offset %d (sha %x vs %x)", i, sha256.Sum256(a), sha256.Sum256(b))
			}
		}
	}
}

func waitEvent(t testing.TB, n *node, k EventKind) Event {
	t.Helper()
	tm := time.After(20 * time.Second)
	for {
		select {
		case e := <-n.events:
			if e.Kind == k {
				return e
			}
		case <-tm:
			t.Fatalf("node %d: no %v event", n.id, k)
		}
	}
}

// pattern is a unique 4 KiB block for write number seq at off.
func pattern(seq uint64, off int64) []byte {
	b := make([]byte, 4096)
	r := rand.New(rand.NewPCG(seq, uint64(off)))
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func writeBlock(t testing.TB, dev blockdev.Device, seq uint64, off int64) []byte {
	t.Helper()
	b := pattern(seq, off)
	if _, err := dev.WriteAt(b, off); err != nil {
		t.Fatalf("write %d at %d: %v", seq, off, err)
	}
	return b
}

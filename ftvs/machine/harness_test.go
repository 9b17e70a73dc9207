package machine_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
	"github.com/ftvs/ftvs/ftvs/netstack"
	"github.com/ftvs/ftvs/ftvs/netstack/wire"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

var (
	vsMAC  = [6]byte{0x02, 0xf7, 0x00, 0x00, 0x00, 0x02}
	vsIP   = [4]byte{10, 77, 0, 2}
	cliMAC = [6]byte{0x02, 0xf7, 0x00, 0x00, 0x00, 0x01}
	cliIP  = [4]byte{10, 77, 0, 1}
)

const modTime = 1700000000

func vsConfig(tso int) machine.Config {
	cfg := machine.Config{
		MAC: vsMAC, IP: vsIP, PrefixLen: 24, ISNKey: [16]byte{0xf7, 1, 2, 3},
		TSOMax: tso, SendBuf: 256 << 10, RecvBuf: 64 << 10,
	}
	cfg.HTTP.Enabled = true
	return cfg
}

// testFiles is the store every session serves; inputlog records it the same way.
func testFiles() *memfs.FS {
	fs := memfs.New()
	fs.Add("index.html", []byte("<h1>ftvs</h1>\n"), modTime)
	fs.Add("docs/readme.txt", []byte("read me\n"), modTime)
	fs.AddSynthetic("big.bin", 3<<20, 11, modTime)
	fs.AddSynthetic("mid.bin", 200<<10, 12, modTime)
	fs.AddSynthetic("big64.bin", 64<<20, 13, modTime)
	return fs
}

// client is one HTTP client connection on the client stack.
type client struct {
	sock   sockapi.SockID
	req    []byte
	sent   int
	resp   []byte
	done   bool
	reset  bool
	sink   func([]byte) // when set, response bytes go here, not resp
	nbytes int64
}

// world is a machine (plus shadow replicas fed the same inputs) and a client
// stack on a virtual wire, with virtual time.
type world struct {
	t       *testing.T
	m       *machine.Machine
	shadows []*machine.Machine
	cli     *netstack.Stack
	now     int64
	seq     uint64
	log     []machine.Input
	clients map[sockapi.SockID]*client
	// dropOut drops the n-th frame from the machine when it returns true.
	dropOut func(n int) bool
	nOut    int
	steps   int
	// hashEvery compares state hashes with the shadows every n steps (0: never).
	hashEvery int
	// onStep runs after each machine step (snapshot/restore tests hook here).
	onStep func(w *world)
	// noLog: do not keep the inputs (long sessions).
	noLog bool
	// stepHook replaces the machine's Step call (benchmarks time it).
	stepHook func(machine.Input) []machine.Output
	// delay is the one-way wire latency; frames in flight wait in the queues.
	delay       int64
	toCliQueue  []flight
	toMachQueue []flight
}

type flight struct {
	at int64
	f  []byte
}

func newWorld(t *testing.T, cfg machine.Config, shadows int) *world {
	t.Helper()
	m, err := machine.New(cfg, testFiles())
	if err != nil {
		t.Fatal(err)
	}
	cli, err := netstack.New(netstack.Config{MAC: cliMAC, IP: cliIP, PrefixLen: 24, ISNKey: [16]byte{9}})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, m: m, cli: cli, now: 1_000_000_000, clients: map[sockapi.SockID]*client{}}
	for i := 0; i < shadows; i++ {
		sh, err := machine.New(cfg, testFiles())
		if err != nil {
			t.Fatal(err)
		}
		w.shadows = append(w.shadows, sh)
	}
	return w
}

// stepM applies one input to the machine and its shadows and returns the
// machine's outputs, failing on any divergence.
func (w *world) stepM(kind machine.InputKind, payload []byte) []machine.Output {
	w.seq++
	in := machine.Input{Seq: w.seq, Now: w.now, Kind: kind, Payload: payload}
	if !w.noLog {
		w.log = append(w.log, in)
	}
	var out []machine.Output
	if w.stepHook != nil {
		out = w.stepHook(in)
	} else {
		out = w.m.Step(in)
	}
	w.steps++
	for i, sh := range w.shadows {
		if err := sameOutputs(out, sh.Step(in)); err != nil {
			w.t.Fatalf("step %d: shadow %d diverged: %v", w.seq, i, err)
		}
		if w.hashEvery > 0 && w.steps%w.hashEvery == 0 && sh.StateHash() != w.m.StateHash() {
			w.t.Fatalf("step %d: shadow %d state hash differs", w.seq, i)
		}
	}
	if w.onStep != nil {
		w.onStep(w)
	}
	return out
}

func sameOutputs(a, b []machine.Output) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d outputs vs %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Seq != b[i].Seq || a[i].Kind != b[i].Kind || a[i].GSO != b[i].GSO || !bytes.Equal(a[i].Payload, b[i].Payload) {
			return fmt.Errorf("output %d differs", i)
		}
	}
	return nil
}

// toClient delivers the machine's frames to the client stack.
func (w *world) toClient(out []machine.Output) {
	for _, o := range out {
		if o.Kind != machine.OutFrame {
			continue
		}
		for _, f := range cutGSO(w.t, o.Payload, o.GSO) {
			w.nOut++
			if w.dropOut != nil && w.dropOut(w.nOut) {
				continue
			}
			if w.delay > 0 {
				w.toCliQueue = append(w.toCliQueue, flight{w.now + w.delay, f})
				continue
			}
			w.cli.Input(f, w.now)
			w.cli.Poll(w.now)
		}
	}
}

// settle moves frames both ways until the wire is quiet at the current time.
func (w *world) settle() {
	for round := 0; round < 1_000_000; round++ {
		for len(w.toCliQueue) > 0 && w.toCliQueue[0].at <= w.now {
			w.cli.Input(w.toCliQueue[0].f, w.now)
			w.cli.Poll(w.now) // per-frame ACK decisions, as with no GRO
			w.toCliQueue = w.toCliQueue[1:]
		}
		w.cli.Poll(w.now)
		w.cli.DrainEvents(w.clientEvent)
		w.cli.Poll(w.now)
		var frames [][]byte
		w.cli.DrainFrames(func(f []byte, gso uint16) { frames = append(frames, cutGSO(w.t, f, gso)...) })
		for _, f := range frames {
			w.toMachQueue = append(w.toMachQueue, flight{w.now + w.delay, f})
		}
		moved := false
		for len(w.toMachQueue) > 0 && w.toMachQueue[0].at <= w.now {
			f := w.toMachQueue[0].f
			w.toMachQueue = w.toMachQueue[1:]
			w.toClient(w.stepM(machine.InFrame, f))
			moved = true
		}
		if !moved && (len(w.toCliQueue) == 0 || w.toCliQueue[0].at > w.now) {
			return
		}
	}
	w.t.Fatal("settle: the wire never went quiet")
}

// run advances virtual time, firing timers, until done() or limit ns pass.
func (w *world) run(done func() bool, limit int64) {
	end := w.now + limit
	for {
		w.settle()
		if done() {
			return
		}
		next := int64(0)
		ds := []int64{w.m.NextDeadline(), w.cli.NextDeadline()}
		if len(w.toCliQueue) > 0 {
			ds = append(ds, w.toCliQueue[0].at)
		}
		if len(w.toMachQueue) > 0 {
			ds = append(ds, w.toMachQueue[0].at)
		}
		for _, d := range ds {
			if d != 0 && (next == 0 || d < next) {
				next = d
			}
		}
		if next == 0 {
			w.t.Fatalf("stuck at %d ns: nothing pending and not done", w.now)
		}
		if next > end {
			w.t.Fatalf("not done after %d ms of virtual time", limit/1e6)
		}
		if next > w.now {
			w.now = next
		}
		if d := w.m.NextDeadline(); d != 0 && d <= w.now {
			w.toClient(w.stepM(machine.InTick, nil))
		}
	}
}

func (w *world) clientEvent(ev sockapi.Event) {
	c := w.clients[ev.Sock]
	if c == nil {
		return
	}
	switch ev.Kind {
	case sockapi.EvWritable:
		w.clientWrite(c)
	case sockapi.EvReadable:
		buf := make([]byte, 64<<10)
		for {
			n, err := w.cli.Read(c.sock, buf)
			if n > 0 {
				c.nbytes += int64(n)
				if c.sink != nil {
					c.sink(buf[:n])
				} else {
					c.resp = append(c.resp, buf[:n]...)
				}
			}
			if err == sockapi.ErrEOF {
				c.done = true
				_ = w.cli.Close(c.sock)
				return
			}
			if err != nil || n == 0 {
				if err != nil && err != sockapi.ErrWouldBlock {
					c.done, c.reset = true, true
				}
				break
			}
		}
		w.clientWrite(c)
	case sockapi.EvClosed:
		if !c.done {
			c.done, c.reset = true, true
		}
	}
}

func (w *world) clientWrite(c *client) {
	if c.done || c.sent == len(c.req) {
		return
	}
	n, err := w.cli.Write(c.sock, c.req[c.sent:])
	if err == nil {
		c.sent += n
	}
}

// dial opens a client connection that sends req (the last request should
// ask for Connection: close so the client sees EOF).
func (w *world) dial(req string) *client {
	w.t.Helper()
	id, err := w.cli.Dial(sockapi.Addr{IP: vsIP, Port: 80})
	if err != nil {
		w.t.Fatal(err)
	}
	c := &client{sock: id, req: []byte(req)}
	w.clients[id] = c
	return c
}

func (w *world) allDone() bool {
	for _, c := range w.clients {
		if !c.done {
			return false
		}
	}
	return true
}

// cutGSO splits a TCP/IPv4 super-segment into gso-byte segments, as the
// kernel does for a TAP with IFF_VNET_HDR.
func cutGSO(t *testing.T, f []byte, gso uint16) [][]byte {
	if gso == 0 {
		return [][]byte{f}
	}
	ipb := f[wire.EthLen:]
	ih, err := wire.ParseIPv4(ipb)
	if err != nil {
		t.Fatalf("GSO frame: %v", err)
	}
	tcp := ipb[ih.IHL:ih.TotalLen]
	th, err := wire.ParseTCP(tcp)
	if err != nil {
		t.Fatalf("GSO frame: %v", err)
	}
	hdr := wire.EthLen + ih.IHL + th.DataOff
	payload := tcp[th.DataOff:]
	var out [][]byte
	for off := 0; off < len(payload); off += int(gso) {
		n := min(int(gso), len(payload)-off)
		seg := make([]byte, hdr+n)
		copy(seg, f[:hdr])
		copy(seg[hdr:], payload[off:off+n])
		tp := seg[wire.EthLen+ih.IHL:]
		s := th.Seq + uint32(off)
		tp[4], tp[5], tp[6], tp[7] = byte(s>>24), byte(s>>16), byte(s>>8), byte(s)
		if off+n < len(payload) {
			tp[13] &^= wire.FlagFIN | wire.FlagPSH
		}
		tp[16], tp[17] = 0, 0
		cs := ^wire.Fold(wire.Sum(tp, wire.PseudoSum(ih.Src, ih.Dst, wire.ProtoTCP, len(tp))))
		tp[16], tp[17] = byte(cs>>8), byte(cs)
		ip := seg[wire.EthLen:]
		tl := len(seg) - wire.EthLen
		ip[2], ip[3] = byte(tl>>8), byte(tl)
		ip[10], ip[11] = 0, 0
		c := wire.Checksum(ip[:ih.IHL])
		ip[10], ip[11] = byte(c>>8), byte(c)
		out = append(out, seg)
	}
	return out
}

package nbd

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

func newTestService(t *testing.T, size int64) (*Service, *blockdev.Mem, *blockdev.Mem) {
	t.Helper()
	a, err := blockdev.NewMem(size, 512)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blockdev.NewMem(size, 4096)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Exports: []Export{{Name: "disk", Description: "test disk"}, {Name: "ro", ReadOnly: true}}},
		[]blockdev.Device{a, b})
	if err != nil {
		t.Fatal(err)
	}
	return svc, a, b
}

func opt(code uint32, data []byte) []byte {
	b := binary.BigEndian.AppendUint64(nil, magicOpt)
	b = binary.BigEndian.AppendUint32(b, code)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...)
}

func infoData(name string, infos ...uint16) []byte {
	d := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	d = append(d, name...)
	d = binary.BigEndian.AppendUint16(d, uint16(len(infos)))
	for _, i := range infos {
		d = binary.BigEndian.AppendUint16(d, i)
	}
	return d
}

func req(typ, flags uint16, cookie, off uint64, length uint32, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, magicRequest)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint16(b, typ)
	b = binary.BigEndian.AppendUint64(b, cookie)
	b = binary.BigEndian.AppendUint64(b, off)
	b = binary.BigEndian.AppendUint32(b, length)
	return append(b, payload...)
}

// optReplies splits option replies into (option, type, data).
type optRep struct {
	opt, typ uint32
	data     []byte
}

func parseOptReplies(t *testing.T, b []byte) []optRep {
	t.Helper()
	var out []optRep
	for len(b) > 0 {
		if len(b) < 20 || binary.BigEndian.Uint64(b) != magicRep {
			t.Fatalf("bad option reply % x", b)
		}
		l := binary.BigEndian.Uint32(b[16:])
		out = append(out, optRep{binary.BigEndian.Uint32(b[8:]), binary.BigEndian.Uint32(b[12:]), b[20 : 20+l]})
		b = b[20+l:]
	}
	return out
}

// handshake connects, checks the greeting and sends client flags.
func handshake(t *testing.T, f *fakeNet, svc *Service) sockapi.SockID {
	t.Helper()
	id := f.connect(t, svc, 1)
	g := f.drain(svc, id, 1)
	if len(g) != 18 || binary.BigEndian.Uint64(g) != magicNBD || binary.BigEndian.Uint64(g[8:]) != magicOpt ||
		binary.BigEndian.Uint16(g[16:]) != flagFixedNewstyle|flagNoZeroes {
		t.Fatalf("greeting % x", g)
	}
	f.send(svc, id, string(binary.BigEndian.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes)), 2)
	return id
}

func TestOptions(t *testing.T) {
	svc, a, _ := newTestService(t, 1<<20)
	f := newFakeNet(1 << 20)
	id := handshake(t, f, svc)

	f.send(svc, id, string(opt(optList, nil)), 3)
	reps := parseOptReplies(t, f.drain(svc, id, 3))
	if len(reps) != 3 || reps[0].typ != repServer || string(reps[0].data[4:]) != "disktest disk" ||
		string(reps[1].data[4:]) != "ro" || reps[2].typ != repAck {
		t.Fatalf("LIST replies %+v", reps)
	}
	f.send(svc, id, string(opt(optList, []byte("x"))), 3)
	if reps := parseOptReplies(t, f.drain(svc, id, 3)); len(reps) != 1 || reps[0].typ != repErrInvalid {
		t.Fatalf("LIST with data: %+v", reps)
	}
	f.send(svc, id, string(opt(8, nil)), 3) // STRUCTURED_REPLY
	if reps := parseOptReplies(t, f.drain(svc, id, 3)); len(reps) != 1 || reps[0].typ != repErrUnsup || reps[0].opt != 8 {
		t.Fatalf("STRUCTURED_REPLY: %+v", reps)
	}
	f.send(svc, id, string(opt(optInfo, infoData("nope"))), 3)
	if reps := parseOptReplies(t, f.drain(svc, id, 3)); len(reps) != 1 || reps[0].typ != repErrUnknown {
		t.Fatalf("INFO unknown: %+v", reps)
	}
	f.send(svc, id, string(opt(optInfo, []byte{0, 0, 0, 9, 'a'})), 3)
	if reps := parseOptReplies(t, f.drain(svc, id, 3)); len(reps) != 1 || reps[0].typ != repErrInvalid {
		t.Fatalf("INFO truncated: %+v", reps)
	}
	f.send(svc, id, string(opt(optInfo, infoData("ro", infoBlockSize))), 3)
	reps = parseOptReplies(t, f.drain(svc, id, 3))
	if len(reps) != 3 || reps[0].typ != repInfo || reps[1].typ != repInfo || reps[2].typ != repAck {
		t.Fatalf("INFO ro: %+v", reps)
	}
	if fl := binary.BigEndian.Uint16(reps[0].data[10:]); fl&tfReadOnly == 0 || fl&tfSendTrim != 0 || fl&tfSendFlush == 0 {
		t.Fatalf("ro export flags %#x", fl)
	}
	if binary.BigEndian.Uint16(reps[1].data) != infoBlockSize || binary.BigEndian.Uint32(reps[1].data[10:]) != MaxPayload {
		t.Fatalf("block size info % x", reps[1].data)
	}
	// GO on the default export.
	f.send(svc, id, string(opt(optGo, infoData(""))), 3)
	reps = parseOptReplies(t, f.drain(svc, id, 3))
	if len(reps) != 2 || reps[1].typ != repAck || binary.BigEndian.Uint64(reps[0].data[2:]) != uint64(a.Size()) {
		t.Fatalf("GO: %+v", reps)
	}
	want := uint16(tfHasFlags | tfSendFlush | tfSendFUA | tfSendTrim | tfWriteZeroes | tfCanMultiConn)
	if fl := binary.BigEndian.Uint16(reps[0].data[10:]); fl != want {
		t.Fatalf("flags %#x want %#x", fl, want)
	}
	if svc.conns[id].phase != phaseTransmit {
		t.Fatal("not in transmission after GO")
	}
}

func TestExportNameAndAbort(t *testing.T) {
	svc, _, b := newTestService(t, 1<<20)
	f := newFakeNet(1 << 20)
	id := f.connect(t, svc, 1)
	f.drain(svc, id, 1)
	f.send(svc, id, "\x00\x00\x00\x01", 1) // fixed newstyle, zeroes wanted
	f.send(svc, id, string(opt(optExportName, []byte("ro"))), 1)
	out := f.drain(svc, id, 1)
	if len(out) != 134 || binary.BigEndian.Uint64(out) != uint64(b.Size()) || !bytes.Equal(out[10:], make([]byte, 124)) {
		t.Fatalf("EXPORT_NAME reply % x", out)
	}
	id2 := handshake(t, f, svc)
	f.send(svc, id2, string(opt(optExportName, []byte("missing"))), 1)
	if !f.Socks[id2].Closed {
		t.Fatal("unknown EXPORT_NAME did not close")
	}
	id3 := handshake(t, f, svc)
	f.send(svc, id3, string(opt(optAbort, nil)), 1)
	if reps := parseOptReplies(t, f.Socks[id3].Out); len(reps) != 1 || reps[0].typ != repAck || !f.Socks[id3].Closed {
		t.Fatalf("ABORT: %+v closed=%v", reps, f.Socks[id3].Closed)
	}
	id4 := f.connect(t, svc, 1)
	f.send(svc, id4, "\x00\x00\x00\x04", 1) // unknown client flag
	if !f.Socks[id4].Aborted {
		t.Fatal("unknown client flags accepted")
	}
	id5 := handshake(t, f, svc)
	f.send(svc, id5, "NOTMAGIC00000000", 1)
	if !f.Socks[id5].Aborted {
		t.Fatal("bad option magic accepted")
	}
}

// golive returns a connection in transmission on export name.
func golive(t *testing.T, f *fakeNet, svc *Service, name string) sockapi.SockID {
	id := handshake(t, f, svc)
	f.send(svc, id, string(opt(optGo, infoData(name))), 3)
	f.drain(svc, id, 3)
	return id
}

type simple struct {
	errno  uint32
	cookie uint64
	data   []byte
}

// simpleReplies splits replies; reads says how many data bytes follow each
// cookie's header.
func simpleReplies(t *testing.T, b []byte, reads map[uint64]int) []simple {
	t.Helper()
	var out []simple
	for len(b) > 0 {
		if len(b) < 16 || binary.BigEndian.Uint32(b) != magicSimple {
			t.Fatalf("bad reply % x", b[:min(len(b), 32)])
		}
		r := simple{errno: binary.BigEndian.Uint32(b[4:]), cookie: binary.BigEndian.Uint64(b[8:])}
		b = b[16:]
		if n := reads[r.cookie]; n > 0 && r.errno == 0 {
			r.data, b = b[:n], b[n:]
		}
		out = append(out, r)
	}
	return out
}

func TestCommands(t *testing.T) {
	svc, a, _ := newTestService(t, 1<<20)
	f := newFakeNet(1 << 22)
	id := golive(t, f, svc, "disk")
	pat := bytes.Repeat([]byte("0123456789abcdef"), 300)[:4001] // unaligned length
	in := req(cmdWrite, cmdFlagFUA, 1, 1000, uint32(len(pat)), pat)
	in = append(in, req(cmdRead, 0, 2, 999, 4003, nil)...)
	in = append(in, req(cmdWriteZeroes, 0, 3, 2000, 100, nil)...)
	in = append(in, req(cmdRead, 0, 4, 1990, 120, nil)...)
	in = append(in, req(cmdTrim, 0, 5, 0, 512, nil)...)
	in = append(in, req(cmdFlush, 0, 6, 0, 0, nil)...)
	in = append(in, req(cmdWrite, 0, 7, 1<<20-10, 20, make([]byte, 20))...)
	in = append(in, req(cmdRead, 0, 8, 1<<20, 1, nil)...)
	in = append(in, req(cmdRead, 0, 9, 0, MaxPayload+1, nil)...)
	in = append(in, req(77, 0, 10, 0, 0, nil)...)
	flushes := a.Flushes()
	// Deliver in awkward pieces.
	for i := 0; i < len(in); i += 7 {
		f.send(svc, id, string(in[i:min(i+7, len(in))]), 4)
	}
	reps := simpleReplies(t, f.drain(svc, id, 4), map[uint64]int{2: 4003, 4: 120})
	wantErr := []uint32{0, 0, 0, 0, 0, 0, errNoSpc, errInval, errInval, errInval}
	if len(reps) != len(wantErr) {
		t.Fatalf("%d replies, want %d", len(reps), len(wantErr))
	}
	for i, r := range reps {
		if r.cookie != uint64(i+1) || r.errno != wantErr[i] {
			t.Fatalf("reply %d: cookie %d errno %d, want %d %d", i, r.cookie, r.errno, i+1, wantErr[i])
		}
	}
	if !bytes.Equal(reps[1].data[1:4002], pat) || reps[1].data[0] != 0 || reps[1].data[4002] != 0 {
		t.Fatal("READ did not return the WRITE")
	}
	wantZ := append(append(append([]byte{}, pat[990:1000]...), make([]byte, 100)...), pat[1100:1110]...)
	if !bytes.Equal(reps[3].data, wantZ) {
		t.Fatal("WRITE_ZEROES did not zero exactly its range")
	}
	if got := a.Flushes() - flushes; got != 2 { // FUA and FLUSH
		t.Fatalf("%d device flushes, want 2", got)
	}
	if !bytes.Equal(a.Bytes()[1000:2000], pat[:1000]) {
		t.Fatal("device does not hold the write")
	}
	// DISC closes after the replies.
	f.send(svc, id, string(req(cmdDisc, 0, 11, 0, 0, nil)), 5)
	f.drain(svc, id, 5)
	if !f.Socks[id].Closed || svc.Conns() != 0 {
		t.Fatal("DISC did not close")
	}
}

func (s *Service) Conns() int { return len(s.conns) }

func TestReadOnlyAndBadMagic(t *testing.T) {
	svc, _, b := newTestService(t, 1<<20)
	f := newFakeNet(1 << 20)
	id := golive(t, f, svc, "ro")
	f.send(svc, id, string(req(cmdWrite, 0, 1, 0, 4096, make([]byte, 4096))), 4)
	f.send(svc, id, string(req(cmdTrim, 0, 2, 0, 4096, nil)), 4)
	f.send(svc, id, string(req(cmdWriteZeroes, 0, 3, 0, 4096, nil)), 4)
	reps := simpleReplies(t, f.drain(svc, id, 4), nil)
	if len(reps) != 3 || reps[0].errno != errPerm || reps[1].errno != errPerm || reps[2].errno != errPerm {
		t.Fatalf("read-only export: %+v", reps)
	}
	_ = b
	f.send(svc, id, "\x00\x00\x00\x00"+string(make([]byte, 24)), 4)
	if !f.Socks[id].Aborted {
		t.Fatal("bad request magic accepted")
	}
	id2 := golive(t, f, svc, "disk")
	f.send(svc, id2, string(req(cmdWrite, 0, 1, 0, MaxPayload+1, nil)), 4)
	if !f.Socks[id2].Aborted {
		t.Fatal("oversized WRITE accepted")
	}
}

// TestStreamAndSnapshot: many READs in flight through a small send window;
// a snapshot mid-stream restored into a new service continues byte-exact,
// and the in-flight bound stops reading requests.
func TestStreamAndSnapshot(t *testing.T) {
	svc, a, b := newTestService(t, 4<<20)
	for i := range a.Bytes() {
		a.Bytes()[i] = byte(i * 7 / 3)
	}
	svc.cfg.MaxInFlight = 4
	f := newFakeNet(1000)
	id := golive(t, f, svc, "disk")
	var in []byte
	reads := map[uint64]int{}
	for i := 0; i < 10; i++ {
		in = append(in, req(cmdRead, 0, uint64(i), uint64(i)*300000, 300000, nil)...)
		reads[uint64(i)] = 300000
	}
	f.send(svc, id, string(in), 5)
	if len(svc.conns[id].replies) > 4 {
		t.Fatalf("%d replies queued, MaxInFlight 4", len(svc.conns[id].replies))
	}
	var got []byte
	got = append(got, f.Socks[id].Out...)
	f.Socks[id].Out = nil
	// Half-way: snapshot, restore into a fresh service, carry on there.
	for i := 0; i < 800; i++ {
		f.Socks[id].Space = 1000
		svc.Handle(f, sockapi.Event{Kind: sockapi.EvWritable, Sock: id, Listener: 1}, 6)
	}
	got = append(got, f.Socks[id].Out...)
	f.Socks[id].Out = nil
	blob := svc.Snapshot()
	svc2, err := New(svc.cfg, []blockdev.Device{a, b})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc2.Restore(blob); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svc2.Snapshot(), blob) {
		t.Fatal("snapshot of the restored service differs")
	}
	got = append(got, f.drain(svc2, id, 7)...)
	reps := simpleReplies(t, got, reads)
	if len(reps) != 10 {
		t.Fatalf("%d replies, want 10", len(reps))
	}
	for i, r := range reps {
		if r.cookie != uint64(i) || r.errno != 0 || !bytes.Equal(r.data, a.Bytes()[i*300000:(i+1)*300000]) {
			t.Fatalf("reply %d wrong", i)
		}
	}
	if err := svc2.Restore(blob[:len(blob)-3]); err == nil {
		t.Fatal("truncated snapshot restored")
	}
}

func TestTimeouts(t *testing.T) {
	svc, _, _ := newTestService(t, 1<<20)
	f := newFakeNet(1 << 20)
	id := handshake(t, f, svc)
	live := golive(t, f, svc, "disk")
	d := svc.NextDeadline()
	if d == 0 {
		t.Fatal("no handshake deadline")
	}
	svc.Timer(f, d)
	if !f.Socks[id].Aborted || f.Socks[live].Aborted {
		t.Fatal("handshake timeout hit the wrong connection")
	}
	if svc.NextDeadline() != 0 {
		t.Fatal("idle transmission connection has a deadline")
	}
}

// A big WRITE_ZEROES is carried out in slices over several Steps (the
// service asks for an immediate timer), requests behind it wait, and a
// snapshot taken mid-way restores and finishes the job.
func TestWriteZeroesInSlices(t *testing.T) {
	dev, _ := blockdev.NewMem(48<<20, 512)
	for i := range dev.Bytes() {
		dev.Bytes()[i] = 0xee
	}
	svc, err := New(Config{Exports: []Export{{Name: "d"}}}, []blockdev.Device{dev})
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeNet(1 << 20)
	id := golive(t, f, svc, "d")
	in := req(cmdWriteZeroes, cmdFlagFUA, 1, 4096, 40<<20, nil)
	in = append(in, req(cmdRead, 0, 2, 4096, 512, nil)...)
	f.send(svc, id, string(in), 5)
	if out := f.drain(svc, id, 5); len(out) != 0 || svc.NextDeadline() != 1 {
		t.Fatalf("answered before the zeroing ended (%d bytes), deadline %d", len(out), svc.NextDeadline())
	}
	svc.Timer(f, 6)
	blob := svc.Snapshot()
	svc2, _ := New(svc.cfg, []blockdev.Device{dev})
	if err := svc2.Restore(blob); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10 && svc2.NextDeadline() == 1; i++ {
		svc2.Timer(f, 7)
	}
	reps := simpleReplies(t, f.drain(svc2, id, 8), map[uint64]int{2: 512})
	if len(reps) != 2 || reps[0].cookie != 1 || reps[0].errno != 0 || !bytes.Equal(reps[1].data, make([]byte, 512)) {
		t.Fatalf("replies %+v", reps)
	}
	b := dev.Bytes()
	if b[4095] != 0xee || !bytes.Equal(b[4096:4096+40<<20], make([]byte, 40<<20)) || b[4096+40<<20] != 0xee {
		t.Fatal("WRITE_ZEROES zeroed the wrong range")
	}
	if dev.Flushes() == 0 {
		t.Fatal("FUA did not flush")
	}
}

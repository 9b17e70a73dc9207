package ftp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/dirstore"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

const sec = int64(time.Second)

func testStore(t *testing.T) (*dirstore.Writable, string) {
	t.Helper()
	dir := t.TempDir()
	big := make([]byte, 300000)
	for i := range big {
		big[i] = byte(i * 13 / 7)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub", "a.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mt := time.Unix(1700000000, 0)
	for _, p := range []string{"big.bin", "sub/a.txt", "sub", "."} {
		os.Chtimes(filepath.Join(dir, p), mt, mt)
	}
	st, err := dirstore.NewWritable(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, dir
}

func newTestFTP(t *testing.T, space int) (*Service, *fakeNet, string) {
	t.Helper()
	st, dir := testStore(t)
	svc, err := New(Config{Anonymous: true, PasvMin: 30000, PasvMax: 30002,
		Users: []User{{Name: "alice", PasswordSHA256: HashPassword("secret"), Write: true}}}, st)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeNet(space)
	if err := svc.Start(f); err != nil {
		t.Fatal(err)
	}
	return svc, f, dir
}

func login(t *testing.T, svc *Service, f *fakeNet, user, pass string) sockapi.SockID {
	t.Helper()
	c := f.dial(t, svc, 21, sec)
	f.run(svc, sec)
	code(t, f.take(c), "220")
	code(t, f.cmd(svc, c, "USER "+user, sec), "331")
	code(t, f.cmd(svc, c, "PASS "+pass, sec), "230")
	return c
}

var pasvRe = regexp.MustCompile(`\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)`)
var epsvRe = regexp.MustCompile(`\(\|\|\|(\d+)\|\)`)

// pasv opens a data connection with PASV (or EPSV) and returns it.
func pasv(t *testing.T, svc *Service, f *fakeNet, c sockapi.SockID, ext bool) sockapi.SockID {
	t.Helper()
	var port int
	if ext {
		r := f.cmd(svc, c, "EPSV", sec)
		m := epsvRe.FindStringSubmatch(r)
		if m == nil {
			t.Fatalf("EPSV reply %q", r)
		}
		port, _ = strconv.Atoi(m[1])
	} else {
		r := f.cmd(svc, c, "PASV", sec)
		m := pasvRe.FindStringSubmatch(r)
		if m == nil || m[1] != "10" || m[4] != "2" {
			t.Fatalf("PASV reply %q", r)
		}
		hi, _ := strconv.Atoi(m[5])
		lo, _ := strconv.Atoi(m[6])
		port = hi<<8 | lo
	}
	return f.dial(t, svc, uint16(port), sec)
}

func TestLogin(t *testing.T) {
	svc, f, _ := newTestFTP(t, 1<<20)
	c := f.dial(t, svc, 21, sec)
	f.run(svc, sec)
	code(t, f.take(c), "220")
	code(t, f.cmd(svc, c, "PWD", sec), "530")
	code(t, f.cmd(svc, c, "PASS x", sec), "503")
	code(t, f.cmd(svc, c, "SYST", sec), "215")
	feat := f.cmd(svc, c, "FEAT", sec)
	for _, want := range []string{" EPSV\r\n", " SIZE\r\n", " MDTM\r\n", " REST STREAM\r\n", " MLST type*;size*;modify*;\r\n"} {
		if !strings.Contains(feat, want) {
			t.Fatalf("FEAT %q lacks %q", feat, want)
		}
	}
	code(t, f.cmd(svc, c, "OPTS UTF8 ON", sec), "200")
	code(t, f.cmd(svc, c, "AUTH TLS", sec), "502")
	for i := 0; i < 3; i++ {
		code(t, f.cmd(svc, c, "USER alice", sec), "331")
		code(t, f.cmd(svc, c, "PASS wrong", sec), "530")
	}
	if !f.socks[c].closed {
		t.Fatal("three failed logins did not close")
	}
	login(t, svc, f, "alice", "secret")
	login(t, svc, f, "anonymous", "me@example.org")
	if got := svc.Counters(); got.LoginsOK != 2 || got.LoginsFailed != 3 {
		t.Fatalf("counters %+v", got)
	}
	// Anonymous off: refused.
	svc.cfg.Anonymous = false
	c = f.dial(t, svc, 21, sec)
	f.run(svc, sec)
	f.take(c)
	f.cmd(svc, c, "USER ftp", sec)
	code(t, f.cmd(svc, c, "PASS x", sec), "530")
}

func TestNavigateAndList(t *testing.T) {
	svc, f, _ := newTestFTP(t, 1<<20)
	c := login(t, svc, f, "anonymous", "x")
	code(t, f.cmd(svc, c, "PWD", sec), `257 "/"`)
	code(t, f.cmd(svc, c, "CWD sub", sec), "250")
	code(t, f.cmd(svc, c, "PWD", sec), `257 "/sub"`)
	code(t, f.cmd(svc, c, "CWD ../../..", sec), "250")
	code(t, f.cmd(svc, c, "PWD", sec), `257 "/"`)
	code(t, f.cmd(svc, c, "CWD big.bin", sec), "550")
	code(t, f.cmd(svc, c, "CWD /sub", sec), "250")
	code(t, f.cmd(svc, c, "CDUP", sec), "250")
	code(t, f.cmd(svc, c, "SIZE big.bin", sec), "213 300000")
	code(t, f.cmd(svc, c, "MDTM /sub/a.txt", sec), "213 20231114221320")
	code(t, f.cmd(svc, c, "SIZE sub", sec), "550")
	code(t, f.cmd(svc, c, "MLST big.bin", sec), "250 End")
	code(t, f.cmd(svc, c, "LIST", sec), "425")

	now := int64(1700000000+86400) * sec
	d := pasv(t, svc, f, c, false)
	f.socks[c].in = append(f.socks[c].in, "LIST -la\r\n"...)
	f.run(svc, now)
	ctlOut := f.take(c)
	if !strings.HasPrefix(ctlOut, "150") || !strings.Contains(ctlOut, "226") {
		t.Fatalf("LIST control replies %q", ctlOut)
	}
	want := "-rw-r--r-- 1 ftp ftp       300000 Nov 14 22:13 big.bin\r\ndrwxr-xr-x 1 ftp ftp            0 Nov 14 22:13 sub\r\n"
	if got := f.take(d); got != want || !f.socks[d].closed {
		t.Fatalf("LIST data %q closed=%v, want %q", got, f.socks[d].closed, want)
	}
	d = pasv(t, svc, f, c, true)
	f.cmd(svc, c, "NLST sub", sec)
	if got := f.take(d); got != "a.txt\r\n" {
		t.Fatalf("NLST %q", got)
	}
	d = pasv(t, svc, f, c, true)
	f.cmd(svc, c, "MLSD", sec)
	if got := f.take(d); got != "type=file;size=300000;modify=20231114221320; big.bin\r\ntype=dir;modify=20231114221320; sub\r\n" {
		t.Fatalf("MLSD %q", got)
	}
	code(t, f.cmd(svc, c, "PORT 10,0,0,1,4,1", sec), "200")
	code(t, f.cmd(svc, c, "EPRT |1|10.0.0.1|1025|", sec), "200")
	code(t, f.cmd(svc, c, "PORT 10,0,0,9,4,1", sec), "500")  // not the client: no bounce
	code(t, f.cmd(svc, c, "PORT 10,0,0,1,0,21", sec), "500") // privileged port
	code(t, f.cmd(svc, c, "PORT 10,0,0,1,4", sec), "501")
	code(t, f.cmd(svc, c, "EPRT |2|::1|1025|", sec), "522")
	code(t, f.cmd(svc, c, "EPSV ALL", sec), "200")
	code(t, f.cmd(svc, c, "PASV", sec), "503")
	code(t, f.cmd(svc, c, "PORT 10,0,0,1,4,1", sec), "503")
	code(t, f.cmd(svc, c, "EPSV", sec), "229")
	code(t, f.cmd(svc, c, "EPSV 2", sec), "522")
	code(t, f.cmd(svc, c, "TYPE I", sec), "200")
	code(t, f.cmd(svc, c, "TYPE E", sec), "504")
	code(t, f.cmd(svc, c, "XYZQ", sec), "502")
	code(t, f.cmd(svc, c, "XYZZY", sec), "500")
	code(t, f.cmd(svc, c, "STOR x", sec), "550") // anonymous is read-only
	code(t, f.cmd(svc, c, "MKD x", sec), "550")
	code(t, f.cmd(svc, c, "QUIT", sec), "221")
	if !f.socks[c].closed || svc.Conns() != 0 {
		t.Fatal("QUIT did not close")
	}
}

func TestRetrRestAndSnapshot(t *testing.T) {
	svc, f, dir := newTestFTP(t, 1000)
	big, _ := os.ReadFile(filepath.Join(dir, "big.bin"))
	c := login(t, svc, f, "anonymous", "x")
	code(t, f.cmd(svc, c, "TYPE I", sec), "200")
	d := pasv(t, svc, f, c, false)
	// A foreign address on the data port is refused; ours still works.
	code(t, f.cmd(svc, c, "REST 100000", sec), "350")
	s := f.socks[c]
	s.in = append(s.in, "RETR big.bin\r\n"...)
	f.ev(svc, sockapi.EvReadable, c, sec)
	var got []byte
	for i := 0; i < 50; i++ {
		f.socks[d].space = 1000
		f.ev(svc, sockapi.EvWritable, d, sec)
	}
	got = append(got, f.take(d)...)
	// Snapshot mid-transfer; carry on in a restored service.
	blob := svc.Snapshot()
	st2, err := dirstore.NewWritable(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	svc2, _ := New(svc.cfg, st2)
	if err := svc2.Restore(blob); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(svc2.Snapshot(), blob) {
		t.Fatal("restored snapshot differs")
	}
	f.run(svc2, sec)
	got = append(got, f.take(d)...)
	if !bytes.Equal(got, big[100000:]) {
		t.Fatalf("RETR after REST: %d bytes, want %d matching", len(got), len(big)-100000)
	}
	ctlOut := f.take(c)
	if !strings.Contains(ctlOut, "150 Opening BINARY mode data connection for big.bin (200000 bytes)") ||
		!strings.Contains(ctlOut, "226 Transfer complete") {
		t.Fatalf("control %q", ctlOut)
	}
	code(t, f.cmd(svc2, c, "REST 400000", sec), "350")
	pasv(t, svc2, f, c, true)
	code(t, f.cmd(svc2, c, "RETR big.bin", sec), "554")
	code(t, f.cmd(svc2, c, "RETR nothere", sec), "550")
	// A data connection from another address is refused.
	r := f.cmd(svc2, c, "EPSV", sec)
	port, _ := strconv.Atoi(epsvRe.FindStringSubmatch(r)[1])
	f.foreignIP = true
	bad := f.dial(t, svc2, uint16(port), sec)
	if !f.socks[bad].aborted || svc2.Counters().DataRefused != 1 {
		t.Fatal("foreign data connection accepted")
	}
}

func TestUploadAndChanges(t *testing.T) {
	svc, f, dir := newTestFTP(t, 4096)
	c := login(t, svc, f, "alice", "secret")
	now := int64(1750000000) * sec
	payload := bytes.Repeat([]byte("upload!"), 20000)
	d := pasv(t, svc, f, c, true)
	f.socks[d].in = append([]byte{}, payload[:50000]...)
	f.socks[d].eof = true
	s := f.socks[c]
	s.in = append(s.in, "STOR up.bin\r\n"...)
	f.run(svc, now)
	code(t, f.take(c), "226")
	if !f.socks[d].closed {
		t.Fatal("data connection not closed after STOR")
	}
	// Resume with REST + STOR, then APPE the rest.
	d = pasv(t, svc, f, c, false)
	code(t, f.cmd(svc, c, "REST 40000", now), "350")
	f.socks[d].in = append([]byte{}, payload[40000:100000]...)
	f.socks[d].eof = true
	code(t, f.cmd(svc, c, "STOR up.bin", now), "226")
	d = pasv(t, svc, f, c, false)
	f.socks[d].in = append([]byte{}, payload[100000:]...)
	f.socks[d].eof = true
	code(t, f.cmd(svc, c, "APPE up.bin", now), "226")
	got, _ := os.ReadFile(filepath.Join(dir, "up.bin"))
	if !bytes.Equal(got, payload) {
		t.Fatalf("uploaded %d bytes, want %d equal", len(got), len(payload))
	}
	code(t, f.cmd(svc, c, "MDTM up.bin", now), "213 20250615")
	code(t, f.cmd(svc, c, "MKD newdir", now), `257 "/newdir" created`)
	code(t, f.cmd(svc, c, "MKD newdir", now), "550")
	code(t, f.cmd(svc, c, "RNFR up.bin", now), "350")
	code(t, f.cmd(svc, c, "RNTO newdir/moved.bin", now), "250")
	code(t, f.cmd(svc, c, "RNTO x", now), "503")
	code(t, f.cmd(svc, c, "SIZE /newdir/moved.bin", now), "213 140000")
	code(t, f.cmd(svc, c, "RMD newdir", now), "550 RMD failed: directory not empty")
	code(t, f.cmd(svc, c, "DELE newdir/moved.bin", now), "250")
	code(t, f.cmd(svc, c, "DELE newdir/moved.bin", now), "550")
	code(t, f.cmd(svc, c, "RMD newdir", now), "250")
	code(t, f.cmd(svc, c, "DELE /", now), "550")
	code(t, f.cmd(svc, c, "STOR ../../../etc/x", now), "425")
	if _, err := os.Stat(filepath.Join(dir, "newdir")); !os.IsNotExist(err) {
		t.Fatal("RMD left the directory")
	}
	// ABOR mid-upload.
	d = pasv(t, svc, f, c, false)
	f.socks[d].in = []byte("partial")
	code(t, f.cmd(svc, c, "STOR p.bin", now), "150")
	r := f.cmd(svc, c, "ABOR", now)
	if !strings.Contains(r, "426") || !strings.Contains(r, "226") || !f.socks[d].aborted {
		t.Fatalf("ABOR: %q", r)
	}
}

func TestTimeouts(t *testing.T) {
	svc, f, _ := newTestFTP(t, 1<<20)
	c := login(t, svc, f, "anonymous", "x")
	pasv(t, svc, f, c, false)
	f.take(c)
	// RETR with a PASV listener nobody connects to again: 425 after DataTimeout.
	svc.closePasv(f, svc.ctls[c])
	svc.dropData(f, svc.ctls[c], false)
	r := f.cmd(svc, c, "EPSV", sec)
	_ = r
	code(t, f.cmd(svc, c, "RETR big.bin", sec), "150")
	d := svc.NextDeadline()
	if d != sec+int64(svc.cfg.DataTimeout) {
		t.Fatalf("deadline %d", d)
	}
	svc.Timer(f, d)
	code(t, f.take(c), "425")
	d = svc.NextDeadline()
	svc.Timer(f, d)
	code(t, f.take(c), "421")
	if !f.socks[c].closed {
		t.Fatal("idle control connection not closed")
	}
}

func TestParseCommand(t *testing.T) {
	for _, tc := range []struct {
		in        string
		verb, arg string
		n         int
		err       error
	}{
		{"USER bob\r\n", "USER", "bob", 10, nil},
		{"retr a file with spaces\n", "RETR", "a file with spaces", 24, nil},
		{"NOOP\r\nQUIT\r\n", "NOOP", "", 6, nil},
		{"NOO", "", "", 0, nil},
		{"\xff\xf4\xff\xf2ABOR\r\n", "ABOR", "", 10, nil},
		{"TOOLONG x\r\n", "", "", 11, errBadCommand},
		{"A\x00B\r\n", "", "", 5, errBadCommand},
		{"\r\n", "", "", 2, errBadCommand},
	} {
		cmd, n, err := ParseCommand([]byte(tc.in))
		if cmd.Verb != tc.verb || cmd.Arg != tc.arg || n != tc.n || err != tc.err {
			t.Errorf("%q: got %+v %d %v", tc.in, cmd, n, err)
		}
	}
	if _, _, err := ParseCommand(bytes.Repeat([]byte("a"), maxLine+1)); err != errLineTooLong {
		t.Fatalf("long line: %v", err)
	}
	if got := resolve("/a/b", "../../../../etc"); got != "/etc" {
		t.Fatalf("resolve climbed: %q", got)
	}
}

// Active mode: PORT/EPRT then a transfer dials the client's address; the
// dialed socket's events (Listener 0) reach the service through OwnsSock.
func TestActiveMode(t *testing.T) {
	svc, f, dir := newTestFTP(t, 1500)
	big, _ := os.ReadFile(filepath.Join(dir, "big.bin"))
	c := login(t, svc, f, "alice", "secret")
	code(t, f.cmd(svc, c, "PORT 10,0,0,1,195,80", sec), "200")
	code(t, f.cmd(svc, c, "RETR big.bin", sec), "226")
	var d sockapi.SockID
	for id, s := range f.socks {
		if s.dialedTo.Port == 50000 {
			d = id
		}
	}
	if d == 0 {
		t.Fatal("no data connection dialed to 10.0.0.1:50000")
	}
	if got := f.take(d); !bytes.Equal([]byte(got), big) || !f.socks[d].closed {
		t.Fatalf("active RETR: %d bytes, closed %v", len(got), f.socks[d].closed)
	}
	if svc.OwnsSock(d) {
		t.Fatal("a finished data socket is still owned")
	}
	// EPRT + STOR: the dialed socket carries the upload.
	code(t, f.cmd(svc, c, "EPRT |1|10.0.0.1|50001|", sec), "200")
	code(t, f.cmd(svc, c, "STOR act.bin", sec), "150")
	for id, s := range f.socks {
		if s.dialedTo.Port == 50001 {
			d = id
		}
	}
	if !svc.OwnsSock(d) {
		t.Fatal("the dialed socket is not owned while in use")
	}
	f.socks[d].in = []byte("active upload")
	f.socks[d].eof = true
	f.run(svc, sec)
	code(t, f.take(c), "226")
	if b, _ := os.ReadFile(filepath.Join(dir, "act.bin")); string(b) != "active upload" {
		t.Fatalf("active STOR wrote %q", b)
	}
	// A snapshot holds the PORT target.
	code(t, f.cmd(svc, c, "PORT 10,0,0,1,195,82", sec), "200")
	svc2, _ := New(svc.cfg, svc.files)
	if err := svc2.Restore(svc.Snapshot()); err != nil || svc2.ctls[c].active.Port != 50002 {
		t.Fatalf("restore: %v", err)
	}
	// A RETR without PORT or PASV is refused.
	code(t, f.cmd(svc, c, "PASV", sec), "227")
	code(t, f.cmd(svc, c, "ABOR", sec), "226")
	code(t, f.cmd(svc, c, "RETR big.bin", sec), "425")
}

// syncingStore is the test store with a Sync hook: the count of syncs, and
// an error to return.
type syncingStore struct {
	*dirstore.Writable
	syncs int
	fail  error
}

func (s *syncingStore) Sync() error { s.syncs++; return s.fail }

// A completed upload is made durable (fsapi.Syncer) before 226; a store
// that cannot make it durable gets 451, not 226.
func TestUploadSyncsBefore226(t *testing.T) {
	st, _ := testStore(t)
	ss := &syncingStore{Writable: st}
	svc, err := New(Config{PasvMin: 30000, PasvMax: 30002,
		Users: []User{{Name: "alice", PasswordSHA256: HashPassword("secret"), Write: true}}}, ss)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeNet(1 << 20)
	if err := svc.Start(f); err != nil {
		t.Fatal(err)
	}
	c := login(t, svc, f, "alice", "secret")
	now := int64(1750000000) * sec
	for _, tc := range []struct {
		fail error
		want string
	}{{nil, "226"}, {errors.New("disk gone"), "451"}} {
		ss.fail = tc.fail
		before := ss.syncs
		d := pasv(t, svc, f, c, true)
		f.socks[d].in = []byte("payload")
		f.socks[d].eof = true
		f.socks[c].in = append(f.socks[c].in, "STOR s.bin\r\n"...)
		f.run(svc, now)
		code(t, f.take(c), tc.want)
		if ss.syncs != before+1 {
			t.Fatalf("sync error %v: %d syncs for one upload", tc.fail, ss.syncs-before)
		}
	}
}

package ftp

import (
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine/memfs"
)

// FuzzParseCommand: the parser never panics, consumes within the input,
// and what it accepts is a 1-4 letter upper-case verb.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"USER anonymous\r\n", "RETR a b\n", "\xff\xf4\xff\xf2ABOR\r\n", "PASV", "\r\n", "REST 100\r\nRETR x\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, n, err := ParseCommand(b)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		if err == nil && n > 0 {
			if len(cmd.Verb) < 1 || len(cmd.Verb) > 4 || strings.ToUpper(cmd.Verb) != cmd.Verb {
				t.Fatalf("verb %q", cmd.Verb)
			}
			if strings.ContainsAny(cmd.Arg, "\n\x00") {
				t.Fatalf("argument %q holds a line end or NUL", cmd.Arg)
			}
		}
		if p := resolve("/x", string(b)); !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") {
			t.Fatalf("resolve gave %q", p)
		}
	})
}

// FuzzSession drives a logged-in control connection with arbitrary lines
// (plus a data connection when PASV was asked): no panic, bounded buffers,
// and the final snapshot restores to the same bytes.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"PASV\r\nLIST\r\nQUIT\r\n", "EPSV\r\nREST 5\r\nRETR big\r\n", "CWD d\r\nCDUP\r\nPWD\r\nMLSD\r\n",
		"EPSV\r\nSTOR x\r\nEPSV\r\nAPPE x\r\nMKD d2\r\nRNFR x\r\nRNTO d2/y\r\nDELE d2/y\r\nRMD d2\r\n",
		"PORT 10,0,0,1,200,1\r\nRETR big\r\nEPRT |1|10.0.0.1|5000|\r\nLIST\r\n", "RNFR big\r\nRNTO y\r\nABOR\r\nSTAT\r\n", "TYPE I\r\nSIZE big\r\nMDTM big\r\nMLST d\r\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, b []byte, piece uint8) {
		fs := memfs.New()
		fs.AddSynthetic("big", 100000, 1, 1700000000)
		fs.Add("d/small", []byte("hi"), 1700000000)
		store := memfs.Writable{FS: fs}
		svc, err := New(Config{Anonymous: true, PasvMin: 30000, PasvMax: 30001, MaxListing: 10,
			Users: []User{{Name: "alice", PasswordSHA256: HashPassword("pw"), Write: true}}}, store)
		if err != nil {
			t.Fatal(err)
		}
		fn := newFakeNet(3000)
		if err := svc.Start(fn); err != nil {
			t.Fatal(err)
		}
		c := fn.dial(t, svc, 21, 1)
		fn.cmd(svc, c, "USER alice", 1) // may write: STOR, DELE, RNFR... run too
		fn.cmd(svc, c, "PASS pw", 1)
		k := int(piece%64) + 1
		for len(b) > 0 {
			n := min(k, len(b))
			s := fn.socks[c]
			if s.closed || s.aborted {
				break
			}
			s.in = append(s.in, b[:n]...)
			b = b[n:]
			// Connect to any passive port offered.
			for port := uint16(30000); port <= 30001; port++ {
				if _, ok := fn.listeners[port]; ok && len(fn.queues[fn.listeners[port]]) == 0 {
					fn.dial(t, svc, port, 2)
				}
			}
			fn.run(svc, 2)
			for id, s := range fn.socks {
				_ = id
				s.out = nil
			}
			if cc := svc.ctls[c]; cc != nil && (len(cc.in) > maxLine+1 || len(cc.out) > maxOut+maxLine+256) {
				t.Fatalf("unbounded: in %d out %d", len(cc.in), len(cc.out))
			}
		}
		svc.Timer(fn, svc.NextDeadline())
		blob := svc.Snapshot()
		svc2, _ := New(svc.cfg, store)
		if err := svc2.Restore(blob); err != nil {
			t.Fatalf("restore own snapshot: %v", err)
		}
		if string(svc2.Snapshot()) != string(blob) {
			t.Fatal("snapshot round trip differs")
		}
	})
}

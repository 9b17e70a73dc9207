package nbd

import (
	"encoding/binary"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// FuzzParsers: the option, info and request parsers never panic, and what
// they accept is consistent with the bytes.
func FuzzParsers(f *testing.F) {
	f.Add(opt(optGo, infoData("disk", infoBlockSize)))
	f.Add(opt(optList, nil))
	f.Add(req(cmdWrite, 1, 7, 4096, 16, make([]byte, 16)))
	f.Add([]byte{0, 0, 0, 9, 'a', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		if o, n, err := parseOption(b); err == nil && n > 0 {
			if n > len(b) || len(o.data) != n-16 {
				t.Fatalf("option length %d data %d of %d bytes", n, len(o.data), len(b))
			}
		}
		if r, err := parseInfo(b); err == nil && len(r.name) > maxNameLen {
			t.Fatalf("name of %d bytes accepted", len(r.name))
		}
		if r, n, err := parseRequest(b); err == nil && n > 0 {
			if n != requestLen || (r.typ == cmdWrite && r.length > MaxPayload) {
				t.Fatalf("request %+v n %d", r, n)
			}
		}
	})
}

// FuzzSession feeds arbitrary bytes, cut into pieces, to a connection after
// the greeting (and, when the first byte is odd, after GO on a small device
// with a small send window): no panic, bounded buffers, and a snapshot taken
// at the end restores to the same bytes.
func FuzzSession(f *testing.F) {
	hello := binary.BigEndian.AppendUint32(nil, flagFixedNewstyle|flagNoZeroes)
	f.Add(append(append([]byte{0}, hello...), opt(optGo, infoData("disk"))...))
	f.Add(append([]byte{1}, req(cmdWrite, 1, 7, 1000, 600, make([]byte, 600))...))
	f.Add(append([]byte{1}, req(cmdRead, 0, 7, 4000, 600, nil)...))
	f.Add(append([]byte{1}, req(cmdWriteZeroes, 1, 7, 0, 65536, nil)...))
	f.Add(append([]byte{3}, append(req(cmdFlush, 0, 1, 0, 0, nil), req(cmdDisc, 0, 2, 0, 0, nil)...)...))
	f.Add(append(append([]byte{0}, hello...), opt(optExportName, []byte("ro"))...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		dev, _ := blockdev.NewMem(64<<10, 512)
		ro, _ := blockdev.NewMem(8<<10, 4096)
		svc, err := New(Config{MaxInFlight: 8, Exports: []Export{{Name: "disk"}, {Name: "ro", ReadOnly: true}}},
			[]blockdev.Device{dev, ro})
		if err != nil {
			t.Fatal(err)
		}
		fn := newFakeNet(700)
		id := fn.connect(t, svc, 1)
		if b[0]&1 == 1 {
			fn.send(svc, id, string(hello), 1)
			fn.send(svc, id, string(opt(optGo, infoData("disk"))), 1)
		}
		piece := int(b[0]>>1) + 1
		rest := b[1:]
		for len(rest) > 0 {
			k := min(piece, len(rest))
			s := fn.Socks[id]
			if s.Closed || s.Aborted {
				break
			}
			fn.send(svc, id, string(rest[:k]), 2)
			rest = rest[k:]
			s.Out = nil
			s.Space = 700
			svc.Handle(fn, sockapi.Event{Kind: sockapi.EvWritable, Sock: id}, 2)
			if c := svc.conns[id]; c != nil && (len(c.in) > svc.inLimit(c) || len(c.replies) > svc.cfg.MaxInFlight+4) {
				t.Fatalf("unbounded: %d bytes in, %d replies", len(c.in), len(c.replies))
			}
		}
		blob := svc.Snapshot()
		svc2, _ := New(svc.cfg, []blockdev.Device{dev, ro})
		if err := svc2.Restore(blob); err != nil {
			t.Fatalf("restore own snapshot: %v", err)
		}
		if string(svc2.Snapshot()) != string(blob) {
			t.Fatal("snapshot round trip differs")
		}
	})
}

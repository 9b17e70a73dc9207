package lockstep

import (
	"context"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
	"github.com/ftvs/ftvs/ftvs/netstack/wire"
)

var cliIP = [4]byte{10, 66, 0, 1}

// tcpFrame builds a client-to-VS TCP segment.
func tcpFrame(sport uint16, seq, ack uint32, flags uint8, payload []byte) []byte {
	f := make([]byte, 14+20+20+len(payload))
	wire.PutEthernet(f, vsMAC, cliMAC, 0x0800)
	wire.PutIPv4(f[14:], 40+len(payload), sport, true, 64, 6, cliIP, vsIP)
	seg := f[34:]
	wire.PutTCP(seg, sport, 80, seq, ack, 20, flags, 65535)
	copy(seg[20:], payload)
	binary.BigEndian.PutUint16(seg[16:], ^wire.Fold(wire.Sum(seg, wire.PseudoSum(cliIP, vsIP, 6, len(seg)))))
	return f
}

// arpReply tells the VS the client's MAC.
func arpReply() []byte {
	f := make([]byte, 0, 42)
	f = append(f, vsMAC[:]...)
	f = append(f, cliMAC[:]...)
	f = append(f, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2)
	f = append(f, cliMAC[:]...)
	f = append(f, cliIP[:]...)
	f = append(f, vsMAC[:]...)
	return append(f, vsIP[:]...)
}

// BenchmarkReintegrationPause: a real machine with 0, 8 or 64 HTTP
// downloads in flight (their send buffers full: a snapshot of real size)
// takes in a joining node b.N times; reports how long the primary's loop
// stopped for the snapshot and how long the join took until outputs were
// gated again.
func BenchmarkReintegrationPause(b *testing.B) {
	for _, conns := range []int{0, 8, 64} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) { benchReintegration(b, conns) })
	}
}

func benchReintegration(b *testing.B, conns int) {
	e := newEnv(b)
	cfg := machine.Config{MAC: vsMAC, IP: vsIP, PrefixLen: 24, ISNKey: [16]byte{6, 6}}
	cfg.HTTP.Enabled = true
	newFS := func() *memfs.FS {
		fs := memfs.New()
		fs.AddSynthetic("big.bin", 1<<30, 5, 1700000000)
		return fs
	}
	mk := func() Replica {
		m, err := machine.New(cfg, newFS())
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	synacks := make(chan [2]uint32, 1024) // port, server ISN
	a := e.start(1, RolePrimary, sideOpts{rep: mk(), onEmit: func(o machine.Output) {
		f := o.Payload
		if o.Kind == machine.OutFrame && len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 6 && f[47]&(wire.FlagSYN|wire.FlagACK) == wire.FlagSYN|wire.FlagACK {
			select {
			case synacks <- [2]uint32{uint32(binary.BigEndian.Uint16(f[36:])), binary.BigEndian.Uint32(f[38:])}:
			default:
			}
		}
	}})
	ctx := context.Background()
	submit := func(f []byte) {
		if err := a.node.Submit(ctx, machine.InFrame, f); err != nil {
			b.Fatal(err)
		}
	}
	submit(arpReply())
	for c := range conns {
		port := uint16(20000 + c)
		submit(tcpFrame(port, 1000, 0, wire.FlagSYN, nil))
		var sa [2]uint32
		select {
		case sa = <-synacks:
		case <-time.After(10 * time.Second):
			b.Fatalf("no SYN-ACK for connection %d", c)
		}
		req := []byte("GET /big.bin HTTP/1.1\r\nHost: vs\r\n\r\n")
		submit(tcpFrame(uint16(sa[0]), 1001, sa[1]+1, wire.FlagACK|wire.FlagPSH, req))
	}
	b.ResetTimer()
	var pause, join time.Duration
	size := 0
	for i := range b.N {
		t0 := time.Now()
		j := e.start(2, RoleJoining, sideOpts{rep: mk()})
		var ev Event
		for ev.Kind != EventSnapshotSent {
			ev = <-a.events
		}
		pause += ev.Pause
		size = ev.Size
		for ev.Kind != EventPeerSynced {
			ev = <-a.events
		}
		join += time.Since(t0)
		j.kill()
		for ev.Kind != EventPeerLost {
			ev = <-a.events
		}
		_ = i
	}
	b.ReportMetric(float64(pause.Microseconds())/float64(b.N), "pause-µs")
	b.ReportMetric(float64(join.Milliseconds())/float64(b.N), "join-ms")
	b.ReportMetric(float64(size)/1024, "snapshot-KiB")
	b.ReportMetric(0, "ns/op")
}

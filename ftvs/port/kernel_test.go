package port_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/port"
)

var (
	ourMAC  = net.HardwareAddr{2, 0xf4, 0, 0, 0, 1}
	ourIP   = [4]byte{10, 99, 0, 1}
	kernIP  = [4]byte{10, 99, 0, 2}
	otherIP = [4]byte{10, 99, 0, 3}
)

func pseudo(src, dst []byte, l4 []byte) uint16 {
	ph := make([]byte, 12, 12+len(l4))
	copy(ph, src)
	copy(ph[4:], dst)
	ph[9] = 6
	binary.BigEndian.PutUint16(ph[10:], uint16(len(l4)))
	return port.Checksum(append(ph, l4...))
}

// tcpOut builds a frame from us to the kernel with valid checksums.
func tcpOut(dstMAC net.HardwareAddr, seq, ack uint32, flags uint8, opts, payload []byte) []byte {
	thl := 20 + len(opts)
	f := make([]byte, 14+20+thl+len(payload))
	copy(f[0:6], dstMAC)
	copy(f[6:12], ourMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[6], ip[8], ip[9] = 0x45, 0x40, 64, 6
	binary.BigEndian.PutUint16(ip[2:], uint16(20+thl+len(payload)))
	copy(ip[12:], ourIP[:])
	copy(ip[16:], kernIP[:])
	binary.BigEndian.PutUint16(ip[10:], port.Checksum(ip[:20]))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 8080)
	binary.BigEndian.PutUint32(tcp[4:], seq)
	binary.BigEndian.PutUint32(tcp[8:], ack)
	tcp[12] = byte(thl/4) << 4
	tcp[13] = flags
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], opts)
	copy(tcp[thl:], payload)
	binary.BigEndian.PutUint16(tcp[16:], pseudo(ip[12:16], ip[16:20], tcp))
	return f
}

type seg struct {
	seq, ack uint32
	flags    uint8
	payload  []byte
}

// readTCP reads frames until fn accepts a TCP segment from the kernel's
// port 8080 or the timeout passes. Every IPv4 frame must have valid checksums.
func readTCP(t *testing.T, p port.Port, timeout time.Duration, fn func(seg) bool) {
	t.Helper()
	bufs := make([][]byte, 16)
	for i := range bufs {
		bufs[i] = make([]byte, port.MaxFrame+port.VnetHdrLen)
	}
	out := make([][]byte, 16)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		n, err := p.Read(bufs, out)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			time.Sleep(200 * time.Microsecond)
			continue
		}
		for _, f := range out[:n] {
			if !bytes.Equal(f[0:6], ourMAC) && f[0]&1 == 0 {
				t.Fatalf("frame to %x passed the MAC filter", f[0:6])
			}
			if binary.BigEndian.Uint16(f[12:]) != 0x0800 {
				continue
			}
			ip := f[14:]
			ihl := int(ip[0]&15) * 4
			if port.Checksum(ip[:ihl]) != 0 {
				t.Fatal("IPv4 header checksum invalid after Normalise")
			}
			if ip[9] != 6 {
				continue
			}
			tcp := ip[ihl:binary.BigEndian.Uint16(ip[2:])]
			if pseudo(ip[12:16], ip[16:20], tcp) != 0 {
				t.Fatalf("TCP checksum invalid after Normalise (%d-byte segment)", len(tcp))
			}
			if binary.BigEndian.Uint16(tcp[0:]) != 8080 {
				continue
			}
			thl := int(tcp[12]>>4) * 4
			if fn(seg{binary.BigEndian.Uint32(tcp[4:]), binary.BigEndian.Uint32(tcp[8:]), tcp[13], tcp[thl:]}) {
				return
			}
		}
	}
	t.Fatal("timed out waiting for the kernel's TCP segment")
}

// TestKernelTCPPeer plays a TCP client by hand through the port against the
// kernel's own TCP in a namespace: a 60000-byte TSO super-segment out (the
// kernel must accept it), 256 KiB back in (arriving as GSO super-segments
// whose checksums the port completes), and the MAC filter.
func TestKernelTCPPeer(t *testing.T) {
	for _, kind := range []port.Kind{port.AFPacket, port.TAP} {
		t.Run(string(kind), func(t *testing.T) { testKernelTCPPeer(t, kind) })
	}
}

func testKernelTCPPeer(t *testing.T, kind port.Kind) {
	env := netnstest.New(t, "fv4")
	ns := env.NS("k")
	kernIf, portIf := "v1", "v0"
	if kind == port.TAP {
		ns.Tap("t0")
		kernIf, portIf = "t0", "t0"
	} else {
		env.Veth(ns, "v0", ns, "v1")
	}
	ns.Addr(kernIf, "10.99.0.2/24")
	ns.MustRun("ip", "neigh", "replace", "10.99.0.1", "lladdr", ourMAC.String(), "dev", kernIf, "nud", "permanent")
	ns.MustRun("ip", "neigh", "replace", "10.99.0.3", "lladdr", "02:f4:00:00:00:03", "dev", kernIf, "nud", "permanent")

	var p port.Port
	var ln net.Listener
	var udp net.Conn
	var kernMAC net.HardwareAddr
	if err := ns.Do(func() error {
		var err error
		if p, err = port.Open(port.Config{Kind: kind, Iface: portIf, MAC: ourMAC}); err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(kernIf)
		if err != nil {
			return err
		}
		kernMAC = ifi.HardwareAddr
		if ln, err = net.Listen("tcp4", "10.99.0.2:8080"); err != nil {
			return err
		}
		udp, err = net.Dial("udp4", net.IP(otherIP[:]).String()+":9")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer ln.Close()
	defer udp.Close()
	ns.WaitLinkUp(kernIf)
	ns.WaitLinkUp(portIf)

	// A frame for another MAC must not come through.
	if _, err := udp.Write([]byte("not for us")); err != nil {
		t.Fatal(err)
	}

	const isn = 0xfffffff0 // wraps during the transfer
	mssOpt := []byte{2, 4, 0x05, 0xb4}
	if err := p.Write([]port.Frame{{Data: tcpOut(kernMAC, isn, 0, 0x02, mssOpt, nil)}}); err != nil {
		t.Fatal(err)
	}
	var srvISN uint32
	readTCP(t, p, 5*time.Second, func(s seg) bool {
		if s.flags&0x12 == 0x12 && s.ack == isn+1 {
			srvISN = s.seq
			return true
		}
		return false
	})
	conns := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			conns <- c
		}
		close(conns)
	}()
	up := make([]byte, 60000)
	for i := range up {
		up[i] = byte(i*13 + 1)
	}
	frames := []port.Frame{
		{Data: tcpOut(kernMAC, isn+1, srvISN+1, 0x10, nil, nil)},
		{Data: tcpOut(kernMAC, isn+1, srvISN+1, 0x18, nil, up), GSO: 1448},
	}
	if err := p.Write(frames); err != nil {
		t.Fatal(err)
	}
	c, ok := <-conns
	if !ok {
		t.Fatal("kernel did not accept the connection")
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(up))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("kernel read of the TSO super-segment: %v", err)
	}
	if !bytes.Equal(got, up) {
		t.Fatal("kernel received different bytes than the super-segment carried")
	}
	if st := p.Stats(); st.TxGSO != 1 || st.TxErrors != 0 {
		t.Fatalf("tx stats %+v", st)
	}

	down := make([]byte, 256<<10)
	for i := range down {
		down[i] = byte(i*7 + 3)
	}
	go func() { _, _ = c.Write(down) }()
	var recv []byte
	next := srvISN + 1
	ourSeq := uint32(isn + 1 + uint32(len(up)))
	readTCP(t, p, 10*time.Second, func(s seg) bool {
		if s.seq == next && len(s.payload) > 0 {
			recv = append(recv, s.payload...)
			next += uint32(len(s.payload))
			if err := p.Write([]port.Frame{{Data: tcpOut(kernMAC, ourSeq, next, 0x10, nil, nil)}}); err != nil {
				t.Fatal(err)
			}
		}
		return len(recv) >= len(down)
	})
	if !bytes.Equal(recv, down) {
		t.Fatal("bytes from the kernel differ")
	}
	st := p.Stats()
	if st.RxGSO == 0 {
		t.Fatalf("no GSO super-segment arrived (stats %+v): offloads are not in effect", st)
	}
	t.Logf("%s: %+v", kind, st)
	if kind == port.TAP && st.RxDropFilter != 0 {
		t.Fatalf("the frame for another MAC reached user space: TUNSETTXFILTER not in effect (%+v)", st)
	}
	_ = p.Write([]port.Frame{{Data: tcpOut(kernMAC, ourSeq, next, 0x04, nil, nil)}})
}

// TestTAPCreatedWhenMissing: a TAP that does not exist is created, up, for
// as long as the port is open, and is gone after Close.
func TestTAPCreatedWhenMissing(t *testing.T) {
	env := netnstest.New(t, "fv4")
	ns := env.NS("tapnew")
	var p port.Port
	if err := ns.Do(func() (err error) {
		p, err = port.Open(port.Config{Kind: port.TAP, Iface: "vs0", MAC: ourMAC})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	out := ns.MustRun("ip", "-o", "link", "show", "vs0")
	if !strings.Contains(out, "UP") {
		t.Fatalf("new TAP not up: %s", out)
	}
	p.Close()
	if out, err := ns.Run("ip", "link", "show", "vs0"); err == nil {
		t.Fatalf("TAP survived Close: %s", out)
	}
	if err := ns.Do(func() error {
		_, err := port.Open(port.Config{Kind: port.AFPacket, Iface: "nope0", MAC: ourMAC})
		if err == nil || !strings.Contains(err.Error(), "nope0") {
			return fmt.Errorf("AF_PACKET on a missing interface: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestAFPacketBringsLinkUp: on an interface that is down, Open brings it up
// and the first frame goes out (no stale ENETDOWN from binding it down).
func TestAFPacketBringsLinkUp(t *testing.T) {
	env := netnstest.New(t, "fv4")
	ns := env.NS("up")
	env.Veth(ns, "v0", ns, "v1")
	ns.MustRun("ip", "link", "set", "v0", "down")
	var p port.Port
	if err := ns.Do(func() (err error) {
		p, err = port.Open(port.Config{Kind: port.AFPacket, Iface: "v0", MAC: ourMAC})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if out := ns.MustRun("ip", "-o", "link", "show", "v0"); !strings.Contains(out, ",UP") {
		t.Fatalf("v0 not brought up: %s", out)
	}
	garp := make([]byte, 42)
	copy(garp, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(garp[6:], ourMAC)
	garp[12], garp[13] = 0x08, 0x06
	if err := p.Write([]port.Frame{{Data: garp}}); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.TxFrames != 1 || st.TxErrors != 0 {
		t.Fatalf("first frame after bringing the link up: %+v", st)
	}
}

// TestAFPacketInterfaceGone: deleting the interface is an error, not a
// port that silently reads nothing forever.
func TestAFPacketInterfaceGone(t *testing.T) {
	env := netnstest.New(t, "fv4")
	ns := env.NS("gone")
	env.Veth(ns, "v0", ns, "v1")
	var p port.Port
	if err := ns.Do(func() (err error) {
		p, err = port.Open(port.Config{Kind: port.AFPacket, Iface: "v0", MAC: ourMAC})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ns.MustRun("ip", "link", "del", "v0")
	bufs := [][]byte{make([]byte, port.MaxFrame+port.VnetHdrLen)}
	out := make([][]byte, 1)
	var err error
	netnstest.WaitFor(5*time.Second, func() bool {
		_, err = p.Read(bufs, out) // from the test's own namespace on purpose
		return err != nil
	})
	if err == nil || !strings.Contains(err.Error(), "v0") {
		t.Fatalf("read after the interface was deleted: %v", err)
	}
}

// TestConcurrentReadWrite: one goroutine reads while another writes and a
// third reads Stats (run with -race), for each kind; every frame sent from
// the kernel side arrives.
func TestConcurrentReadWrite(t *testing.T) {
	for _, kind := range []port.Kind{port.AFPacket, port.TAP} {
		t.Run(string(kind), func(t *testing.T) {
			env := netnstest.New(t, "fv4")
			ns := env.NS("rw")
			portIf, peerIf := "v0", "v1"
			if kind == port.TAP {
				ns.Tap("t0")
				portIf, peerIf = "t0", "t0"
			} else {
				env.Veth(ns, "v0", ns, "v1")
			}
			peerMAC := net.HardwareAddr{2, 0xf4, 0, 0, 0, 7}
			var p, peer port.Port
			if err := ns.Do(func() (err error) {
				if p, err = port.Open(port.Config{Kind: kind, Iface: portIf, MAC: ourMAC}); err != nil {
					return err
				}
				peer, err = port.Open(port.Config{Kind: port.AFPacket, Iface: peerIf, MAC: peerMAC})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			defer peer.Close()
			ns.WaitLinkUp(portIf)
			ns.WaitLinkUp(peerIf)
			frame := func(dst, src net.HardwareAddr, i int) []byte {
				f := make([]byte, 60)
				copy(f, dst)
				copy(f[6:], src)
				f[12], f[13] = 0x88, 0xb5 // local experimental EtherType
				binary.BigEndian.PutUint32(f[14:], uint32(i))
				return f
			}
			const n = 2000
			done := make(chan struct{})
			go func() { // writer: our frames out to the peer
				defer close(done)
				for i := 0; i < n; i++ {
					_ = p.Write([]port.Frame{{Data: frame(peerMAC, ourMAC, i)}})
				}
			}()
			var got atomic.Int64
			go func() { // the kernel side sends to us, at most 256 ahead of the reader
				for i := 0; i < n; i++ {
					for int64(i)-got.Load() > 256 {
						time.Sleep(100 * time.Microsecond)
					}
					_ = peer.Write([]port.Frame{{Data: frame(ourMAC, peerMAC, i)}})
				}
			}()
			stop := make(chan struct{})
			go func() {
				for {
					select {
					case <-stop:
						return
					default:
						_ = p.Stats()
					}
				}
			}()
			defer close(stop)
			bufs := make([][]byte, 16)
			for i := range bufs {
				bufs[i] = make([]byte, port.MaxFrame+port.VnetHdrLen)
			}
			out := make([][]byte, 16)
			seen := map[uint32]bool{}
			deadline := time.Now().Add(10 * time.Second)
			for len(seen) < n && time.Now().Before(deadline) {
				k, err := p.Read(bufs, out)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range out[:k] {
					if f[12] == 0x88 && f[13] == 0xb5 {
						seen[binary.BigEndian.Uint32(f[14:])] = true
						got.Store(int64(len(seen)))
					}
				}
				if k == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
			<-done
			if len(seen) != n {
				t.Fatalf("read %d of %d frames", len(seen), n)
			}
			if st := p.Stats(); st.TxFrames != n || st.TxErrors != 0 {
				t.Fatalf("writer: %+v", st)
			}
		})
	}
}

package bench

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/port"
)

// TestPortBench measures the two port kinds alone (no machine): frames
// written per second (64-byte frames, and 64 KiB TSO frames the kernel must
// take whole), and frames read per second while the kernel side floods.
func TestPortBench(t *testing.T) {
	if os.Getenv("FTVS_BENCH") != "1" {
		t.Skip("benchmark: run by scripts/bench.d/vs.sh (FTVS_BENCH=1)")
	}
	vsMAC := net.HardwareAddr{2, 0xf4, 0, 0, 0, 1}
	fmt.Printf("port: raw frame I/O, no machine (1 s each)\n")
	for _, kind := range []port.Kind{port.AFPacket, port.TAP} {
		env := netnstest.New(t, "fv4")
		ns := env.NS("pb")
		portIf, peerIf := "v0", "v1"
		if kind == port.TAP {
			ns.Tap("t0")
			portIf, peerIf = "t0", "t0"
		} else {
			env.Veth(ns, "v0", ns, "v1")
		}
		var p, flood port.Port
		if err := ns.Do(func() (err error) {
			if p, err = port.Open(port.Config{Kind: kind, Iface: portIf, MAC: vsMAC}); err != nil {
				return err
			}
			// The flooder writes from the kernel's side of the wire.
			flood, err = port.Open(port.Config{Kind: port.AFPacket, Iface: peerIf, MAC: net.HardwareAddr{2, 0xf4, 0, 0, 0, 2}})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		small := udpFrame(vsMAC, 64)
		// To a MAC nobody has: the kernel side drops them after receipt.
		out := udpFrame(net.HardwareAddr{2, 0xf4, 0, 0, 0, 9}, 64)
		big := tcpSuper(net.HardwareAddr{2, 0xf4, 0, 0, 0, 9}, 65000)
		wSmall := rate(func() int { _ = p.Write(batch(port.Frame{Data: out}, 64)); return 64 })
		wBig := rate(func() int { _ = p.Write(batch(port.Frame{Data: big, GSO: 1448}, 16)); return 16 })
		if st := p.Stats(); st.TxErrors != 0 {
			t.Fatalf("%s: %d writes refused: the rates would be wrong (%+v)", kind, st.TxErrors, st)
		}
		stop := make(chan struct{})
		go func() {
			fr := batch(port.Frame{Data: small}, 64)
			for {
				select {
				case <-stop:
					return
				default:
					_ = flood.Write(fr)
				}
			}
		}()
		bufs := make([][]byte, 64)
		for i := range bufs {
			bufs[i] = make([]byte, port.MaxFrame+port.VnetHdrLen)
		}
		got := make([][]byte, 64)
		rd := rate(func() int { n, _ := p.Read(bufs, got); return n })
		close(stop)
		time.Sleep(10 * time.Millisecond)
		fmt.Printf("  %-9s write %8.0f frames/s (64 B)  %6.0f TSO frames/s (64 KiB, %5.1f Gbit/s)  read %8.0f frames/s (64 B, kernel flooding)\n",
			kind, wSmall, wBig, wBig*float64(len(big))*8/1e9, rd)
		p.Close()
		flood.Close()
	}
}

func batch(f port.Frame, n int) []port.Frame {
	b := make([]port.Frame, n)
	for i := range b {
		b[i] = f
	}
	return b
}

// rate runs f for a second and returns the frames it reported per second.
func rate(f func() int) float64 {
	start := time.Now()
	n := 0
	for time.Since(start) < time.Second {
		n += f()
	}
	return float64(n) / time.Since(start).Seconds()
}

func ipv4Header(b []byte, proto byte, total int) {
	b[0], b[6], b[8], b[9] = 0x45, 0x40, 64, proto
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	copy(b[12:], []byte{10, 98, 0, 2})
	copy(b[16:], []byte{10, 98, 0, 1})
	binary.BigEndian.PutUint16(b[10:], port.Checksum(b[:20]))
}

func udpFrame(dst net.HardwareAddr, size int) []byte {
	f := make([]byte, size)
	copy(f, dst)
	copy(f[6:], []byte{2, 0xf4, 0, 0, 0, 2})
	f[12], f[13] = 8, 0
	ipv4Header(f[14:], 17, size-14)
	binary.BigEndian.PutUint16(f[34+4:], uint16(size-34))
	return f
}

func tcpSuper(dst net.HardwareAddr, payload int) []byte {
	f := make([]byte, 14+40+payload)
	copy(f, dst)
	copy(f[6:], []byte{2, 0xf4, 0, 0, 0, 2})
	f[12], f[13] = 8, 0
	ipv4Header(f[14:], 6, 40+payload)
	f[34+12] = 5 << 4
	f[34+13] = 0x10
	return f
}

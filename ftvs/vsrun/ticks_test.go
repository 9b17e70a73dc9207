package vsrun_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
	"github.com/ftvs/ftvs/ftvs/vsrun"
)

// synFrame builds a TCP SYN from cliMAC/10.79.0.2:40000 to the VS's port 80.
func synFrame(cliMAC, vsMAC net.HardwareAddr) []byte {
	f := make([]byte, 14+20+24)
	copy(f[0:6], vsMAC)
	copy(f[6:12], cliMAC)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:]
	ip[0], ip[6], ip[8], ip[9] = 0x45, 0x40, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 44)
	copy(ip[12:], []byte{10, 79, 0, 2})
	copy(ip[16:], []byte{10, 79, 0, 1})
	binary.BigEndian.PutUint16(ip[10:], port.Checksum(ip[:20]))
	tcp := ip[20:]
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 80)
	binary.BigEndian.PutUint32(tcp[4:], 12345)
	tcp[12], tcp[13] = 6<<4, 0x02
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	copy(tcp[20:], []byte{2, 4, 0x05, 0xb4})
	ph := append(append(append([]byte(nil), ip[12:20]...), 0, 6, 0, 24), tcp...)
	binary.BigEndian.PutUint16(tcp[16:], port.Checksum(ph))
	return f
}

// TestTimersFireWithoutInput: a client sends one SYN and never answers the
// SYN-ACK. Nothing more arrives, so only the driver's timer ticks (at the
// machine's NextDeadline) can make the VS retransmit its SYN-ACK.
func TestTimersFireWithoutInput(t *testing.T) {
	env := netnstest.New(t, "fv4")
	ns := env.NS("tick")
	// No IPv6 chatter from the kernel: the SYN must be the only frame input.
	ns.MustRun("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	ns.Tap("t0")
	vsMAC := net.HardwareAddr{2, 0xf4, 0, 0, 0, 1}
	cliMAC := net.HardwareAddr{2, 0xf4, 0, 0, 0, 0x22}
	var solo *vsrun.Solo
	var cli port.Port
	if err := ns.Do(func() error {
		var err error
		solo, err = vsrun.Open(vsrun.SoloConfig{Iface: "t0", PortKind: port.TAP, MAC: [6]byte(vsMAC), IP: [4]byte{10, 79, 0, 1}, PrefixLen: 24, Root: t.TempDir()})
		if err != nil {
			return err
		}
		// The kernel side of the TAP is the client's wire.
		cli, err = port.Open(port.Config{Kind: port.AFPacket, Iface: "t0", MAC: cliMAC})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- solo.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		solo.Close()
	}()

	if err := cli.Write([]port.Frame{{Data: synFrame(cliMAC, vsMAC)}}); err != nil {
		t.Fatal(err)
	}
	bufs := [][]byte{make([]byte, port.MaxFrame+port.VnetHdrLen)}
	out := make([][]byte, 1)
	synAcks := 0
	deadline := time.Now().Add(15 * time.Second)
	for synAcks < 2 && time.Now().Before(deadline) {
		n, err := cli.Read(bufs, out)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		f := out[0]
		if len(f) >= 54 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 6 && f[14+20+13]&0x12 == 0x12 {
			synAcks++
		}
	}
	if synAcks < 2 {
		t.Fatalf("saw %d SYN-ACKs, want the original and a retransmission; driver %+v", synAcks, solo.Driver.Stats())
	}
	if st := solo.Driver.Stats(); st.Ticks == 0 || st.Frames != 1 {
		t.Fatalf("driver %+v: want ticks and exactly the one SYN as frame input", st)
	}
}

// TestAnnouncesTwice: the VS announces itself with a gratuitous ARP at start
// and again AnnounceInterval later (the second comes through Inject); after
// Close, Inject does nothing.
func TestAnnouncesTwice(t *testing.T) {
	env := netnstest.New(t, "fv4")
	ns := env.NS("garp")
	ns.Tap("t0")
	vsMAC := net.HardwareAddr{2, 0xf4, 0, 0, 0, 1}
	vsIP := []byte{10, 79, 0, 1}
	var solo *vsrun.Solo
	var cli port.Port
	if err := ns.Do(func() error {
		var err error
		// The listener first, so the first announcement is not missed.
		if cli, err = port.Open(port.Config{Kind: port.AFPacket, Iface: "t0", MAC: net.HardwareAddr{2, 0xf4, 0, 0, 0, 0x22}}); err != nil {
			return err
		}
		solo, err = vsrun.Open(vsrun.SoloConfig{Iface: "t0", PortKind: port.TAP, MAC: [6]byte(vsMAC), IP: [4]byte(vsIP), PrefixLen: 24, Root: t.TempDir()})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- solo.Run(ctx) }()
	bufs := [][]byte{make([]byte, port.MaxFrame+port.VnetHdrLen)}
	out := make([][]byte, 1)
	var garps []time.Time
	deadline := time.Now().Add(3*vsrun.AnnounceInterval + 2*time.Second)
	for len(garps) < 2 && time.Now().Before(deadline) {
		n, err := cli.Read(bufs, out)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		f := out[0]
		if len(f) >= 42 && f[12] == 0x08 && f[13] == 0x06 && bytes.Equal(f[6:12], vsMAC) &&
			bytes.Equal(f[28:32], vsIP) && bytes.Equal(f[38:42], vsIP) {
			garps = append(garps, time.Now())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	solo.Close()
	if len(garps) < 2 {
		t.Fatalf("saw %d gratuitous ARPs from the VS, want 2", len(garps))
	}
	solo.Driver.Inject(machine.GratuitousARPCommand()) // after Close: must not write a closed descriptor
}

package machine_test

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
)

func newMachine(t *testing.T) *machine.Machine {
	t.Helper()
	m, err := machine.New(vsConfig(0), testFiles())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGratuitousARPCommand(t *testing.T) {
	m := newMachine(t)
	out := m.Step(machine.Input{Seq: 1, Now: 5, Kind: machine.InCommand, Payload: machine.GratuitousARPCommand()})
	if len(out) != 1 || out[0].Kind != machine.OutFrame || out[0].Seq != 1 {
		t.Fatalf("outputs %+v", out)
	}
	f := out[0].Payload
	if !bytes.Equal(f[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) || !bytes.Equal(f[6:12], vsMAC[:]) ||
		binary.BigEndian.Uint16(f[12:]) != 0x0806 {
		t.Fatalf("not a broadcast ARP from the VS MAC: % x", f[:14])
	}
	arp := f[14:]
	if !bytes.Equal(arp[14:18], vsIP[:]) || !bytes.Equal(arp[24:28], vsIP[:]) {
		t.Fatalf("ARP does not announce %v: % x", vsIP, arp)
	}
}

func TestBadInputsBecomeEvents(t *testing.T) {
	m := newMachine(t)
	cases := []struct {
		in   machine.Input
		want string
	}{
		{machine.Input{Seq: 1, Kind: machine.InCommand, Payload: nil}, "need at least version and opcode"},
		{machine.Input{Seq: 2, Kind: machine.InCommand, Payload: []byte{9, 1}}, "command set version 9"},
		{machine.Input{Seq: 3, Kind: machine.InCommand, Payload: []byte{1, 200}}, "unknown command opcode 200"},
		{machine.Input{Seq: 4, Kind: machine.InCommand, Payload: []byte{1, 1, 0}}, "unexpected argument"},
		{machine.Input{Seq: 5, Kind: 77}, "unknown kind 77"},
		{machine.Input{Seq: 5, Kind: machine.InTick}, "does not follow 5: ignored"},
		{machine.Input{Seq: 2, Kind: machine.InTick}, "does not follow 5: ignored"},
	}
	for _, c := range cases {
		before := m.LastSeq()
		out := m.Step(c.in)
		if len(out) != 1 || out[0].Kind != machine.OutEvent || !strings.Contains(string(out[0].Payload), c.want) {
			t.Errorf("%+v: outputs %+v, want an event with %q", c.in, out, c.want)
		}
		if strings.Contains(c.want, "ignored") && m.LastSeq() != before {
			t.Errorf("%+v: an ignored input was applied", c.in)
		}
	}
	// A gap in Seq and time going backwards are accepted, counted and clamped.
	m.Step(machine.Input{Seq: 10, Now: 1000, Kind: machine.InTick})
	m.Step(machine.Input{Seq: 11, Now: 500, Kind: machine.InTick})
	c := m.Counters().Machine
	if c.BadCommands != 5 || c.SeqRejected != 2 || c.SeqGaps != 1 || c.ClockClamps != 1 || m.Now() != 1000 || m.LastSeq() != 11 {
		t.Fatalf("counters %+v now %d seq %d", c, m.Now(), m.LastSeq())
	}
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	m := newMachine(t)
	m.Step(machine.Input{Seq: 1, Now: 7, Kind: machine.InCommand, Payload: machine.GratuitousARPCommand()})
	good := m.Snapshot()
	h := m.StateHash()
	for _, bad := range [][]byte{nil, good[:len(good)/2], good[:len(good)-1], append(append([]byte(nil), good...), 0)} {
		if err := m.Restore(bad); err == nil {
			t.Fatalf("snapshot of %d bytes restored", len(bad))
		}
		if m.StateHash() != h {
			t.Fatal("a failed restore changed the machine")
		}
	}
	// A snapshot restores the configuration it was taken with.
	other, err := machine.New(machine.Config{MAC: [6]byte{2, 1, 1, 1, 1, 1}, IP: [4]byte{192, 168, 9, 9}, PrefixLen: 16}, memfs.New())
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Restore(good); err != nil {
		t.Fatal(err)
	}
	if other.StateHash() != h || other.Config().IP != vsIP || !other.Config().HTTP.Enabled {
		t.Fatal("restore did not bring back the snapshot's configuration")
	}
}

func TestConfigValidation(t *testing.T) {
	ok := vsConfig(0)
	for name, mut := range map[string]func(*machine.Config){
		"multicast MAC": func(c *machine.Config) { c.MAC[0] = 1 },
		"zero MAC":      func(c *machine.Config) { c.MAC = [6]byte{} },
		"zero IP":       func(c *machine.Config) { c.IP = [4]byte{} },
		"prefix":        func(c *machine.Config) { c.PrefixLen = 33 },
		"MTU":           func(c *machine.Config) { c.MTU = 100 },
		"TSO":           func(c *machine.Config) { c.TSOMax = -1 },
	} {
		c := ok
		mut(&c)
		if _, err := machine.New(c, testFiles()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c := ok
	c.HTTP.Port = 8080
	c.HTTP.UploadPrefix, c.HTTP.MaxUploadBytes = "/up/", 12345
	b := machine.EncodeConfig(c)
	back, err := machine.DecodeConfig(b)
	if err != nil || !reflect.DeepEqual(back, c) {
		t.Fatalf("config round trip: %+v %v", back, err)
	}
	if _, err := machine.New(vsConfig(0), nil); err == nil {
		t.Fatal("HTTP without a file store accepted")
	}
}

func TestParseHelpers(t *testing.T) {
	mac, err := machine.ParseMAC("02:F7:00:0a:0b:0c")
	if err != nil || mac != [6]byte{2, 0xf7, 0, 0xa, 0xb, 0xc} || machine.FormatMAC(mac) != "02:f7:00:0a:0b:0c" {
		t.Fatalf("ParseMAC: %v %v", mac, err)
	}
	ip, n, err := machine.ParseIPv4Prefix("10.77.0.2/24")
	if err != nil || ip != vsIP || n != 24 || machine.FormatIPv4(ip) != "10.77.0.2" {
		t.Fatalf("ParseIPv4Prefix: %v %d %v", ip, n, err)
	}
	for _, bad := range []string{"", "02:f7:00:0a:0b", "02:f7:00:0a:0b:zz", "2:f7:00:0a:0b:0c:0d"} {
		if _, err := machine.ParseMAC(bad); err == nil {
			t.Errorf("ParseMAC(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"10.0.0.1", "10.0.0.1/0", "10.0.0.1/33", "10.0.0/24", "10.0.0.256/24", "010.0.0.1/8", "a.b.c.d/8"} {
		if _, _, err := machine.ParseIPv4Prefix(bad); err == nil {
			t.Errorf("ParseIPv4Prefix(%q) accepted", bad)
		}
	}
}

func TestNextDeadlineFoldsServices(t *testing.T) {
	w := newWorld(t, vsConfig(0), 0)
	w.dial("GET /index.html HTTP/1.1\r\nHost: vs\r\n\r\n") // keep-alive: stays open
	w.settle()
	// The HTTP idle timeout (60 s after the last activity) is the machine's
	// only timer once the exchange is over and ACKs are out.
	w.now += 1e9
	w.toClient(w.stepM(machine.InTick, nil))
	w.settle()
	d := w.m.NextDeadline()
	if d == 0 || d > w.now+60e9 {
		t.Fatalf("deadline %d, now %d", d, w.now)
	}
	w.run(func() bool { return w.m.Counters().HTTP.IdleClosed == 1 }, 120e9)
}

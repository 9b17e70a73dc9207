package coserver

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/ftvs/ftvs/ftvs/machine"
)

func loadExample(t *testing.T, node int) *config.Config {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "coserver", "node1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := bytes.Replace(b, []byte("node: 1"), []byte("node: "+string(rune('0'+node))), 1)
	s = bytes.Replace(s, []byte("content: ."), []byte("content: "+t.TempDir()), 1)
	c, err := config.Parse("node.yaml", s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBothNodesBuildTheSameVS: the machine config (ISN key included) is a
// function of the shared config only, never of the local host.
func TestBothNodesBuildTheSameVS(t *testing.T) {
	a, err := machineConfig(loadExample(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := machineConfig(loadExample(t, 2))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("node configs differ:\n%+v\n%+v", a, b)
	}
	if a.ISNKey == [16]byte{} || a.MTU != 1500 || !a.ChecksumOffload || a.IP != [4]byte{10, 97, 0, 100} {
		t.Fatalf("machine config %+v", a)
	}
}

func TestARPProbeFrame(t *testing.T) {
	src := []byte{6, 1, 0, 0, 0, 1}
	f := arpProbe(src, [4]byte{10, 97, 0, 100})
	if len(f) != 60 || !bytes.Equal(f[6:12], src) || f[12] != 8 || f[13] != 6 || f[21] != 1 ||
		!bytes.Equal(f[28:32], []byte{0, 0, 0, 0}) || !bytes.Equal(f[38:42], []byte{10, 97, 0, 100}) {
		t.Fatalf("ARP probe % x", f)
	}
}

func TestDivergeHookNeedsAcknowledgement(t *testing.T) {
	t.Setenv(divergeEnv, "10")
	if h, err := DivergeFromEnv(); err == nil || h != nil {
		t.Fatal("fault hook enabled without the acknowledgement")
	}
	t.Setenv(faultEnvAck, faultAck)
	h, err := DivergeFromEnv()
	if err != nil || h == nil {
		t.Fatalf("hook %v err %v", h != nil, err)
	}
	frame := make([]byte, 54)
	frame[12], frame[13] = 0x08, 0x00
	copy(frame[26:], []byte{10, 97, 0, 10, 10, 97, 0, 100})
	in := machine.Input{Seq: 9, Kind: machine.InFrame, Payload: frame}
	h(&in)
	if &in.Payload[0] != &frame[0] {
		t.Fatal("hook fired before its sequence number")
	}
	in.Seq = 11
	h(&in)
	if in.Kind != machine.InFrame || len(in.Payload) != 60 || in.Payload[13] != 0x06 ||
		!bytes.Equal(in.Payload[28:32], []byte{10, 97, 0, 10}) || !bytes.Equal(in.Payload[38:42], []byte{10, 97, 0, 100}) {
		t.Fatalf("hook did not turn the frame into an ARP request: % x", in.Payload)
	}
	if frame[13] != 0 {
		t.Fatal("hook wrote into the shared input frame")
	}
	in = machine.Input{Seq: 12, Kind: machine.InFrame, Payload: frame}
	h(&in)
	if &in.Payload[0] != &frame[0] {
		t.Fatal("hook fired twice")
	}
}

func FuzzDecodeRelayed(f *testing.F) {
	f.Add(append([]byte{0, 0, 0}, make([]byte, 60)...))
	f.Add(append([]byte{1, 0xa8, 0x05}, make([]byte, 14)...))
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		dir, _, frame, err := decodeRelayed(p)
		if err != nil {
			return
		}
		if dir > 1 || len(frame) < 14 || len(frame) != len(p)-3 {
			t.Fatalf("accepted dir %d frame %d of %d", dir, len(frame), len(p))
		}
	})
}

func TestDropNoticeAuth(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	now := time.Now()
	n := dropNotice{Node: 1, Seq: 7, TimeMS: now.UnixMilli(), Nonce: strings.Repeat("ab", 16)}
	n.MAC = n.sum(key)
	b, _ := json.Marshal(&n)
	if got, err := parseDrop(b, key, 2, now); err != nil || got.Seq != 7 {
		t.Fatalf("good notice: %+v %v", got, err)
	}
	if _, err := parseDrop(b, bytes.Repeat([]byte{4}, 32), 2, now); err == nil {
		t.Fatal("notice under another key accepted")
	}
	if _, err := parseDrop(b, key, 1, now); err == nil {
		t.Fatal("notice from our own node number accepted")
	}
	if _, err := parseDrop(b, key, 2, now.Add(time.Minute)); err == nil {
		t.Fatal("stale notice accepted")
	}
}

func FuzzParseDrop(f *testing.F) {
	key := bytes.Repeat([]byte{3}, 32)
	n := dropNotice{Node: 1, Seq: 7, TimeMS: 1, Nonce: strings.Repeat("ab", 16)}
	n.MAC = n.sum(key)
	b, _ := json.Marshal(&n)
	f.Add(b)
	f.Add([]byte(`{"node":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseDrop(b, key, 2, time.UnixMilli(1))
	})
}

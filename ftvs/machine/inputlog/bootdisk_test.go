package inputlog

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/vbootdisk/format"
)

func bootDiskLog(t testing.TB) ([]byte, *blockdev.Mem) {
	dev, err := blockdev.NewMem(40<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	if err := format.Format(dev, "VSBOOT", map[string][]byte{"www/index.html": []byte("<h1>hi</h1>"), "zero.bin": make([]byte, 100_000)}); err != nil {
		t.Fatal(err)
	}
	cfg := machine.Config{MAC: [6]byte{2, 0, 0, 0, 0, 1}, IP: [4]byte{10, 0, 0, 2}, PrefixLen: 24}
	cfg.HTTP.Enabled = true
	var buf bytes.Buffer
	w := NewWriter(&buf, cfg)
	w.BootDisk(dev)
	w.Input(machine.Input{Seq: 1, Now: 5, Kind: machine.InTick})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), dev
}

// A boot disk record carries the image (only its non-zero sectors), and
// each replica gets its own store on its own copy of it.
func TestBootDiskRecord(t *testing.T) {
	b, dev := bootDiskLog(t)
	if len(b) > 1<<20 {
		t.Fatalf("a 40 MiB mostly empty disk took %d bytes", len(b))
	}
	lg, err := Read(bytes.NewReader(b), "boot.log")
	if err != nil {
		t.Fatal(err)
	}
	if lg.BootDisk == nil || lg.BootDisk.Size != dev.Size() || len(lg.Inputs) != 1 {
		t.Fatalf("read back %+v", lg.BootDisk)
	}
	envs := [2]machine.Env{}
	for i := range envs {
		if envs[i], err = lg.Env(); err != nil {
			t.Fatal(err)
		}
	}
	img := make([]byte, dev.Size())
	for _, e := range lg.BootDisk.Extents {
		copy(img[e.Off:], e.Data)
	}
	if !bytes.Equal(img, dev.Bytes()) {
		t.Fatal("the recorded image differs from the disk")
	}
	got := make([]byte, 20)
	n, _ := envs[0].Files.ReadAt("www/index.html", got, 0)
	if string(got[:n]) != "<h1>hi</h1>" {
		t.Fatalf("replica store reads %q", got[:n])
	}
	// Not a version-2 record, not twice, not beside file records.
	v2 := append([]byte(nil), b...)
	v2[len(magic)] = 2
	if _, err := Read(bytes.NewReader(v2), "v2"); err == nil || !strings.Contains(err.Error(), "version 1 or 2") {
		t.Fatalf("boot disk in a v2 log: %v", err)
	}
	var buf bytes.Buffer
	w := NewWriter(&buf, lg.Config)
	w.File("a", 1, []byte("x"))
	w.BootDisk(dev)
	w.Close()
	if _, err := Read(&buf, "both"); err == nil || !strings.Contains(err.Error(), "both a boot disk and file records") {
		t.Fatalf("boot disk and files: %v", err)
	}
}

// Replay builds each replica on its own copy of the boot disk and runs
// them in step.
func TestReplayReplicas(t *testing.T) {
	b, _ := bootDiskLog(t)
	lg, err := Read(bytes.NewReader(b), "boot.log")
	if err != nil {
		t.Fatal(err)
	}
	lg.Inputs = append(lg.Inputs, machine.Input{Seq: 2, Now: 6, Kind: machine.InCommand, Payload: machine.GratuitousARPCommand()})
	ms, err := lg.Replay(3)
	if err != nil || len(ms) != 3 {
		t.Fatalf("replay: %v", err)
	}
	if ms[0].Env().Files == ms[1].Env().Files {
		t.Fatal("replicas share one boot disk store")
	}
	if _, err := lg.Replay(0); err == nil {
		t.Fatal("zero replicas accepted")
	}
}

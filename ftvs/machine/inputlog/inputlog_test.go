package inputlog

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
)

func sampleLog(t testing.TB) []byte {
	cfg := machine.Config{MAC: [6]byte{2, 0, 0, 0, 0, 1}, IP: [4]byte{10, 0, 0, 2}, PrefixLen: 24}
	cfg.HTTP.Enabled = true
	var buf bytes.Buffer
	w := NewWriter(&buf, cfg)
	w.Dir("d", 1)
	w.File("d/a.txt", 2, []byte("abc"))
	w.Synthetic("s.bin", 3, 1<<20, 7)
	w.Input(machine.Input{Seq: 1, Now: 5, Kind: machine.InFrame, Payload: []byte{1, 2, 3}})
	w.Input(machine.Input{Seq: 2, Now: 6, Kind: machine.InTick})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzRead: a corrupt log is an error naming the byte offset, never a panic
// or an unbounded allocation; a log that reads writes back to the same bytes.
func FuzzRead(f *testing.F) {
	f.Add(sampleLog(f))
	f.Add([]byte(magic))
	boot, _ := bootDiskLog(f)
	f.Add(boot)
	f.Fuzz(func(t *testing.T, b []byte) {
		lg, err := Read(bytes.NewReader(b), "fuzz")
		if err != nil {
			return
		}
		if len(lg.Inputs) > len(b) {
			t.Fatalf("%d inputs from %d bytes", len(lg.Inputs), len(b))
		}
		var out bytes.Buffer
		w := NewWriter(&out, lg.Config)
		for _, in := range lg.Inputs {
			w.Input(in)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		back, err := Read(&out, "rewritten")
		if err != nil || len(back.Inputs) != len(lg.Inputs) || !reflect.DeepEqual(back.Config, lg.Config) {
			t.Fatalf("rewritten log differs: %v", err)
		}
	})
}

func TestReadErrorsNameTheOffset(t *testing.T) {
	b := sampleLog(t)
	_, err := Read(bytes.NewReader(b[:len(b)-2]), "cut.log")
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("input log cut.log: at byte")) {
		t.Fatalf("error %v", err)
	}
	bad := append([]byte(nil), b...)
	bad[len(magic)] = 9 // version
	if _, err := Read(bytes.NewReader(bad), "v.log"); err == nil {
		t.Fatal("unknown version accepted")
	}
}

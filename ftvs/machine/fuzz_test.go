package machine_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
)

// fuzzInputs decodes fuzz bytes into machine inputs: records of
// op(1) then, for a frame, len(2) + bytes; for a tick, a time step(2) in ms;
// for a command, len(1) + bytes.
func fuzzInputs(data []byte) []machine.Input {
	var ins []machine.Input
	now := int64(1e9)
	seq := uint64(0)
	for len(data) > 0 && len(ins) < 400 {
		op := data[0]
		data = data[1:]
		seq++
		switch op % 3 {
		case 0:
			if len(data) < 2 {
				return ins
			}
			n := int(binary.LittleEndian.Uint16(data)) % 1600
			data = data[2:]
			n = min(n, len(data))
			ins = append(ins, machine.Input{Seq: seq, Now: now, Kind: machine.InFrame, Payload: data[:n]})
			data = data[n:]
		case 1:
			if len(data) < 2 {
				return ins
			}
			now += int64(binary.LittleEndian.Uint16(data)) * 1e6
			data = data[2:]
			ins = append(ins, machine.Input{Seq: seq, Now: now, Kind: machine.InTick})
		case 2:
			if len(data) < 1 {
				return ins
			}
			n := min(int(data[0])%8, len(data)-1)
			ins = append(ins, machine.Input{Seq: seq, Now: now, Kind: machine.InCommand, Payload: data[1 : 1+n]})
			data = data[1+n:]
		}
	}
	return ins
}

// encodeFuzzInputs is the inverse, to seed the corpus with recorded traffic.
func encodeFuzzInputs(ins []machine.Input) []byte {
	var b []byte
	last := int64(ins[0].Now)
	for _, in := range ins {
		if in.Now > last {
			b = append(b, 1)
			b = binary.LittleEndian.AppendUint16(b, uint16(min((in.Now-last)/1e6, 65535)))
			last = in.Now
		}
		if in.Kind == machine.InFrame && len(in.Payload) < 1600 {
			b = append(b, 0)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(in.Payload)))
			b = append(b, in.Payload...)
		}
	}
	return b
}

// FuzzMachine feeds arbitrary frame, tick and command sequences to two
// replicas: no panic, identical outputs at every step, identical state
// hashes, a bounded snapshot, and a snapshot that restores to the same hash.
// Each run builds three machines, so pass -fuzzminimizetime=3s or the
// default one-minute minimisation of every new input stalls the fuzzer.
func FuzzMachine(f *testing.F) {
	if lf, err := os.Open(filepath.Join("..", "..", "testdata", "machine", "http-session.log")); err == nil {
		lg, err := inputlog.Read(lf, "http-session.log")
		lf.Close()
		if err == nil && len(lg.Inputs) > 40 {
			f.Add(encodeFuzzInputs(lg.Inputs[:12]))
			f.Add(encodeFuzzInputs(lg.Inputs[:40]))
		}
	}
	f.Add([]byte{2, 2, 1, 1, 1, 0x10, 0})
	cfg := vsConfig(0)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := machine.New(cfg, testFiles())
		if err != nil {
			t.Fatal(err)
		}
		b, err := machine.New(cfg, testFiles())
		if err != nil {
			t.Fatal(err)
		}
		for i, in := range fuzzInputs(data) {
			oa := a.Step(in)
			if err := sameOutputs(oa, b.Step(in)); err != nil {
				t.Fatalf("input %d: replicas diverged: %v", i, err)
			}
			if len(oa) > 4096 {
				t.Fatalf("input %d produced %d outputs", i, len(oa))
			}
		}
		s := a.Snapshot()
		if len(s) > 8<<20 {
			t.Fatalf("snapshot grew to %d bytes", len(s))
		}
		if a.StateHash() != b.StateHash() {
			t.Fatal("state hashes differ")
		}
		c, err := machine.New(cfg, testFiles())
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Restore(s); err != nil {
			t.Fatal(err)
		}
		if c.StateHash() != a.StateHash() {
			t.Fatal("restored state hash differs")
		}
	})
}

// FuzzRestore hands arbitrary bytes (seeded with real mid-session
// snapshots) to Restore: it must fail cleanly or give a machine that
// snapshots to the same bytes and survives the rest of the session.
func FuzzRestore(f *testing.F) {
	lf, err := os.Open(filepath.Join("..", "..", "testdata", "machine", "http-latency.log"))
	if err != nil {
		f.Fatal(err)
	}
	lg, err := inputlog.Read(lf, "http-latency.log")
	lf.Close()
	if err != nil {
		f.Fatal(err)
	}
	m, err := machine.New(lg.Config, lg.Files)
	if err != nil {
		f.Fatal(err)
	}
	for i, in := range lg.Inputs[:300] {
		m.Step(in)
		if i == 5 || i == 40 || i == 299 {
			f.Add(m.Snapshot())
		}
	}
	tail := lg.Inputs[300:340]
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := machine.New(lg.Config, lg.Files)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Restore(b); err != nil {
			return
		}
		s := m.Snapshot()
		m2, err := machine.New(lg.Config, lg.Files)
		if err != nil {
			t.Fatal(err)
		}
		if err := m2.Restore(s); err != nil {
			t.Fatalf("re-restoring a restored machine's snapshot: %v", err)
		}
		if m2.StateHash() != m.StateHash() {
			t.Fatal("restore is not idempotent")
		}
		for _, in := range tail {
			if err := sameOutputs(m.Step(in), m2.Step(in)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

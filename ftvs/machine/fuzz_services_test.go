package machine_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
)

// FuzzMachineFTPNBD is FuzzMachine for the FTP and NBD services: arbitrary
// frame, tick and command sequences (seeded with the recorded real
// sessions) go to two replicas built from the ftp-session or nbd-session
// log's configuration, each with its own writable files and disks: no
// panic, identical outputs at every step, identical state hashes, and a
// snapshot that restores to the same hash.
func FuzzMachineFTPNBD(f *testing.F) {
	var logs [2]*inputlog.Log
	for i, name := range []string{"ftp-session.log", "nbd-session.log"} {
		lf, err := os.Open(filepath.Join("..", "..", "testdata", "machine", name))
		if err != nil {
			f.Fatal(err)
		}
		lg, err := inputlog.Read(lf, name)
		lf.Close()
		if err != nil {
			f.Fatal(err)
		}
		logs[i] = lg
		for _, n := range []int{10, 40, len(lg.Inputs)} {
			f.Add(byte(i), encodeFuzzInputs(lg.Inputs[:min(n, len(lg.Inputs))]))
		}
	}
	f.Fuzz(func(t *testing.T, which byte, data []byte) {
		lg := logs[which&1]
		var ms [3]*machine.Machine
		for i := range ms {
			env, err := lg.Env()
			if err != nil {
				t.Fatal(err)
			}
			if ms[i], err = machine.NewEnv(lg.Config, env); err != nil {
				t.Fatal(err)
			}
		}
		a, b := ms[0], ms[1]
		for i, in := range fuzzInputs(data) {
			oa := a.Step(in)
			if err := sameOutputs(oa, b.Step(in)); err != nil {
				t.Fatalf("input %d: replicas diverged: %v", i, err)
			}
		}
		if a.StateHash() != b.StateHash() {
			t.Fatal("state hashes differ")
		}
		s := a.Snapshot()
		if len(s) > 64<<20 {
			t.Fatalf("snapshot grew to %d bytes", len(s))
		}
		if err := ms[2].Restore(s); err != nil {
			t.Fatal(err)
		}
		if ms[2].StateHash() != a.StateHash() {
			t.Fatal("restored state hash differs")
		}
	})
}

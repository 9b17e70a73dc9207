package lockstep

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/memfs"
)

var (
	vsMAC  = [6]byte{0x02, 0xf6, 0, 0, 0, 2}
	vsIP   = [4]byte{10, 66, 0, 2}
	cliMAC = [6]byte{0x02, 0xf6, 0, 0, 0, 1}
)

func realMachine(t *testing.T) *machine.Machine {
	t.Helper()
	cfg := machine.Config{MAC: vsMAC, IP: vsIP, PrefixLen: 24, ISNKey: [16]byte{6, 6}}
	cfg.HTTP.Enabled = true
	fs := memfs.New()
	fs.Add("index.html", []byte("hello\n"), 1700000000)
	m, err := machine.New(cfg, fs)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// arpRequest asks who has the VS IP, from client address 10.66.0.<n>.
func arpRequest(n byte) []byte {
	f := make([]byte, 0, 42)
	f = append(f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	f = append(f, cliMAC[:]...)
	f = append(f, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	f = append(f, cliMAC[:]...)
	f = append(f, 10, 66, 0, n)
	f = append(f, 0, 0, 0, 0, 0, 0)
	return append(f, vsIP[:]...)
}

// isARPFromVS reports an ARP frame with opcode op sent by the VS MAC.
func isARPFromVS(f []byte, op uint16) bool {
	return len(f) >= 42 && bytes.Equal(f[6:12], vsMAC[:]) && binary.BigEndian.Uint16(f[12:]) == 0x0806 &&
		binary.BigEndian.Uint16(f[20:]) == op && bytes.Equal(f[22:28], vsMAC[:]) && bytes.Equal(f[28:32], vsIP[:])
}

// recReplica records the outputs a replica produced (the secondary's are
// never emitted, so this is the only way to compare them).
type recReplica struct {
	Replica
	mu   sync.Mutex
	outs map[uint64][]machine.Output
}

func (r *recReplica) Step(in machine.Input) []machine.Output {
	o := r.Replica.Step(in)
	r.mu.Lock()
	r.outs[in.Seq] = append([]machine.Output(nil), o...)
	r.mu.Unlock()
	return o
}

// TestRealMachineLockstepAndGoLive runs the real deterministic machine on
// both nodes: ARP requests answered in lockstep with identical outputs on
// both replicas, then the primary dies and the survivor announces the VS
// with a gratuitous ARP from the VS MAC.
func TestRealMachineLockstepAndGoLive(t *testing.T) {
	e := newEnv(t)
	ra := &recReplica{Replica: realMachine(t), outs: map[uint64][]machine.Output{}}
	rb := &recReplica{Replica: realMachine(t), outs: map[uint64][]machine.Output{}}
	a := e.start(1, RolePrimary, sideOpts{rep: ra})
	b := e.start(2, RoleJoining, sideOpts{rep: rb})
	synced := a.waitEvent(t, EventPeerSynced)
	b.waitEvent(t, EventRestored)
	for i := range 50 {
		if err := a.node.Submit(context.Background(), machine.InFrame, arpRequest(byte(10+i))); err != nil {
			t.Fatal(err)
		}
	}
	st := a.quiet(t, synced.Seq+49)
	replies := 0
	for _, o := range e.rec.snapshot() {
		if o.node == 1 && o.what == "emit" && isARPFromVS(o.data, 2) {
			replies++
		}
	}
	if replies != 50 {
		t.Fatalf("%d ARP replies released, want 50", replies)
	}
	sameState(t, a, b)
	ra.mu.Lock()
	rb.mu.Lock()
	for seq := synced.Seq; seq <= st.Seq; seq++ {
		if err := sameOuts(ra.outs[seq], rb.outs[seq]); err != nil {
			t.Fatalf("seq %d: replicas' outputs differ: %v", seq, err)
		}
	}
	rb.mu.Unlock()
	ra.mu.Unlock()

	a.kill()
	live := b.waitEvent(t, EventGoLive)
	garp := false
	for _, o := range e.rec.snapshot() {
		if o.node == 2 && o.what == "emit" && o.seq == live.Seq && isARPFromVS(o.data, 1) {
			garp = true
		}
	}
	if !garp {
		t.Fatal("survivor went live without a gratuitous ARP from the VS MAC")
	}
}

func sameOuts(a, b []machine.Output) error {
	if len(a) != len(b) {
		return errf("%d outputs vs %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Kind != b[i].Kind || a[i].GSO != b[i].GSO || !bytes.Equal(a[i].Payload, b[i].Payload) {
			return errf("output %d differs", i)
		}
	}
	return nil
}

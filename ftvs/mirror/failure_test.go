package mirror

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev/faultdev"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// lockstepWrite applies one write on both running nodes, as both replicas
// do in lockstep, and flushes when asked (the reply would wait for both).
func (p *pair) lockstepWrite(t *testing.T, seq uint64, off int64, flush bool) []byte {
	t.Helper()
	var b []byte
	for id := uint8(1); id <= 2; id++ {
		b = writeBlock(t, p.n[id].m, seq, off)
		if flush {
			if err := p.n[id].m.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b
}

func (p *pair) startLockstep(t *testing.T) {
	t.Helper()
	for id := uint8(1); id <= 2; id++ {
		if err := p.n[id].m.StartLockstep(); err != nil {
			t.Fatal(err)
		}
	}
}

// Double crash: one node dies, the other goes on alone and writes, then it
// dies too. Both restart, in either order: the generations pick the copy
// that went on, whatever its node number.
func TestDoubleCrashNewerCopyWins(t *testing.T) {
	for _, tc := range []struct{ firstDead, restartFirst uint8 }{{2, 1}, {2, 2}, {1, 1}, {1, 2}} {
		t.Run(fmt.Sprintf("node%d-dies-first/node%d-restarts-first", tc.firstDead, tc.restartFirst), func(t *testing.T) {
			p := newPair(t)
			ctx := ctxT(t)
			p.startLockstep(t)
			for i := range 16 {
				p.lockstepWrite(t, uint64(i), int64(i)*4096, i%4 == 3)
			}
			survivor := 3 - tc.firstDead
			p.crash(tc.firstDead)
			if err := p.n[survivor].m.PeerLost(); err != nil {
				t.Fatal(err)
			}
			newer := map[int64][]byte{}
			for i := range 16 {
				off := int64(i) * 8192
				newer[off] = writeBlock(t, p.n[survivor].m, 100+uint64(i), off)
			}
			if err := p.n[survivor].m.Flush(); err != nil {
				t.Fatal(err)
			}
			p.crash(survivor)
			p.start(tc.restartFirst)
			if ok, _ := p.n[tc.restartFirst].m.MayGoLive(); ok {
				t.Fatalf("node %d restarted alone after a double crash may go live", tc.restartFirst)
			}
			p.start(3 - tc.restartFirst)
			dec, err := p.reconnect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if dec.Source != survivor {
				t.Fatalf("decision %v: want node %d (went on alone) as source", dec, survivor)
			}
			p.assertIdentical()
			data := p.dataOf(tc.firstDead)
			for off, b := range newer {
				if !bytes.Equal(data[off:off+4096], b) {
					t.Fatalf("node %d lacks the survivor's write at %d", tc.firstDead, off)
				}
			}
		})
	}
}

// Both alive and writing while partitioned: split brain is detected,
// nothing is written, neither goes live on this disk's say-so, until the
// operator marks a victim (what ftvs vdisk resolve --discard-node does).
func TestSplitBrainDetectedNotResolvedThenDiscard(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	p.startLockstep(t)
	for i := range 8 {
		p.lockstepWrite(t, uint64(i), int64(i)*4096, i == 7)
	}
	// Partition: each side thinks the other died.
	for id := uint8(1); id <= 2; id++ {
		if err := p.n[id].m.PeerLost(); err != nil {
			t.Fatal(err)
		}
	}
	keep := map[int64][]byte{}
	for i := range 8 {
		off := int64(i) * 4096 * 3
		keep[off] = writeBlock(t, p.n[1].m, 1000+uint64(i), off)
		writeBlock(t, p.n[2].m, 2000+uint64(i), off+4096)
	}
	before := [3][32]byte{}
	for id := uint8(1); id <= 2; id++ {
		before[id] = sha256.Sum256(p.dataOf(id))
	}
	_, err := p.reconnect(ctx)
	if !errors.Is(err, vdisk.ErrSplitBrain) {
		t.Fatalf("reconnect after partition: %v, want split brain", err)
	}
	for id := uint8(1); id <= 2; id++ {
		waitEvent(t, p.n[id], EventSplitBrain)
		if ok, why := p.n[id].m.MayGoLive(); ok {
			t.Fatalf("node %d may go live during split brain", id)
		} else {
			t.Logf("node %d: %s", id, why)
		}
		if sha256.Sum256(p.dataOf(id)) != before[id] {
			t.Fatalf("node %d's data changed although split brain is never auto-resolved", id)
		}
	}
	// Still split on a second attempt: never resolved by itself.
	if _, err := p.reconnect(ctx); !errors.Is(err, vdisk.ErrSplitBrain) {
		t.Fatalf("second reconnect: %v", err)
	}
	// ftvs vdisk resolve --discard-node 2 (offline on node 2's copy).
	p.crash(2)
	n2 := p.start(2)
	if err := n2.disk.Update(func(m *vdisk.Metadata) { *m = vdisk.MarkDiscard(*m) }); err != nil {
		t.Fatal(err)
	}
	dec, err := p.reconnect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if dec.Source != 1 {
		t.Fatalf("after resolve: %v, want node 1 as source", dec)
	}
	p.assertIdentical()
	data := p.dataOf(2)
	for off, b := range keep {
		if !bytes.Equal(data[off:off+4096], b) {
			t.Fatalf("node 1's write at %d not on node 2", off)
		}
	}
	for id := uint8(1); id <= 2; id++ {
		if ok, why := p.n[id].m.MayGoLive(); !ok {
			t.Fatalf("node %d after resolve: %s", id, why)
		}
	}
}

// Online verify by checksums over the link finds exactly the region that
// differs.
func TestOnlineVerify(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	p.startLockstep(t)
	for i := range 32 {
		p.lockstepWrite(t, uint64(i), int64(i)*65536, false)
	}
	// Verify while the VS keeps writing (both copies, above 48 MiB).
	stop := make(chan struct{})
	writer := make(chan error, 1)
	go func() {
		for i := uint64(0); ; i++ {
			select {
			case <-stop:
				writer <- nil
				return
			default:
			}
			off := int64(48<<20) + int64(i%1024)*4096
			for id := uint8(1); id <= 2; id++ {
				if _, err := p.n[id].m.WriteAt(pattern(i, off), off); err != nil {
					writer <- err
					return
				}
			}
		}
	}()
	diffs, err := p.n[1].m.Verify(ctx, vdisk.VerifyOptions{Region: 1 << 20})
	close(stop)
	if werr := <-writer; werr != nil {
		t.Fatal(werr)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		if d.Off < 48<<20 { // regions being written may differ transiently
			t.Fatalf("verify of equal copies found %v", diffs)
		}
	}
	// Bit rot on node 2 only, under the mirror's feet.
	l, _ := vdisk.Layout(testData, 512, testGran)
	if _, err := p.n[2].file.WriteAt(bytes.Repeat([]byte{0xee}, 512), l.DataOffset+(37<<20)+512); err != nil {
		t.Fatal(err)
	}
	diffs, err = p.n[1].m.Verify(ctx, vdisk.VerifyOptions{Region: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 1 || diffs[0] != (vdisk.Range{Off: 37 << 20, Len: 1 << 20}) {
		t.Fatalf("verify found %v, want [37 MiB, 38 MiB)", diffs)
	}
}

// The acked-writes checker: unique patterns, every acknowledged write
// recorded, a series of failovers (each node lost and resynchronised, then
// a double crash), and at the end every acknowledged write reads back from
// both copies.
func TestAckedWritesSurviveFailovers(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	rng := rand.New(rand.NewPCG(5, 5))
	acked := map[int64][]byte{}
	seq := uint64(0)
	write := func(on []uint8, n int) {
		for range n {
			seq++
			off := rng.Int64N(testData/4096) * 4096
			b := pattern(seq, off)
			for _, id := range on {
				if _, err := p.n[id].m.WriteAt(b, off); err != nil {
					t.Fatalf("write %d on node %d: %v", seq, id, err)
				}
			}
			if seq%7 == 0 {
				for _, id := range on {
					if err := p.n[id].m.Flush(); err != nil {
						t.Fatal(err)
					}
				}
			}
			acked[off] = b // acknowledged: the reply would leave now
		}
		for _, id := range on {
			if err := p.n[id].m.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	both := []uint8{1, 2}
	p.startLockstep(t)
	write(both, 200)
	for round, dead := range []uint8{1, 2, 1} {
		surv := 3 - dead
		p.crash(dead)
		if err := p.n[surv].m.PeerLost(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		write([]uint8{surv}, 300)
		p.start(dead)
		if ok, _ := p.n[dead].m.MayGoLive(); ok {
			t.Fatalf("round %d: restarted node %d may go live before meeting the peer", round, dead)
		}
		if dec, err := p.reconnect(ctx); err != nil || dec.Source != surv {
			t.Fatalf("round %d: reconnect %v %v", round, dec, err)
		}
		p.startLockstep(t)
		write(both, 200)
	}
	// Double crash in lockstep with a write in flight (applied on node 2
	// only, never acknowledged): the union of marks covers it, so the
	// copies end identical whichever value wins.
	writeBlock(t, p.n[2].m, 1<<40, 40<<20)
	p.crash(1)
	p.crash(2)
	p.start(2)
	p.start(1)
	if _, err := p.reconnect(ctx); err != nil {
		t.Fatal(err)
	}
	p.assertIdentical()
	for id := uint8(1); id <= 2; id++ {
		got := make([]byte, 4096)
		for off, b := range acked {
			if _, err := p.n[id].m.ReadAt(got, off); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, b) {
				t.Fatalf("node %d: acknowledged write at %d lost", id, off)
			}
		}
	}
	t.Logf("%d writes, %d distinct blocks read back from both copies", seq, len(acked))
}

// Detached in lockstep: the detached node skips writes (its peer applies
// them itself); its reads are served by the peer at the peer's write count
// and rebuilt at its own from its write history when the peer lags; a read
// the peer has already overwritten is refused, never served from the
// future.
func TestDetachedInLockstepReadsAtTheSameWriteCount(t *testing.T) {
	p := newPair(t)
	p.startLockstep(t)
	l, _ := vdisk.Layout(testData, 512, testGran)
	const a = 8 << 20
	p.n[1].fault.add(faultdev.Rule{Ops: faultdev.Read, Off: l.DataOffset + a, Len: 4096})
	m1, m2 := p.n[1].m, p.n[2].m
	x := writeBlock(t, m1, 1, a) // write 1 on node 1; node 2 lags
	got := make([]byte, 4096)
	// Fails locally: detach, read from node 2 (still at write 0) and
	// rebuild write 1 from node 1's own history.
	if _, err := m1.ReadAt(got, a); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, p.n[1], EventDetached)
	if !bytes.Equal(got, x) {
		t.Fatal("read through the lagging peer did not return write 1")
	}
	writeBlock(t, m2, 1, a) // node 2's replica catches up
	if _, err := m1.ReadAt(got, a); err != nil || !bytes.Equal(got, x) {
		t.Fatalf("read at write 1 from the caught-up peer: %v", err)
	}
	y := writeBlock(t, m2, 2, a) // node 2 runs ahead: write 2 overwrites
	if _, err := m1.ReadAt(got, a); err == nil {
		t.Fatal("read at write 1 served after the peer's write 2 overwrote it")
	} else {
		t.Logf("refused as it should be: %v", err)
	}
	writeBlock(t, m1, 2, a) // node 1's replica reaches write 2: skipped locally
	if _, err := m1.ReadAt(got, a); err != nil || !bytes.Equal(got, y) {
		t.Fatalf("read at write 2: %v", err)
	}
	if st := m1.Stats(); st.SkippedWrites != 1 || st.RemoteWrites != 0 {
		t.Fatalf("detached node in lockstep: %+v", st)
	}
}

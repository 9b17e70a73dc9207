package mirror

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/link/linktest"
)

// BenchmarkResyncVsLink measures, over one veth link between two network
// namespaces (needs root), the link session's bulk rate with 1 MiB
// messages and the resync rate of 128 MiB of marked data (unlimited
// pacer, copies on files), and reports both and their ratio (the goal is
// a resync at >= 90% of the link).
func BenchmarkResyncVsLink(b *testing.B) {
	b.Run("copies=disk", func(b *testing.B) { benchResync(b, "") })
	// Copies in RAM: the protocol's ceiling without the disk's flushes.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		b.Run("copies=shm", func(b *testing.B) {
			dir, err := os.MkdirTemp("/dev/shm", "fm5-bench-")
			if err != nil {
				b.Skip(err)
			}
			b.Cleanup(func() { os.RemoveAll(dir) })
			benchResync(b, dir)
		})
	}
}

func benchResync(b *testing.B, dir string) {
	linktest.NeedRoot(b)
	np := linktest.NewPair(b, "fm5r", 1, 185)
	o := pairOpts{size: 256 << 20, chunk: 1 << 20, inflight: 8, dir: dir}
	o.links[1], o.links[2] = np.LinksA, np.LinksB
	o.nets[1], o.nets[2] = linktest.Net{NS: np.A}, linktest.Net{NS: np.B}
	p := newPairWith(b, o)
	const dirty = 128 << 20
	var linkMBs, resyncMBs float64
	for range b.N {
		// Link: 1 MiB messages, window-limited, until all have arrived.
		msg := make([]byte, 1<<20)
		start, want := time.Now(), p.raw.Load()+dirty
		for sent := 0; sent < dirty; {
			err := p.sess[1].Send(rawType, msg)
			if errors.Is(err, link.ErrWindowFull) {
				time.Sleep(100 * time.Microsecond)
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			sent += len(msg)
		}
		for p.raw.Load() < want {
			time.Sleep(100 * time.Microsecond)
		}
		linkMBs = dirty / time.Since(start).Seconds() / 1e6

		// Resync: node 1 alone writes 128 MiB, node 2 comes back.
		m1 := p.n[1].m
		if err := m1.PeerLost(); err != nil {
			b.Fatal(err)
		}
		blk := make([]byte, 1<<20)
		for off := int64(0); off < dirty; off += int64(len(blk)) {
			blk[0]++
			if _, err := m1.WriteAt(blk, off); err != nil {
				b.Fatal(err)
			}
		}
		if err := m1.Flush(); err != nil {
			b.Fatal(err)
		}
		before := m1.ResyncStats().Copied
		start = time.Now()
		if _, err := p.reconnect(context.Background()); err != nil {
			b.Fatal(err)
		}
		el := time.Since(start)
		copied := m1.ResyncStats().Copied - before
		if copied < dirty {
			b.Fatalf("resync copied %d bytes of %d marked", copied, dirty)
		}
		resyncMBs = float64(copied) / el.Seconds() / 1e6
	}
	b.ReportMetric(linkMBs, "link-MB/s")
	b.ReportMetric(resyncMBs, "resync-MB/s")
	b.ReportMetric(100*resyncMBs/linkMBs, "resync-%-of-link")
}

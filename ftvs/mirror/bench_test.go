package mirror

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/link/linktest"
)

// BenchmarkResyncVsLink measures, over one veth link between two network
// namespaces (needs root), the link session's bulk rate with 1 MiB
// messages and the resync rate of 128 MiB of marked data (unlimited
// pacer, copies on files), and reports both and their ratio (the goal is
// a resync at >= 90% of the link). The machine is shared: each iteration
// alternates link and resync transfers benchRounds times and reports the
// medians, and the ratio is the median of each round's resync over the
// link transfer just before it (the two saw the same load).
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
	var links, resyncs, ratios []float64
	for range b.N {
		for range benchRounds {
			l := benchLink(b, p, dirty)
			r := benchResyncOnce(b, p, dirty)
			links, resyncs, ratios = append(links, l), append(resyncs, r), append(ratios, r/l)
		}
	}
	linkMBs, resyncMBs := median(links), median(resyncs)
	b.ReportMetric(linkMBs, "link-MB/s")
	b.ReportMetric(resyncMBs, "resync-MB/s")
	b.ReportMetric(100*median(ratios), "resync-%-of-link")
}

// benchRounds is how many link/resync pairs one iteration measures.
const benchRounds = 5

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchLink sends dirty bytes in 1 MiB messages, window-limited, and
// returns MB/s once all have arrived.
func benchLink(b *testing.B, p *pair, dirty int) float64 {
	msg := make([]byte, 1<<20)
	start, want := time.Now(), p.raw.Load()+int64(dirty)
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
	return float64(dirty) / time.Since(start).Seconds() / 1e6
}

// benchResyncOnce: node 1 alone writes dirty bytes, node 2 comes back;
// it returns the resync's MB/s (Connect and FinishResync, all included).
func benchResyncOnce(b *testing.B, p *pair, dirty int64) float64 {
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
	start := time.Now()
	if _, err := p.reconnect(context.Background()); err != nil {
		b.Fatal(err)
	}
	el := time.Since(start)
	copied := m1.ResyncStats().Copied - before
	if copied < dirty {
		b.Fatalf("resync copied %d bytes of %d marked", copied, dirty)
	}
	return float64(copied) / el.Seconds() / 1e6
}

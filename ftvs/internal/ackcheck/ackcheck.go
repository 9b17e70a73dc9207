// Package ackcheck is the "acked writes survive" checker for tests of a
// replicated block device: it writes unique patterns (block index,
// generation, random tag) over NBD, records every write the server
// acknowledged (and which of them a FLUSH or FUA made durable), and later
// reads every block back and reports any acknowledged write that is gone.
package ackcheck

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/nbdclient"
)

// BlockSize is the unit of every write and check.
const BlockSize = 4096

// Checker tracks the writes to blocks [Base, Base+Blocks) of an export
// (block numbers below are relative to Base).
type Checker struct {
	Base, Blocks int
	// FUAEvery: every n-th write carries FUA; FlushEvery: a FLUSH after
	// every n acknowledged writes (0: never).
	FUAEvery, FlushEvery int

	gen atomic.Uint64

	mu       sync.Mutex
	busy     map[int]bool
	acked    map[int]write   // the last acknowledged write of each block
	unsure   map[int][]write // writes that failed or got no reply: may or may not be there
	durable  map[int]uint64  // the generation a FLUSH/FUA made durable
	rng      uint64
	stats    Stats
	sinceFlu int
}

type write struct{ gen, tag uint64 }

// Stats counts what the checker did.
type Stats struct {
	Acked, FUA, Flushes, Failed uint64
	DurableBlocks               int
	MaxLatency                  time.Duration // the longest wait for one reply
	Checked, Written, Zero      int           // blocks read back by Verify
}

// New returns a checker for blocks [0, blocks).
func New(blocks int) *Checker {
	var s [8]byte
	_, _ = rand.Read(s[:])
	return &Checker{Blocks: blocks, FUAEvery: 8, FlushEvery: 64, busy: map[int]bool{}, acked: map[int]write{},
		unsure: map[int][]write{}, durable: map[int]uint64{}, rng: binary.LittleEndian.Uint64(s[:]) | 1}
}

// WithBase sets Base (blocks [base, base+Blocks)) and returns k.
func (k *Checker) WithBase(base int) *Checker { k.Base = base; return k }

// Pattern is block idx's content for write (gen, tag).
func Pattern(idx int, gen, tag uint64) []byte {
	b := make([]byte, BlockSize)
	binary.LittleEndian.PutUint64(b[0:], uint64(idx))
	binary.LittleEndian.PutUint64(b[8:], gen)
	binary.LittleEndian.PutUint64(b[16:], tag)
	x := uint64(idx)*0x9e3779b97f4a7c15 ^ gen*0xbf58476d1ce4e5b9 ^ tag
	for i := 24; i+8 <= BlockSize; i += 8 {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		binary.LittleEndian.PutUint64(b[i:], z^z>>31)
	}
	return b
}

func (k *Checker) next() uint64 {
	k.rng ^= k.rng << 13
	k.rng ^= k.rng >> 7
	k.rng ^= k.rng << 17
	return k.rng
}

// pick reserves a block no other writer has in flight (two writes in flight
// to one block could complete in either order).
func (k *Checker) pick() (int, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		i := int(k.next() % uint64(k.Blocks))
		if !k.busy[i] {
			k.busy[i] = true
			return i, k.next()
		}
	}
}

// Run writes with inflight concurrent writers, at most rate writes per
// second in all (0: unlimited), until ctx ends or a request fails (that
// error is returned; writes not acknowledged are recorded as unsure).
func (k *Checker) Run(ctx context.Context, c *nbdclient.Client, inflight, rate int) error {
	if int64(k.Base+k.Blocks)*BlockSize > c.Size() {
		return fmt.Errorf("ackcheck: blocks %d..%d do not fit the %d-byte export", k.Base, k.Base+k.Blocks-1, c.Size())
	}
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Second / time.Duration(rate))
		defer t.Stop()
		tick = t.C
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, inflight)
	for range inflight {
		go func() { errc <- k.writer(ctx, c, tick) }()
	}
	var first error
	for range inflight {
		if err := <-errc; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

func (k *Checker) writer(ctx context.Context, c *nbdclient.Client, tick <-chan time.Time) error {
	for {
		if tick != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-tick:
			}
		} else if ctx.Err() != nil {
			return nil
		}
		idx, tag := k.pick()
		gen := k.gen.Add(1)
		fua := k.FUAEvery > 0 && gen%uint64(k.FUAEvery) == 0
		t0 := time.Now()
		err := c.WriteAt(Pattern(idx, gen, tag), int64(k.Base+idx)*BlockSize, fua)
		lat := time.Since(t0)
		k.mu.Lock()
		delete(k.busy, idx)
		k.stats.MaxLatency = max(k.stats.MaxLatency, lat)
		if err != nil {
			k.stats.Failed++
			k.unsure[idx] = append(k.unsure[idx], write{gen, tag})
			k.mu.Unlock()
			return fmt.Errorf("write of block %d (generation %d): %w", idx, gen, err)
		}
		k.acked[idx] = write{gen, tag}
		k.stats.Acked++
		if fua {
			k.stats.FUA++
			k.durable[idx] = gen
		}
		k.sinceFlu++
		flush := k.FlushEvery > 0 && k.sinceFlu >= k.FlushEvery
		var snap map[int]write
		if flush {
			k.sinceFlu = 0
			snap = make(map[int]write, len(k.acked))
			for i, w := range k.acked {
				snap[i] = w
			}
		}
		k.mu.Unlock()
		if flush {
			// Every write acknowledged before the FLUSH was sent is durable
			// once it is answered.
			if err := c.Flush(); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
			k.mu.Lock()
			k.stats.Flushes++
			for i, w := range snap {
				k.durable[i] = max(k.durable[i], w.gen)
			}
			k.mu.Unlock()
		}
	}
}

// Stats returns the counters so far.
func (k *Checker) Stats() Stats {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.stats
	s.DurableBlocks = len(k.durable)
	return s
}

// Verify reads every block back through c and checks it holds its last
// acknowledged write (or, for a block whose last write got no answer, that
// write), and that blocks never written are zero. It returns every
// problem found (nil: every acknowledged write is there).
func (k *Checker) Verify(c *nbdclient.Client) error {
	const per = 64
	var errs []error
	buf := make([]byte, per*BlockSize)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.stats.Checked, k.stats.Written, k.stats.Zero = 0, 0, 0
	for b0 := 0; b0 < k.Blocks; b0 += per {
		n := min(per, k.Blocks-b0)
		if err := c.ReadAt(buf[:n*BlockSize], int64(k.Base+b0)*BlockSize); err != nil {
			return errors.Join(append(errs, fmt.Errorf("read blocks %d..%d: %w", b0, b0+n-1, err))...)
		}
		for j := range n {
			idx := b0 + j
			got := buf[j*BlockSize : (j+1)*BlockSize]
			k.stats.Checked++
			if err := k.checkBlock(idx, got); err != nil {
				errs = append(errs, err)
				if len(errs) >= 20 {
					return errors.Join(append(errs, errors.New("ackcheck: stopped after 20 bad blocks"))...)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func (k *Checker) checkBlock(idx int, got []byte) error {
	w, ok := k.acked[idx]
	cands := append([]write(nil), k.unsure[idx]...)
	if ok {
		cands = append(cands, w)
	}
	for _, c := range cands {
		if c.gen < w.gen {
			continue // an older unsure write was overwritten by an acked one
		}
		if string(got) == string(Pattern(idx, c.gen, c.tag)) {
			k.stats.Written++
			return nil
		}
	}
	if !ok && allZero(got) {
		k.stats.Zero++
		return nil
	}
	gi, gg := binary.LittleEndian.Uint64(got[0:]), binary.LittleEndian.Uint64(got[8:])
	what := "never written: want zeroes"
	if ok {
		what = fmt.Sprintf("want generation %d (durable up to %d)", w.gen, k.durable[idx])
	}
	return fmt.Errorf("block %d: holds block %d generation %d (zero: %v): %s", idx, gi, gg, allZero(got), what)
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

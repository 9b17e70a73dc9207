package vdisk

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
)

// Sum is the checksum of one region (SHA-256: collisions must not hide a
// difference between the copies; hardware accelerated on x86).
type Sum [sha256.Size]byte

// Summer computes per-region checksums of one copy's data. The local
// implementation reads a file; the runtime's remote one asks the peer over
// the CoServer link, so only checksums cross it.
type Summer interface {
	// Sums returns the checksums of the regions of size region starting at
	// off, covering [off, off+n); the last region may be short.
	Sums(ctx context.Context, off, n, region int64) ([]Sum, error)
}

// ReaderSummer is a Summer over an io.ReaderAt (a Disk, a file).
type ReaderSummer struct {
	R io.ReaderAt
}

func (s ReaderSummer) Sums(ctx context.Context, off, n, region int64) ([]Sum, error) {
	if region <= 0 {
		return nil, fmt.Errorf("region size %d is not positive", region)
	}
	out := make([]Sum, 0, ceilDiv(n, region))
	buf := make([]byte, region)
	for pos := off; pos < off+n; pos += region {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k := min(region, off+n-pos)
		if _, err := s.R.ReadAt(buf[:k], pos); err != nil {
			return nil, fmt.Errorf("checksum region [%d, %d): %w", pos, pos+k, err)
		}
		out = append(out, sha256.Sum256(buf[:k]))
	}
	return out, nil
}

// Range is a byte range of the data area.
type Range struct {
	Off, Len int64
}

// VerifyOptions tune Verify.
type VerifyOptions struct {
	Region int64 // bytes per checksum; 0: 1 MiB
	Batch  int64 // regions per request; 0: 64
	// Progress, if set, is called after each batch with bytes compared.
	Progress func(done int64)
}

// Verify compares two copies of size bytes by per-region checksums and
// returns the differing regions, merged where adjacent. Both sides' sums
// for a batch are computed concurrently.
func Verify(ctx context.Context, a, b Summer, size int64, o VerifyOptions) ([]Range, error) {
	region := o.Region
	if region == 0 {
		region = 1 << 20
	}
	batch := o.Batch
	if batch == 0 {
		batch = 64
	}
	var diffs []Range
	step := region * batch
	for off := int64(0); off < size; off += step {
		n := min(step, size-off)
		type res struct {
			s   []Sum
			err error
		}
		ch := make(chan res, 1)
		go func() {
			s, err := b.Sums(ctx, off, n, region)
			ch <- res{s, err}
		}()
		sa, errA := a.Sums(ctx, off, n, region)
		rb := <-ch
		if errA != nil {
			return diffs, fmt.Errorf("copy A: %w", errA)
		}
		if rb.err != nil {
			return diffs, fmt.Errorf("copy B: %w", rb.err)
		}
		if len(sa) != len(rb.s) || int64(len(sa)) != ceilDiv(n, region) {
			return diffs, fmt.Errorf("checksums for [%d, %d): got %d and %d, want %d", off, off+n, len(sa), len(rb.s), ceilDiv(n, region))
		}
		for i := range sa {
			if sa[i] == rb.s[i] {
				continue
			}
			r := Range{off + int64(i)*region, min(region, size-off-int64(i)*region)}
			if k := len(diffs) - 1; k >= 0 && diffs[k].Off+diffs[k].Len == r.Off {
				diffs[k].Len += r.Len
				continue
			}
			diffs = append(diffs, r)
		}
		if o.Progress != nil {
			o.Progress(off + n)
		}
	}
	return diffs, nil
}

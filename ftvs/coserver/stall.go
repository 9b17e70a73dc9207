package coserver

import (
	"crypto/sha256"
	"io"
	"time"
)

// StreamResult describes a stream read to its end.
type StreamResult struct {
	Bytes    int64
	Sum      [32]byte
	MaxStall time.Duration // longest gap between two arrivals after the first
	StallAt  int64         // bytes received when the longest gap ended
	Elapsed  time.Duration
	Err      error
	// Gaps lists every gap of at least GapThreshold (at most maxGaps), so a
	// caller can pick the one around a failover from the other pauses a
	// client has (curl's --limit-rate sleeps, for one).
	Gaps []Gap
}

// Gap is a pause between two arrivals.
type Gap struct {
	Start time.Time
	Len   time.Duration
}

// GapThreshold is the shortest gap StreamResult.Gaps records.
const GapThreshold = 20 * time.Millisecond

const maxGaps = 4096

// StallAround is the longest gap that ends after t and starts no later than
// within seconds after it: the stall a failover at time t caused.
func (r *StreamResult) StallAround(t time.Time, within time.Duration) time.Duration {
	var m time.Duration
	for _, g := range r.Gaps {
		if g.Start.Add(g.Len).After(t) && g.Start.Before(t.Add(within)) && g.Len > m {
			m = g.Len
		}
	}
	return m
}

// MeasureStream reads r to its end, copying to w, hashing and timing the
// gaps between arrivals (the stall a client sees during a failover).
func MeasureStream(r io.Reader, w io.Writer) StreamResult {
	var res StreamResult
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var first, last time.Time
	for {
		n, err := r.Read(buf)
		if n > 0 {
			now := time.Now()
			if first.IsZero() {
				first = now
			} else if gap := now.Sub(last); gap >= GapThreshold {
				if gap > res.MaxStall {
					res.MaxStall, res.StallAt = gap, res.Bytes
				}
				if len(res.Gaps) < maxGaps {
					res.Gaps = append(res.Gaps, Gap{Start: last, Len: gap})
				}
			}
			last = now
			h.Write(buf[:n])
			if _, werr := w.Write(buf[:n]); werr != nil && res.Err == nil {
				res.Err = werr
			}
			res.Bytes += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			res.Err = err
			break
		}
	}
	copy(res.Sum[:], h.Sum(nil))
	if !first.IsZero() {
		res.Elapsed = last.Sub(first)
	}
	return res
}

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
			} else if gap := now.Sub(last); gap > res.MaxStall {
				res.MaxStall, res.StallAt = gap, res.Bytes
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

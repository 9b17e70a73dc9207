package vbootdisk

import "fmt"

// A cursor remembers where in a cluster chain the last access was, so that
// streaming a file in chunks walks its chain once, not once per chunk.
// Chains only grow at their tails while cursors live; every free drops them.
type cursor struct {
	first   uint32
	index   uint32 // position in the chain
	cluster uint32
	used    uint64
}

const chainCursors = 8

type chains struct {
	fat     *fatTable
	cursors [chainCursors]cursor
	tick    uint64
}

// next follows the chain from c: ok is false at the chain's end.
func (ch *chains) next(c uint32) (uint32, bool, error) {
	v, err := ch.fat.get(c)
	if err != nil {
		return 0, false, err
	}
	switch {
	case v >= fatEOCMin:
		return 0, false, nil
	case v == fatBad:
		return 0, false, fmt.Errorf("%w: cluster %d links to a cluster marked bad", ErrCorrupt, c)
	case v < 2 || v > ch.fat.g.maxCluster():
		return 0, false, fmt.Errorf("%w: cluster %d links to %d, outside 2..%d", ErrCorrupt, c, v, ch.fat.g.maxCluster())
	}
	return v, true, nil
}

func (ch *chains) checkFirst(first uint32) error {
	if first < 2 || first > ch.fat.g.maxCluster() {
		return fmt.Errorf("%w: chain starts at cluster %d, outside 2..%d", ErrCorrupt, first, ch.fat.g.maxCluster())
	}
	return nil
}

// start returns the best known position in first's chain at or before index.
func (ch *chains) start(first, index uint32) *cursor {
	ch.tick++
	victim := 0
	var best *cursor
	for i := range ch.cursors {
		c := &ch.cursors[i]
		if c.first == first && c.index <= index && (best == nil || c.index > best.index) {
			best = c
		}
		if c.used < ch.cursors[victim].used {
			victim = i
		}
	}
	if best == nil {
		best = &ch.cursors[victim]
		*best = cursor{first: first, index: 0, cluster: first}
	}
	best.used = ch.tick
	return best
}

// at returns the index-th cluster of first's chain; ok is false when the
// chain is shorter.
func (ch *chains) at(first, index uint32) (uint32, bool, error) {
	if err := ch.checkFirst(first); err != nil {
		return 0, false, err
	}
	cur := ch.start(first, index)
	for cur.index < index {
		n, ok, err := ch.next(cur.cluster)
		if err != nil || !ok {
			return 0, false, err
		}
		if cur.index >= ch.fat.g.clusters {
			return 0, false, fmt.Errorf("%w: cluster chain from %d loops", ErrCorrupt, first)
		}
		cur.cluster, cur.index = n, cur.index+1
	}
	return cur.cluster, true, nil
}

// tail returns the last cluster of first's chain and the chain's length.
func (ch *chains) tail(first uint32) (uint32, uint32, error) {
	if err := ch.checkFirst(first); err != nil {
		return 0, 0, err
	}
	cur := ch.start(first, ^uint32(0))
	for {
		n, ok, err := ch.next(cur.cluster)
		if err != nil {
			return 0, 0, err
		}
		if !ok {
			return cur.cluster, cur.index + 1, nil
		}
		if cur.index >= ch.fat.g.clusters {
			return 0, 0, fmt.Errorf("%w: cluster chain from %d loops", ErrCorrupt, first)
		}
		cur.cluster, cur.index = n, cur.index+1
	}
}

// run returns how many clusters from c on (at most max) follow each other
// on disk, so one device access can cover them.
func (ch *chains) run(c uint32, max uint32) (uint32, error) {
	n := uint32(1)
	for n < max {
		nx, ok, err := ch.next(c)
		if err != nil {
			return 0, err
		}
		if !ok || nx != c+1 {
			break
		}
		c, n = nx, n+1
	}
	return n, nil
}

// extend appends n clusters to a chain ending at last (0 for a new chain)
// and returns the chain's first cluster when it was new. It refuses before
// changing anything when fewer than n clusters are free. Clusters are
// allocated lowest-free first: the result depends only on the disk.
func (ch *chains) extend(last uint32, n uint32) (uint32, error) {
	if n == 0 {
		return 0, nil
	}
	if ch.fat.free < n {
		return 0, fmt.Errorf("%w: %d clusters needed, %d free", ErrNoSpace, n, ch.fat.free)
	}
	var first uint32
	for i := uint32(0); i < n; i++ {
		c := ch.fat.lowFree
		if c == 0 {
			return 0, fmt.Errorf("%w: free count says %d but no free cluster found", ErrCorrupt, ch.fat.free)
		}
		if err := ch.fat.set(c, fatEOC); err != nil {
			return 0, err
		}
		if last != 0 {
			if err := ch.fat.set(last, c); err != nil {
				return 0, err
			}
		} else {
			first = c
		}
		last = c
	}
	return first, nil
}

// truncate keeps the first keep clusters of first's chain and frees the
// rest (all of it when keep is 0).
func (ch *chains) truncate(first uint32, keep uint32) error {
	if err := ch.checkFirst(first); err != nil {
		return err
	}
	c := first
	if keep > 0 {
		var ok bool
		var err error
		if c, ok, err = ch.at(first, keep-1); err != nil {
			return err
		} else if !ok {
			return nil // already that short
		}
		nx, more, err := ch.next(c)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		if err := ch.fat.set(c, fatEOC); err != nil {
			return err
		}
		c = nx
	}
	ch.cursors = [chainCursors]cursor{}
	for steps := uint32(0); ; steps++ {
		if steps > ch.fat.g.clusters {
			return fmt.Errorf("%w: cluster chain from %d loops", ErrCorrupt, first)
		}
		nx, more, err := ch.next(c)
		if err != nil {
			return err
		}
		if err := ch.fat.set(c, 0); err != nil {
			return err
		}
		if !more {
			return nil
		}
		c = nx
	}
}

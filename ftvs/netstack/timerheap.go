package netstack

import "sort"

// The timer heap holds every socket with a pending timer, ordered by
// (deadline, id), so the stack's next deadline costs O(1) and a timer
// update O(log n) however many sockets (TIME-WAIT included) exist. It is
// derived state: rebuilt on Restore, and due sockets are always run in id
// order, so its internal layout never reaches an output.

func dlLess(a, b *tcb) bool {
	return a.deadline < b.deadline || a.deadline == b.deadline && a.id < b.id
}

func (s *Stack) heapUp(i int) {
	h := s.dl
	for i > 0 {
		p := (i - 1) / 2
		if !dlLess(h[i], h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		h[i].heapIdx, h[p].heapIdx = i, p
		i = p
	}
}

func (s *Stack) heapDown(i int) {
	h := s.dl
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && dlLess(h[r], h[l]) {
			m = r
		}
		if !dlLess(h[m], h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		h[i].heapIdx, h[m].heapIdx = i, m
		i = m
	}
}

func (s *Stack) heapRemove(c *tcb) {
	i := c.heapIdx
	if i < 0 {
		return
	}
	last := len(s.dl) - 1
	if i != last {
		s.dl[i] = s.dl[last]
		s.dl[i].heapIdx = i
	}
	s.dl[last] = nil
	s.dl = s.dl[:last]
	c.heapIdx = -1
	if i < len(s.dl) {
		s.heapDown(i)
		s.heapUp(i)
	}
}

// setDeadline files c under deadline d (0: no timer).
func (s *Stack) setDeadline(c *tcb, d int64) {
	if d == c.deadline && (d == 0) == (c.heapIdx < 0) {
		return
	}
	c.deadline = d
	switch {
	case c.freed || d == 0:
		s.heapRemove(c)
	case c.heapIdx < 0:
		c.heapIdx = len(s.dl)
		s.dl = append(s.dl, c)
		s.heapUp(c.heapIdx)
	default:
		s.heapDown(c.heapIdx)
		s.heapUp(c.heapIdx)
	}
}

// popDue removes every socket whose deadline has come and returns them in id order.
func (s *Stack) popDue(now int64) []*tcb {
	var due []*tcb
	for len(s.dl) > 0 && s.dl[0].deadline <= now {
		c := s.dl[0]
		s.heapRemove(c)
		c.deadline = 0 // re-filed by updateDeadline after its timers ran
		due = append(due, c)
	}
	sort.Slice(due, func(i, j int) bool { return due[i].id < due[j].id })
	return due
}

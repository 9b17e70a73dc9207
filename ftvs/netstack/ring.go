package netstack

// ring is a byte FIFO that grows on demand up to max bytes, so idle
// connections cost little memory. Data lives in buf[head:] wrapping to buf[0:].
type ring struct {
	buf  []byte
	head int
	n    int
	max  int
}

func (r *ring) Len() int  { return r.n }
func (r *ring) Free() int { return r.max - r.n }

// grow makes room for at least need bytes in total (need <= max).
func (r *ring) grow(need int) {
	if need <= len(r.buf) {
		return
	}
	c := len(r.buf) * 2
	if c < 4096 {
		c = 4096
	}
	for c < need {
		c *= 2
	}
	if c > r.max {
		c = r.max
	}
	nb := make([]byte, c)
	r.copyOut(nb[:len(r.buf)], 0) // everything, including out-of-order bytes beyond n
	r.buf, r.head = nb, 0
}

// Write appends as much of p as fits and returns how many bytes it took.
func (r *ring) Write(p []byte) int {
	if len(p) > r.Free() {
		p = p[:r.Free()]
	}
	if len(p) == 0 {
		return 0
	}
	r.grow(r.n + len(p))
	r.copyIn(p, r.n)
	r.n += len(p)
	return len(p)
}

// WriteAt stores p at offset off beyond the current end without making it
// readable (out-of-order data); the caller ensures off+len(p) <= Free().
func (r *ring) WriteAt(p []byte, off int) {
	if len(p) == 0 {
		return
	}
	r.grow(r.n + off + len(p))
	r.copyIn(p, r.n+off)
}

// Commit makes n bytes written by WriteAt readable.
func (r *ring) Commit(n int) { r.n += n }

// copyIn writes p at logical position pos (from head).
func (r *ring) copyIn(p []byte, pos int) {
	i := (r.head + pos) % len(r.buf)
	k := copy(r.buf[i:], p)
	copy(r.buf, p[k:])
}

// copyOut copies len(dst) bytes from logical position pos into dst.
func (r *ring) copyOut(dst []byte, pos int) {
	if len(dst) == 0 {
		return
	}
	i := (r.head + pos) % len(r.buf)
	k := copy(dst, r.buf[i:])
	copy(dst[k:], r.buf)
}

// halves returns the first n bytes from head as at most two slices of
// buf (no copy): the ring wraps at most once.
func (r *ring) halves(n int) (a, b []byte) {
	if n == 0 {
		return nil, nil
	}
	i := r.head % len(r.buf)
	if k := len(r.buf) - i; n > k {
		return r.buf[i:], r.buf[:n-k]
	}
	return r.buf[i : i+n], nil
}

// Peek copies bytes at logical position pos into dst without consuming.
func (r *ring) Peek(dst []byte, pos int) { r.copyOut(dst, pos) }

// Read consumes up to len(p) bytes.
func (r *ring) Read(p []byte) int {
	if len(p) > r.n {
		p = p[:r.n]
	}
	r.copyOut(p, 0)
	r.Discard(len(p))
	return len(p)
}

// Discard drops n bytes from the front.
func (r *ring) Discard(n int) {
	if n > r.n {
		n = r.n
	}
	if n <= 0 {
		return
	}
	r.n -= n
	r.head = (r.head + n) % len(r.buf)
}

// release gives a big idle buffer back; only when nothing (not even
// out-of-order data beyond Len) is stored.
func (r *ring) release() {
	if r.n == 0 && len(r.buf) > 64<<10 {
		r.buf, r.head = nil, 0
	}
}

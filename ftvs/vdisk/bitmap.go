package vdisk

import (
	"fmt"
	"math/bits"
)

// Bitmap is a set of fixed-size regions of a data area, one bit per region,
// bit i in byte i/8 at position i%8 (the on-disk order). It is plain data;
// Disk guards it with its lock.
type Bitmap struct {
	gran  int64
	size  int64
	nbits int64
	b     []byte
	count int64
}

// NewBitmap covers size bytes with one bit per gran bytes.
func NewBitmap(size, gran int64) *Bitmap {
	n := ceilDiv(size, gran)
	return &Bitmap{gran: gran, size: size, nbits: n, b: make([]byte, ceilDiv(n, 8))}
}

// Granularity is the bytes per bit.
func (m *Bitmap) Granularity() int64 { return m.gran }

// Len is the number of bits.
func (m *Bitmap) Len() int64 { return m.nbits }

// Count is the number of set bits.
func (m *Bitmap) Count() int64 { return m.count }

// DirtyBytes is the data the set bits cover.
func (m *Bitmap) DirtyBytes() int64 {
	if m.count == 0 {
		return 0
	}
	n := m.count * m.gran
	if last := m.nbits - 1; m.Test(last) {
		n -= m.nbits*m.gran - m.size
	}
	return n
}

// Bytes is the raw bitmap (shared, not a copy).
func (m *Bitmap) Bytes() []byte { return m.b }

// bitRange is the bits covering [off, off+n).
func (m *Bitmap) bitRange(off, n int64) (first, last int64) {
	if n <= 0 {
		return 0, -1
	}
	if off < 0 {
		n += off
		off = 0
	}
	end := off + n
	if end > m.size {
		end = m.size
	}
	if off >= end {
		return 0, -1
	}
	return off / m.gran, (end - 1) / m.gran
}

// Test reports bit i.
func (m *Bitmap) Test(i int64) bool {
	return i >= 0 && i < m.nbits && m.b[i/8]&(1<<(i%8)) != 0
}

// SetBit sets bit i and reports whether it was clear.
func (m *Bitmap) SetBit(i int64) bool {
	if m.Test(i) || i < 0 || i >= m.nbits {
		return false
	}
	m.b[i/8] |= 1 << (i % 8)
	m.count++
	return true
}

// ClearBit clears bit i and reports whether it was set.
func (m *Bitmap) ClearBit(i int64) bool {
	if !m.Test(i) {
		return false
	}
	m.b[i/8] &^= 1 << (i % 8)
	m.count--
	return true
}

// Mark sets the bits covering [off, off+n) and returns how many were clear.
func (m *Bitmap) Mark(off, n int64) int64 {
	first, last := m.bitRange(off, n)
	var k int64
	for i := first; i <= last; i++ {
		if m.SetBit(i) {
			k++
		}
	}
	return k
}

// MarkAll sets every bit.
func (m *Bitmap) MarkAll() { m.Mark(0, m.size) }

// Clear clears the bits covering [off, off+n).
func (m *Bitmap) Clear(off, n int64) {
	first, last := m.bitRange(off, n)
	for i := first; i <= last; i++ {
		m.ClearBit(i)
	}
}

// Any reports whether a bit covering [off, off+n) is set.
func (m *Bitmap) Any(off, n int64) bool {
	first, last := m.bitRange(off, n)
	if first > last {
		return false
	}
	i, ok := m.NextSet(first)
	return ok && i <= last
}

// NextSet returns the first set bit at or after i.
func (m *Bitmap) NextSet(i int64) (int64, bool) {
	if i < 0 {
		i = 0
	}
	for i < m.nbits {
		if i%8 == 0 && m.b[i/8] == 0 {
			// Skip whole zero bytes (and words) quickly.
			j := i / 8
			for j+8 <= int64(len(m.b)) && allZero8(m.b[j:j+8]) {
				j += 8
			}
			for j < int64(len(m.b)) && m.b[j] == 0 {
				j++
			}
			if j >= int64(len(m.b)) {
				return 0, false
			}
			i = j * 8
		}
		by := m.b[i/8] >> (i % 8)
		if by != 0 {
			i += int64(bits.TrailingZeros8(by))
			return i, i < m.nbits
		}
		i = (i/8 + 1) * 8
	}
	return 0, false
}

func allZero8(b []byte) bool {
	return b[0]|b[1]|b[2]|b[3]|b[4]|b[5]|b[6]|b[7] == 0
}

// Load replaces the bits with an on-disk image of at least Len bits; bits
// beyond Len must be zero.
func (m *Bitmap) Load(img []byte) error {
	if int64(len(img)) < int64(len(m.b)) {
		return fmt.Errorf("bitmap image is %d bytes, want at least %d", len(img), len(m.b))
	}
	copy(m.b, img)
	for i := int64(len(m.b)); i < int64(len(img)); i++ {
		if img[i] != 0 {
			return fmt.Errorf("bitmap byte %d is %#02x beyond the last region", i, img[i])
		}
	}
	if tail := m.nbits % 8; tail != 0 && m.b[len(m.b)-1]>>tail != 0 {
		return fmt.Errorf("bitmap has bits set beyond region %d", m.nbits-1)
	}
	m.count = 0
	for _, c := range m.b {
		m.count += int64(bits.OnesCount8(c))
	}
	return nil
}

// Ranges lists the set bits as merged byte ranges [off, off+len) of data.
func (m *Bitmap) Ranges() [][2]int64 {
	var out [][2]int64
	for i, ok := m.NextSet(0); ok; i, ok = m.NextSet(i + 1) {
		off := i * m.gran
		n := min(m.gran, m.size-off)
		if k := len(out) - 1; k >= 0 && out[k][0]+out[k][1] == off {
			out[k][1] += n
			continue
		}
		out = append(out, [2]int64{off, n})
	}
	return out
}

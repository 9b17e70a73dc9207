// Package snap is the explicit, versioned binary encoding used for every
// snapshot of the deterministic core. It is deliberately dumb: fixed-width
// little-endian integers and length-prefixed byte strings, written and read in
// the same order by hand-written Encode/Decode methods. No reflection, no maps,
// no pointers: the bytes depend only on the state, never on memory layout.
package snap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
)

// Writer appends fields to a byte slice.
type Writer struct {
	buf []byte
}

// NewWriter returns a Writer with room for about sizeHint bytes.
func NewWriter(sizeHint int) *Writer { return &Writer{buf: make([]byte, 0, sizeHint)} }

// Bytes returns the encoding so far.
func (w *Writer) Bytes() []byte { return w.buf }

// Len returns how many bytes have been written.
func (w *Writer) Len() int { return len(w.buf) }

func (w *Writer) U8(v uint8)   { w.buf = append(w.buf, v) }
func (w *Writer) U16(v uint16) { w.buf = binary.LittleEndian.AppendUint16(w.buf, v) }
func (w *Writer) U32(v uint32) { w.buf = binary.LittleEndian.AppendUint32(w.buf, v) }
func (w *Writer) U64(v uint64) { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }
func (w *Writer) I64(v int64)  { w.U64(uint64(v)) }
func (w *Writer) Int(v int)    { w.U64(uint64(int64(v))) }

// Bool writes 0 or 1.
func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// Blob writes a length-prefixed byte string.
func (w *Writer) Blob(b []byte) {
	w.U32(uint32(len(b)))
	w.buf = append(w.buf, b...)
}

// Blob2 writes a followed by b as one length-prefixed byte string, the same
// bytes Blob(append(a, b...)) writes, without the intermediate copy (a
// ring buffer's two halves).
func (w *Writer) Blob2(a, b []byte) {
	w.U32(uint32(len(a) + len(b)))
	w.buf = append(append(w.buf, a...), b...)
}

// Grow makes room for n more bytes, so that a writer whose final size is
// known (or guessed from the last snapshot) copies its buffer at most once.
func (w *Writer) Grow(n int) { w.buf = slices.Grow(w.buf, n) }

// String writes a length-prefixed string.
func (w *Writer) String(s string) {
	w.U32(uint32(len(s)))
	w.buf = append(w.buf, s...)
}

// Section writes a tagged, versioned, length-prefixed sub-record so that a
// reader can skip sections it does not know (rolling upgrade: a newer runtime
// reads an older snapshot; an older one can at least say what it cannot read).
func (w *Writer) Section(tag string, version uint16, body func(*Writer)) {
	w.String(tag)
	w.U16(version)
	lenAt := len(w.buf)
	w.U32(0)
	start := len(w.buf)
	body(w)
	binary.LittleEndian.PutUint32(w.buf[lenAt:], uint32(len(w.buf)-start))
}

// ErrShort is returned when the input ends before a field does.
var ErrShort = errors.New("snapshot truncated")

// Reader reads fields back. The first error sticks: every later read returns
// a zero value, and Err reports the first failure with the field offset.
type Reader struct {
	buf []byte
	off int
	err error
}

// NewReader reads from b.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Err returns the first error met, if any.
func (r *Reader) Err() error { return r.err }

// Remaining returns how many bytes are left.
func (r *Reader) Remaining() int { return len(r.buf) - r.off }

// Fail records err (wrapped with the offset) unless an error is already set.
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %w", r.off, err)
	}
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.buf)-r.off < n {
		r.Fail(ErrShort)
		return nil
	}
	b := r.buf[r.off : r.off+n]
	r.off += n
	return b
}

func (r *Reader) U8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *Reader) U16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) U32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *Reader) U64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

func (r *Reader) I64() int64 { return int64(r.U64()) }
func (r *Reader) Int() int   { return int(int64(r.U64())) }

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 {
		r.Fail(fmt.Errorf("bool field holds %d", v))
	}
	return v == 1
}

// Blob reads a length-prefixed byte string (a copy), refusing lengths above max.
func (r *Reader) Blob(max int) []byte {
	n := int(r.U32())
	if r.err == nil && n > max {
		r.Fail(fmt.Errorf("blob of %d bytes exceeds limit %d", n, max))
		return nil
	}
	b := r.take(n)
	if b == nil {
		return nil
	}
	out := make([]byte, n)
	copy(out, b)
	return out
}

// String reads a length-prefixed string, refusing lengths above max.
func (r *Reader) String(max int) string { return string(r.Blob(max)) }

// Section reads a section written by Writer.Section. body receives a reader
// limited to the section and its version; the section must be consumed exactly.
func (r *Reader) Section(tag string, maxVersion uint16, body func(r *Reader, version uint16)) {
	got := r.String(64)
	if r.err == nil && got != tag {
		r.Fail(fmt.Errorf("expected section %q, found %q", tag, got))
		return
	}
	ver := r.U16()
	n := int(r.U32())
	if r.err == nil && ver > maxVersion {
		r.Fail(fmt.Errorf("section %q has version %d, this build reads up to %d", tag, ver, maxVersion))
		return
	}
	b := r.take(n)
	if r.err != nil {
		return
	}
	sub := &Reader{buf: b}
	body(sub, ver)
	if sub.err == nil && sub.Remaining() != 0 {
		sub.Fail(fmt.Errorf("section %q has %d unread bytes", tag, sub.Remaining()))
	}
	if sub.err != nil {
		r.err = fmt.Errorf("section %q: %w", tag, sub.err)
	}
}

// Hash is the 64-bit FNV-1a hash used for state and output hashes.
func Hash(b []byte) uint64 {
	h := fnv.New64a()
	h.Write(b)
	return h.Sum64()
}

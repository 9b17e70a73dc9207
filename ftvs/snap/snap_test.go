package snap

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	w := NewWriter(0)
	w.U8(7)
	w.U16(0xBEEF)
	w.U32(1 << 31)
	w.U64(1<<63 + 5)
	w.I64(-42)
	w.Bool(true)
	w.Blob([]byte("frame"))
	w.Section("tcp", 2, func(w *Writer) { w.U32(99); w.String("x") })
	w.String("tail")

	r := NewReader(w.Bytes())
	if r.U8() != 7 || r.U16() != 0xBEEF || r.U32() != 1<<31 || r.U64() != 1<<63+5 || r.I64() != -42 || !r.Bool() {
		t.Fatal("scalar mismatch")
	}
	if !bytes.Equal(r.Blob(10), []byte("frame")) {
		t.Fatal("blob mismatch")
	}
	r.Section("tcp", 2, func(s *Reader, v uint16) {
		if v != 2 || s.U32() != 99 || s.String(5) != "x" {
			t.Fatal("section body mismatch")
		}
	})
	if r.String(10) != "tail" || r.Err() != nil || r.Remaining() != 0 {
		t.Fatalf("tail: err=%v remaining=%d", r.Err(), r.Remaining())
	}
}

func TestTruncatedIsErrorNotPanic(t *testing.T) {
	w := NewWriter(0)
	w.Blob([]byte("hello world"))
	for n := 0; n < len(w.Bytes()); n++ {
		r := NewReader(w.Bytes()[:n])
		r.Blob(100)
		if !errors.Is(r.Err(), ErrShort) {
			t.Fatalf("cut at %d: err=%v", n, r.Err())
		}
	}
}

func TestLimitsAndVersions(t *testing.T) {
	w := NewWriter(0)
	w.Blob(make([]byte, 50))
	if r := NewReader(w.Bytes()); r.Blob(49) != nil || r.Err() == nil {
		t.Fatal("blob over limit accepted")
	}
	w = NewWriter(0)
	w.Section("arp", 3, func(w *Writer) {})
	r := NewReader(w.Bytes())
	r.Section("arp", 2, func(*Reader, uint16) { t.Fatal("body ran for too-new version") })
	if r.Err() == nil {
		t.Fatal("newer section version accepted")
	}
	r = NewReader(w.Bytes())
	r.Section("tcp", 3, func(*Reader, uint16) {})
	if r.Err() == nil {
		t.Fatal("wrong tag accepted")
	}
}

func FuzzReader(f *testing.F) {
	w := NewWriter(0)
	w.Section("s", 1, func(w *Writer) { w.Blob([]byte("abc")); w.Bool(true) })
	f.Add(w.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(b)
		r.Section("s", 1, func(s *Reader, _ uint16) { s.Blob(1 << 20); s.Bool() })
		_ = r.Err()
	})
}

func TestBlob2AndGrow(t *testing.T) {
	w := NewWriter(0)
	w.Grow(100)
	if cap(w.Bytes()) < 100 {
		t.Fatalf("Grow(100): cap %d", cap(w.Bytes()))
	}
	w.U8(1)
	w.Blob2([]byte("ring "), []byte("halves"))
	w.Blob2(nil, nil)
	want := NewWriter(0)
	want.U8(1)
	want.Blob([]byte("ring halves"))
	want.Blob(nil)
	if !bytes.Equal(w.Bytes(), want.Bytes()) {
		t.Fatalf("Blob2 wrote %x, Blob writes %x", w.Bytes(), want.Bytes())
	}
	w.Grow(1 << 10)
	if !bytes.Equal(w.Bytes(), want.Bytes()) {
		t.Fatal("Grow changed the contents")
	}
}

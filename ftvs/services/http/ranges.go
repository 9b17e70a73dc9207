package http

import (
	"math"
	"strings"
)

// rangeResult is what a Range field asks of a file of a given size.
type rangeResult int

const (
	rangeIgnore        rangeResult = iota // serve the whole file (absent, invalid, or multiple ranges)
	rangeOK                               // serve [first, last]
	rangeUnsatisfiable                    // 416
)

// parseRange reads a Range field value (RFC 9110 14.1.2) for a file of size
// bytes. Only one byte range is served; several ranges and invalid syntax
// are ignored, which RFC 9110 14.2 allows.
func parseRange(v string, size int64) (first, last int64, res rangeResult) {
	unit, spec, ok := strings.Cut(v, "=")
	if !ok || !strings.EqualFold(strings.TrimSpace(unit), "bytes") {
		return 0, 0, rangeIgnore
	}
	spec = strings.Trim(spec, " \t")
	if strings.Contains(spec, ",") {
		return 0, 0, rangeIgnore
	}
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, 0, rangeIgnore
	}
	if a == "" { // suffix: the last b bytes
		n, ok := rangeNumber(b)
		if !ok {
			return 0, 0, rangeIgnore
		}
		if n == 0 || size == 0 {
			return 0, 0, rangeUnsatisfiable
		}
		if n > size {
			n = size
		}
		return size - n, size - 1, rangeOK
	}
	f, ok := rangeNumber(a)
	if !ok {
		return 0, 0, rangeIgnore
	}
	l := int64(math.MaxInt64)
	if b != "" {
		if l, ok = rangeNumber(b); !ok || l < f {
			return 0, 0, rangeIgnore
		}
	}
	if f >= size {
		return 0, 0, rangeUnsatisfiable
	}
	if l >= size {
		l = size - 1
	}
	return f, l, rangeOK
}

// rangeNumber reads 1*DIGIT, saturating at MaxInt64.
func rangeNumber(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(c) {
			return 0, false
		}
		if v > (math.MaxInt64-9)/10 {
			v = math.MaxInt64
			continue
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

package vbootdisk

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

const (
	maxNameUnits = 255 // UTF-16 code units in a long name
	lfnChars     = 13  // UTF-16 units per long-name slot
)

// shortChars are the characters a short (8.3) name may hold besides A-Z
// and 0-9.
const shortSpecial = "!#$%&'()-@^_`{}~"

func isShortChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(shortSpecial, c) >= 0
}

// checkName refuses names FAT cannot store or that Windows and Linux would
// read differently.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%w: name %q", fsapi.ErrInvalid, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: name %q is not valid UTF-8", fsapi.ErrInvalid, name)
	case strings.HasSuffix(name, " ") || strings.HasSuffix(name, "."):
		return fmt.Errorf("%w: name %q ends in a space or dot, which FAT drops", fsapi.ErrInvalid, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || strings.ContainsRune(`"*/:<>?\|`, r) {
			return fmt.Errorf("%w: name %q holds %q, not allowed in a FAT name", fsapi.ErrInvalid, name, r)
		}
	}
	if n := len(utf16.Encode([]rune(name))); n > maxNameUnits {
		return fmt.Errorf("%w: name %.20q... is %d UTF-16 units, FAT allows %d", fsapi.ErrInvalid, name, n, maxNameUnits)
	}
	return nil
}

// plainShort reports whether name fits a short entry by itself: an 8.3
// name whose base and extension are each all upper or all lower case. It
// returns the 11-byte name and the NTRes lower-case flags.
func plainShort(name string) (short [11]byte, ntres byte, ok bool) {
	base, ext := name, ""
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		base, ext = name[:i], name[i+1:]
	}
	if len(base) < 1 || len(base) > 8 || len(ext) > 3 || strings.IndexByte(base, '.') >= 0 || name[0] == '.' {
		return short, 0, false
	}
	fold := func(part string, dst []byte, lowerFlag byte) bool {
		lower, upper := false, false
		for i := 0; i < len(part); i++ {
			c := part[i]
			switch {
			case c >= 'a' && c <= 'z':
				lower = true
				c -= 'a' - 'A'
			case c >= 'A' && c <= 'Z':
				upper = true
			case !isShortChar(c):
				return false
			}
			dst[i] = c
		}
		if lower && upper {
			return false
		}
		if lower {
			ntres |= lowerFlag
		}
		return true
	}
	for i := range short {
		short[i] = ' '
	}
	if !fold(base, short[:8], 0x08) || !fold(ext, short[8:], 0x10) {
		return short, 0, false
	}
	if short[0] == 0xe5 {
		short[0] = 0x05
	}
	return short, ntres, true
}

// shortBasis is the 8.3 basis of a long name (upper case, invalid
// characters as '_', leading dots and all spaces dropped), before the
// numeric tail: up to 6 base characters and up to 3 extension characters.
func shortBasis(name string) (base, ext string) {
	name = strings.TrimLeft(name, ".")
	b, e := name, ""
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		b, e = name[:i], name[i+1:]
	}
	conv := func(s string, max int) string {
		var out []byte
		for _, r := range s {
			if len(out) == max {
				break
			}
			switch {
			case r == ' ' || r == '.':
				continue
			case r >= 'a' && r <= 'z':
				out = append(out, byte(r-'a'+'A'))
			case r < 0x80 && isShortChar(byte(r)):
				out = append(out, byte(r))
			default:
				out = append(out, '_')
			}
		}
		return string(out)
	}
	base, ext = conv(b, 6), conv(e, 3)
	if base == "" {
		base = "_"
	}
	return base, ext
}

// tailedShort builds BASIS~N.EXT as an 11-byte short name.
func tailedShort(base, ext string, n int) [11]byte {
	tail := "~" + strconv.Itoa(n)
	if len(base)+len(tail) > 8 {
		base = base[:8-len(tail)]
	}
	var s [11]byte
	for i := range s {
		s[i] = ' '
	}
	copy(s[:8], base+tail)
	copy(s[8:], ext)
	return s
}

// tailOf returns N when short is basis~N with this basis and extension.
func tailOf(short [11]byte, base, ext string) (int, bool) {
	var e [3]byte
	for i := range e {
		e[i] = ' '
	}
	copy(e[:], ext)
	if [3]byte(short[8:]) != e {
		return 0, false
	}
	b := strings.TrimRight(string(short[:8]), " ")
	i := strings.LastIndexByte(b, '~')
	if i < 1 || !strings.HasPrefix(base, b[:i]) {
		return 0, false
	}
	n, err := strconv.Atoi(b[i+1:])
	if err != nil || n < 1 || tailedShort(base, ext, n) != short {
		return 0, false
	}
	return n, true
}

// shortDisplay renders an on-disk short name ("NAME.EXT", with NTRes case).
func shortDisplay(s [11]byte, ntres byte) string {
	b := []byte(strings.TrimRight(string(s[:8]), " "))
	if len(b) > 0 && b[0] == 0x05 {
		b[0] = 0xe5
	}
	e := []byte(strings.TrimRight(string(s[8:]), " "))
	lower := func(p []byte) {
		for i, c := range p {
			if c >= 'A' && c <= 'Z' {
				p[i] = c + 'a' - 'A'
			}
		}
	}
	if ntres&0x08 != 0 {
		lower(b)
	}
	if ntres&0x10 != 0 {
		lower(e)
	}
	name := latin1(b)
	if len(e) > 0 {
		name += "." + latin1(e)
	}
	return name
}

// latin1 turns bytes >= 0x80 (an OEM code page we do not know) into
// their Latin-1 runes so the result is valid UTF-8.
func latin1(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func lfnChecksum(s [11]byte) byte {
	var sum byte
	for _, c := range s {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	return sum
}

// sameName compares names the way FAT does: case-insensitively.
func sameName(a, b string) bool { return strings.EqualFold(a, b) }

func utf16Units(s string) []uint16 { return utf16.Encode([]rune(s)) }

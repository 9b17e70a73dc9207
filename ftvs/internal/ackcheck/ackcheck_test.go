package ackcheck

import (
	"strings"
	"testing"
)

// TestCheckBlock: the verdicts Verify gives one block.
func TestCheckBlock(t *testing.T) {
	k := New(4)
	k.acked[0] = write{gen: 5, tag: 50}
	k.acked[1] = write{gen: 7, tag: 70}
	k.unsure[1] = []write{{gen: 9, tag: 90}, {gen: 3, tag: 30}}
	k.unsure[3] = []write{{gen: 11, tag: 110}}
	zero := make([]byte, BlockSize)
	for _, tc := range []struct {
		name string
		idx  int
		got  []byte
		want string // "" ok, else a substring of the error
	}{
		{"last acked write", 0, Pattern(0, 5, 50), ""},
		{"acked write gone (zeroes)", 0, zero, "want generation 5"},
		{"older write", 0, Pattern(0, 4, 40), "want generation 5"},
		{"right generation, wrong tag", 0, Pattern(0, 5, 51), "want generation 5"},
		{"another block's data", 0, Pattern(2, 5, 50), "holds block 2"},
		{"acked, a later unanswered write may be there", 1, Pattern(1, 9, 90), ""},
		{"acked write there, later unanswered one not", 1, Pattern(1, 7, 70), ""},
		{"an unanswered write older than the acked one", 1, Pattern(1, 3, 30), "want generation 7"},
		{"never written, zero", 2, zero, ""},
		{"never written, data", 2, Pattern(2, 1, 1), "never written"},
		{"only unanswered: either", 3, zero, ""},
		{"only unanswered: the write", 3, Pattern(3, 11, 110), ""},
	} {
		err := k.checkBlock(tc.idx, tc.got)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.want)
		}
	}
}

// TestPatternUnique: patterns differ with each of index, generation, tag.
func TestPatternUnique(t *testing.T) {
	a := string(Pattern(1, 2, 3))
	for _, b := range [][]byte{Pattern(2, 2, 3), Pattern(1, 3, 3), Pattern(1, 2, 4)} {
		if string(b) == a || string(b[24:]) == a[24:] {
			t.Fatal("patterns of different writes agree")
		}
	}
	if a != string(Pattern(1, 2, 3)) {
		t.Fatal("pattern not reproducible")
	}
}

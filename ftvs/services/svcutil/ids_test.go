package svcutil

import (
	"slices"
	"testing"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

func TestSortedAndDueIDs(t *testing.T) {
	m := map[sockapi.SockID]int{}
	for i := 0; i < 200; i++ {
		m[sockapi.SockID((i*7919)%1009+1)] = i
	}
	for range 5 { // map order varies between calls; the result must not
		ids := SortedIDs(m)
		if len(ids) != len(m) || !slices.IsSorted(ids) {
			t.Fatalf("SortedIDs: %d ids, sorted %v", len(ids), slices.IsSorted(ids))
		}
		due := DueIDs(m, func(v int) bool { return v%3 == 0 })
		if len(due) != 67 || !slices.IsSorted(due) {
			t.Fatalf("DueIDs: %d ids, sorted %v", len(due), slices.IsSorted(due))
		}
		for _, id := range due {
			if m[id]%3 != 0 {
				t.Fatalf("DueIDs returned %d (value %d)", id, m[id])
			}
		}
	}
	if SortedIDs(map[sockapi.SockID]bool{}) == nil || DueIDs(m, func(int) bool { return false }) != nil {
		t.Fatal("empty results")
	}
}

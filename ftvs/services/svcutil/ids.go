// Package svcutil holds small runtime helpers the deterministic services
// (http, ftp, nbd) share. It follows the deterministic-core rules.
package svcutil

import (
	"slices"

	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// SortedIDs returns m's keys in increasing order, so that map iteration
// order never reaches an output, a snapshot or a hash.
func SortedIDs[V any](m map[sockapi.SockID]V) []sockapi.SockID {
	ids := make([]sockapi.SockID, 0, len(m))
	//detcheck:orderless: collected, then sorted
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// DueIDs returns, in increasing order, the keys of m whose value is due
// (connections whose timer expired, say).
func DueIDs[V any](m map[sockapi.SockID]V, due func(V) bool) []sockapi.SockID {
	var ids []sockapi.SockID
	//detcheck:orderless: collected, then sorted
	for id, v := range m {
		if due(v) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

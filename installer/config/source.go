package config

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sort"
)

// PairKeyLen is the minimum length of the pair key (HMAC-SHA256).
const PairKeyLen = 32

// ParsePairKey reads a pair key written as hex (64+ digits) or base64 (of
// 32+ bytes).
func ParsePairKey(s string) ([]byte, error) {
	if k, err := hex.DecodeString(s); err == nil {
		if len(k) < PairKeyLen {
			return nil, fmt.Errorf("pair key is %d bytes; want at least %d (%d hex digits)", len(k), PairKeyLen, 2*PairKeyLen)
		}
		return k, nil
	}
	if k, err := base64.StdEncoding.DecodeString(s); err == nil {
		if len(k) < PairKeyLen {
			return nil, fmt.Errorf("pair key is %d bytes; want at least %d", len(k), PairKeyLen)
		}
		return k, nil
	}
	return nil, fmt.Errorf("pair key must be hex or base64")
}

func sortStrings(s []string) { sort.Strings(s) }

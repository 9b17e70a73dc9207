package compare

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/ftvs/ftvs/hwcheck/inventory"
)

// Digest is a stable hash of the compared fields of inv: identities
// (serials, UUID, MACs), link state, the source and the unreadable list are
// left out, so two servers built alike have the same digest. Unknown values
// hash as unknown: equal digests say the recorded fields are equal, not that
// Compare would report a match.
func Digest(inv *inventory.Inventory) (string, error) {
	// A deep copy through JSON: the caller's inventory stays untouched.
	raw, err := json.Marshal(inv)
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	var c inventory.Inventory
	if err := json.Unmarshal(raw, &c); err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	c.Source, c.Unreadable = "", nil
	if c.System != nil {
		c.System.Serial, c.System.UUID = nil, nil
	}
	if c.Baseboard != nil {
		c.Baseboard.Serial = nil
	}
	if c.Memory != nil {
		for i := range c.Memory.DIMMs {
			c.Memory.DIMMs[i].Serial = nil
		}
	}
	if c.Network != nil {
		for i := range c.Network.NICs {
			c.Network.NICs[i].MAC, c.Network.NICs[i].LinkState = nil, nil
		}
	}
	if c.Storage != nil {
		for i := range c.Storage.Disks {
			c.Storage.Disks[i].Serial = nil
		}
	}
	c.Normalize()
	canon, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("digest: %w", err)
	}
	sum := sha256.Sum256(canon)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

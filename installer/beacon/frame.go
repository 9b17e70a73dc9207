// Package beacon finds which NICs are cabled straight to the peer CoServer.
// Each installer sends small raw Ethernet frames with its own EtherType on
// every NIC and listens on all of them: a NIC that hears the peer and nobody
// else is a crossover candidate; one that hears other stations is behind a
// switch.
package beacon

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
)

// EtherType is IEEE 802's "local experimental" EtherType 1.
const EtherType = 0x88B5

// Magic opens every beacon payload.
var Magic = [4]byte{'F', 'T', 'V', 'B'}

// Version is the beacon format version.
const Version = 1

// Limits of the format.
const (
	headerLen   = 4 + 1 + 1 + 2 // magic, version, flags, TLV length
	MACLen      = sha256.Size   // HMAC-SHA256
	MaxTLVBytes = 1200
	MaxRoles    = 8
	flagHMAC    = 1
)

// TLV types.
const (
	tNodeID     = 1 // string: node identity
	tNodeNumber = 2 // 1 byte: configured node number, 0 = auto
	tNICMAC     = 3 // 6 bytes: the sending NIC's MAC
	tPCISlot    = 4 // string: the sending NIC's slot key
	tDigest     = 5 // 32 bytes: inventory digest
	tNICName    = 6 // string
	tRole       = 7 // 1 byte role + slot key: one entry of the sender's role proposal
)

// Role codes carried in a proposal.
var roleCodes = map[byte]string{1: "coserver", 2: "redirected", 3: "management"}

// RoleEntry is one NIC of a role proposal.
type RoleEntry struct {
	Role string // coserver, redirected, management
	Slot string // slot key of the NIC
}

// Beacon is one decoded beacon.
type Beacon struct {
	NodeID     string
	NodeNumber int // 0 = auto
	NICMAC     net.HardwareAddr
	Slot       string
	NICName    string
	Digest     [32]byte
	Roles      []RoleEntry // the sender's role proposal, once it has one
	Signed     bool        // an HMAC was present and verified
}

// Marshal encodes a beacon payload (what follows the Ethernet header),
// signed with key when key is non-nil.
func (b *Beacon) Marshal(key []byte) ([]byte, error) {
	var tl bytes.Buffer
	put := func(t byte, v []byte) error {
		if len(v) > 255 {
			return fmt.Errorf("beacon field %d too long (%d bytes)", t, len(v))
		}
		tl.WriteByte(t)
		tl.WriteByte(byte(len(v)))
		tl.Write(v)
		return nil
	}
	if b.NodeID == "" || len(b.NICMAC) != 6 {
		return nil, errors.New("beacon needs a node ID and a 6-byte NIC MAC")
	}
	if len(b.Roles) > MaxRoles {
		return nil, fmt.Errorf("beacon carries at most %d role entries", MaxRoles)
	}
	errs := []error{
		put(tNodeID, []byte(b.NodeID)),
		put(tNodeNumber, []byte{byte(b.NodeNumber)}),
		put(tNICMAC, b.NICMAC),
		put(tDigest, b.Digest[:]),
	}
	if b.Slot != "" {
		errs = append(errs, put(tPCISlot, []byte(b.Slot)))
	}
	if b.NICName != "" {
		errs = append(errs, put(tNICName, []byte(b.NICName)))
	}
	for _, r := range b.Roles {
		code := byte(0)
		for c, n := range roleCodes {
			if n == r.Role {
				code = c
			}
		}
		if code == 0 {
			return nil, fmt.Errorf("beacon: unknown role %q", r.Role)
		}
		errs = append(errs, put(tRole, append([]byte{code}, r.Slot...)))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if tl.Len() > MaxTLVBytes {
		return nil, fmt.Errorf("beacon too long (%d bytes)", tl.Len())
	}
	out := make([]byte, headerLen, headerLen+tl.Len()+MACLen)
	copy(out, Magic[:])
	out[4] = Version
	if key != nil {
		out[5] = flagHMAC
	}
	binary.BigEndian.PutUint16(out[6:], uint16(tl.Len()))
	out = append(out, tl.Bytes()...)
	if key != nil {
		m := hmac.New(sha256.New, key)
		m.Write(out)
		out = m.Sum(out)
	}
	return out, nil
}

// ErrNotBeacon says a payload does not start with the beacon magic: some
// other protocol using the experimental EtherType, not a malformed beacon.
var ErrNotBeacon = errors.New("not an ftvs beacon")

// Parse decodes a beacon payload strictly: known version, exact lengths,
// every TLV known and well-formed, no duplicates (except role entries),
// required fields present, only zero padding after the payload. With a key,
// the HMAC must be present and valid; without one, a signed beacon is
// accepted unverified (Signed stays false).
func Parse(p []byte, key []byte) (*Beacon, error) {
	if len(p) < headerLen || !bytes.Equal(p[:4], Magic[:]) {
		return nil, ErrNotBeacon
	}
	if p[4] != Version {
		return nil, fmt.Errorf("beacon version %d, want %d", p[4], Version)
	}
	flags := p[5]
	if flags&^flagHMAC != 0 {
		return nil, fmt.Errorf("beacon flags %#x: unknown bits", flags)
	}
	n := int(binary.BigEndian.Uint16(p[6:]))
	if n > MaxTLVBytes {
		return nil, fmt.Errorf("beacon TLV length %d exceeds %d", n, MaxTLVBytes)
	}
	end := headerLen + n
	if flags&flagHMAC != 0 {
		end += MACLen
	}
	if len(p) < end {
		return nil, fmt.Errorf("beacon truncated: %d bytes, header says %d", len(p), end)
	}
	for _, c := range p[end:] {
		if c != 0 {
			return nil, errors.New("beacon has non-zero bytes after its end")
		}
	}
	b := &Beacon{}
	if flags&flagHMAC != 0 && key != nil {
		m := hmac.New(sha256.New, key)
		m.Write(p[:headerLen+n])
		if !hmac.Equal(m.Sum(nil), p[headerLen+n:end]) {
			return nil, errors.New("beacon HMAC does not verify (different pair key?)")
		}
		b.Signed = true
	} else if key != nil {
		return nil, errors.New("beacon unsigned, but a pair key is configured")
	}
	seen := map[byte]bool{}
	tl := p[headerLen : headerLen+n]
	for len(tl) > 0 {
		if len(tl) < 2 {
			return nil, errors.New("beacon TLV truncated")
		}
		t, l := tl[0], int(tl[1])
		if len(tl) < 2+l {
			return nil, fmt.Errorf("beacon TLV %d: length %d exceeds the %d bytes left", t, l, len(tl)-2)
		}
		v := tl[2 : 2+l]
		tl = tl[2+l:]
		if seen[t] && t != tRole {
			return nil, fmt.Errorf("beacon TLV %d given twice", t)
		}
		seen[t] = true
		switch t {
		case tNodeID:
			if l == 0 || l > 64 || !printable(v) {
				return nil, errors.New("beacon node ID: want 1-64 printable characters")
			}
			b.NodeID = string(v)
		case tNodeNumber:
			if l != 1 || v[0] > 2 {
				return nil, errors.New("beacon node number: want one byte 0, 1 or 2")
			}
			b.NodeNumber = int(v[0])
		case tNICMAC:
			if l != 6 {
				return nil, fmt.Errorf("beacon NIC MAC: %d bytes, want 6", l)
			}
			b.NICMAC = net.HardwareAddr(bytes.Clone(v))
		case tPCISlot:
			if l == 0 || l > 64 || !printable(v) {
				return nil, errors.New("beacon PCI slot: want 1-64 printable characters")
			}
			b.Slot = string(v)
		case tDigest:
			if l != 32 {
				return nil, fmt.Errorf("beacon inventory digest: %d bytes, want 32", l)
			}
			copy(b.Digest[:], v)
		case tNICName:
			if l == 0 || l > 15 || !printable(v) {
				return nil, errors.New("beacon NIC name: want 1-15 printable characters")
			}
			b.NICName = string(v)
		case tRole:
			if l < 2 || l > 65 || roleCodes[v[0]] == "" || !printable(v[1:]) {
				return nil, errors.New("beacon role entry: want a known role and a slot key")
			}
			if len(b.Roles) == MaxRoles {
				return nil, fmt.Errorf("beacon carries more than %d role entries", MaxRoles)
			}
			b.Roles = append(b.Roles, RoleEntry{Role: roleCodes[v[0]], Slot: string(v[1:])})
		default:
			return nil, fmt.Errorf("beacon TLV type %d unknown", t)
		}
	}
	for _, t := range []byte{tNodeID, tNodeNumber, tNICMAC, tDigest} {
		if !seen[t] {
			return nil, fmt.Errorf("beacon lacks required TLV %d", t)
		}
	}
	return b, nil
}

func printable(v []byte) bool {
	for _, c := range v {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

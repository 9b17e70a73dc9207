package beacon

import (
	"bytes"
	"net"
	"strings"
	"testing"
)

func sample() *Beacon {
	b := &Beacon{NodeID: "ftvs-525400000001", NodeNumber: 1, NICMAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1},
		Slot: "0000:03:00.0", NICName: "eno1", Roles: []RoleEntry{{"coserver", "0000:03:00.0"}, {"management", "0000:06:00.0"}}}
	for i := range b.Digest {
		b.Digest[i] = byte(i)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, k := range [][]byte{nil, key} {
		p, err := sample().Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		padded := append(p, make([]byte, 20)...) // Ethernet minimum-size padding
		b, err := Parse(padded, k)
		if err != nil {
			t.Fatal(err)
		}
		want := sample()
		want.Signed = k != nil
		if b.NodeID != want.NodeID || b.NodeNumber != 1 || b.NICMAC.String() != want.NICMAC.String() || b.Slot != want.Slot ||
			b.NICName != "eno1" || b.Digest != want.Digest || len(b.Roles) != 2 || b.Roles[1] != want.Roles[1] || b.Signed != want.Signed {
			t.Fatalf("got %+v", b)
		}
	}
}

func TestParseRejects(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	good, _ := sample().Marshal(nil)
	signed, _ := sample().Marshal(key)
	mut := func(f func(p []byte) []byte) []byte { return f(bytes.Clone(good)) }
	cases := []struct {
		name string
		p    []byte
		key  []byte
		want string
	}{
		{"not ours", []byte("something else entirely"), nil, "not an ftvs beacon"},
		{"version", mut(func(p []byte) []byte { p[4] = 9; return p }), nil, "version 9"},
		{"flags", mut(func(p []byte) []byte { p[5] = 0x80; return p }), nil, "unknown bits"},
		{"truncated", good[:len(good)-3], nil, "truncated"},
		{"garbage after", append(bytes.Clone(good), 1), nil, "non-zero bytes after"},
		{"wrong key", signed, bytes.Repeat([]byte{8}, 32), "HMAC does not verify"},
		{"unsigned with key", good, key, "unsigned"},
		{"tampered", func() []byte { p := bytes.Clone(signed); p[12] ^= 1; return p }(), key, "HMAC does not verify"},
		{"unknown TLV", mut(func(p []byte) []byte { p[8] = 99; return p }), nil, "TLV type 99 unknown"},
		{"bad TLV length", mut(func(p []byte) []byte { p[9] = 250; return p }), nil, "exceeds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.p, tc.key)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	good, _ := sample().Marshal(nil)
	signed, _ := sample().Marshal(bytes.Repeat([]byte{7}, 32))
	f.Add(good)
	f.Add(signed)
	f.Add([]byte("FTVB\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, p []byte) {
		for _, key := range [][]byte{nil, bytes.Repeat([]byte{7}, 32)} {
			b, err := Parse(p, key)
			if err != nil {
				continue
			}
			// What parses re-encodes and parses to the same beacon.
			q, err := b.Marshal(key)
			if err != nil {
				t.Fatalf("parsed beacon does not re-encode: %v", err)
			}
			b2, err := Parse(q, key)
			if err != nil || b2.NodeID != b.NodeID || b2.Slot != b.Slot || len(b2.Roles) != len(b.Roles) {
				t.Fatalf("re-encoded beacon differs: %v", err)
			}
		}
	})
}

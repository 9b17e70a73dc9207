// Package wire parses and builds the headers the stack speaks: Ethernet II,
// ARP, IPv4, ICMP echo and TCP (with options). Parsers never panic on short
// or malformed input; they return an error naming the header and the field.
package wire

import (
	"encoding/binary"
	"math/bits"
)

// Sum adds b to a running one's-complement accumulator, 8 bytes at a time.
// b must start at an even offset of the checksummed data; only the last
// piece of a checksummed range may have odd length.
func Sum(b []byte, acc uint64) uint64 {
	var c uint64
	for len(b) >= 32 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[8:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[16:]), c)
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b[24:]), c)
		b = b[32:]
	}
	for len(b) >= 8 {
		acc, c = bits.Add64(acc, binary.BigEndian.Uint64(b), c)
		b = b[8:]
	}
	if len(b) >= 4 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint32(b)), c)
		b = b[4:]
	}
	if len(b) >= 2 {
		acc, c = bits.Add64(acc, uint64(binary.BigEndian.Uint16(b)), c)
		b = b[2:]
	}
	if len(b) == 1 {
		acc, c = bits.Add64(acc, uint64(b[0])<<8, c)
	}
	acc, c = bits.Add64(acc, 0, c)
	return acc + c
}

// Fold reduces an accumulator to the 16-bit one's-complement sum (not inverted).
func Fold(acc uint64) uint16 {
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 32) + (acc & 0xffffffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	acc = (acc >> 16) + (acc & 0xffff)
	return uint16(acc)
}

// Checksum is the Internet checksum (RFC 1071) of b: the inverted folded sum.
func Checksum(b []byte) uint16 { return ^Fold(Sum(b, 0)) }

// PseudoSum is the accumulator of the IPv4 pseudo-header for a transport
// segment of length n and protocol proto.
func PseudoSum(src, dst [4]byte, proto uint8, n int) uint64 {
	return uint64(binary.BigEndian.Uint32(src[:])) + uint64(binary.BigEndian.Uint32(dst[:])) +
		uint64(proto) + uint64(n)
}

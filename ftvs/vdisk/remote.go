package vdisk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
)

// The checksum side of verify and of skip-equal resync can run on the peer:
// RemoteSummer sends a SumsRequest through a caller-provided transport (the
// CoServer link), the peer answers with ServeSums. Only 32 bytes per region
// cross the link.
//
// Wire format, little-endian:
//
//	request: 'S' 1 | off u64 | len u64 | region u64              (26 bytes)
//	reply:   's' 1 | status u8 | count u32 | count × 32-byte sum
//	         status 1: error, then u16 length and the message instead of sums

// MaxSumsPerRequest bounds a reply (4096 × 32 bytes = 128 KiB).
const MaxSumsPerRequest = 4096

const (
	sumsReqLen   = 26
	sumsWireVer  = 1
	maxSumsError = 1024
)

// SumsRequest asks for the checksums of [Off, Off+Len) in Region pieces.
type SumsRequest struct {
	Off, Len, Region int64
}

// Count is the number of sums the request asks for.
func (r SumsRequest) Count() int64 { return ceilDiv(r.Len, r.Region) }

// Marshal encodes the request.
func (r SumsRequest) Marshal() []byte {
	b := make([]byte, sumsReqLen)
	b[0], b[1] = 'S', sumsWireVer
	binary.LittleEndian.PutUint64(b[2:], uint64(r.Off))
	binary.LittleEndian.PutUint64(b[10:], uint64(r.Len))
	binary.LittleEndian.PutUint64(b[18:], uint64(r.Region))
	return b
}

func (r SumsRequest) validate() error {
	switch {
	case r.Off < 0:
		return fmt.Errorf("sums request: offset %d is negative", r.Off)
	case r.Len <= 0 || r.Len > 1<<56:
		return fmt.Errorf("sums request: length %d out of range", r.Len)
	case r.Region <= 0 || r.Region > 1<<30:
		return fmt.Errorf("sums request: region %d out of range", r.Region)
	case r.Off > 1<<56:
		return fmt.Errorf("sums request: offset %d out of range", r.Off)
	case r.Count() > MaxSumsPerRequest:
		return fmt.Errorf("sums request: %d regions, at most %d per request", r.Count(), MaxSumsPerRequest)
	}
	return nil
}

// ParseSumsRequest decodes and validates a request.
func ParseSumsRequest(b []byte) (SumsRequest, error) {
	var r SumsRequest
	if len(b) != sumsReqLen {
		return r, fmt.Errorf("sums request: %d bytes, want %d", len(b), sumsReqLen)
	}
	if b[0] != 'S' {
		return r, fmt.Errorf("sums request: type byte %#02x, want 'S'", b[0])
	}
	if b[1] != sumsWireVer {
		return r, fmt.Errorf("sums request: version %d, want %d", b[1], sumsWireVer)
	}
	r.Off = int64(binary.LittleEndian.Uint64(b[2:]))
	r.Len = int64(binary.LittleEndian.Uint64(b[10:]))
	r.Region = int64(binary.LittleEndian.Uint64(b[18:]))
	return r, r.validate()
}

func marshalSums(sums []Sum) []byte {
	b := make([]byte, 7, 7+len(sums)*len(Sum{}))
	b[0], b[1], b[2] = 's', sumsWireVer, 0
	binary.LittleEndian.PutUint32(b[3:], uint32(len(sums)))
	for _, s := range sums {
		b = append(b, s[:]...)
	}
	return b
}

func marshalSumsError(err error) []byte {
	msg := err.Error()
	if len(msg) > maxSumsError {
		msg = msg[:maxSumsError]
	}
	b := []byte{'s', sumsWireVer, 1, 0, 0}
	binary.LittleEndian.PutUint16(b[3:], uint16(len(msg)))
	return append(b, msg...)
}

// ErrPeerSums wraps an error the peer reported while computing sums.
var ErrPeerSums = errors.New("peer could not compute checksums")

// ParseSumsReply decodes a reply that must hold want sums.
func ParseSumsReply(b []byte, want int64) ([]Sum, error) {
	if len(b) < 3 {
		return nil, fmt.Errorf("sums reply: %d bytes, too short", len(b))
	}
	if b[0] != 's' || b[1] != sumsWireVer {
		return nil, fmt.Errorf("sums reply: header %#02x %d, want 's' %d", b[0], b[1], sumsWireVer)
	}
	switch b[2] {
	case 0:
	case 1:
		if len(b) < 5 {
			return nil, fmt.Errorf("sums reply: error status without a length")
		}
		n := int(binary.LittleEndian.Uint16(b[3:]))
		if n > maxSumsError || len(b) != 5+n {
			return nil, fmt.Errorf("sums reply: error message length %d does not match %d bytes", n, len(b)-5)
		}
		return nil, fmt.Errorf("%w: %s", ErrPeerSums, b[5:])
	default:
		return nil, fmt.Errorf("sums reply: status %d unknown", b[2])
	}
	if len(b) < 7 {
		return nil, fmt.Errorf("sums reply: %d bytes, no count", len(b))
	}
	n := int64(binary.LittleEndian.Uint32(b[3:]))
	if n != want {
		return nil, fmt.Errorf("sums reply: %d sums, asked for %d", n, want)
	}
	if int64(len(b)-7) != n*int64(len(Sum{})) {
		return nil, fmt.Errorf("sums reply: %d bytes of sums for %d sums", len(b)-7, n)
	}
	out := make([]Sum, n)
	for i := range out {
		copy(out[i][:], b[7+i*len(Sum{}):])
	}
	return out, nil
}

// RemoteSummer is a Summer whose sums are computed by the peer. Call sends
// one request and returns the peer's reply (the link supplies framing,
// authentication and timeouts).
type RemoteSummer struct {
	Call func(ctx context.Context, req []byte) ([]byte, error)
}

func (s RemoteSummer) Sums(ctx context.Context, off, n, region int64) ([]Sum, error) {
	if region <= 0 {
		return nil, fmt.Errorf("region size %d is not positive", region)
	}
	out := make([]Sum, 0, ceilDiv(n, region))
	step := region * MaxSumsPerRequest
	for pos := off; pos < off+n; pos += step {
		req := SumsRequest{Off: pos, Len: min(step, off+n-pos), Region: region}
		if err := req.validate(); err != nil {
			return nil, err
		}
		reply, err := s.Call(ctx, req.Marshal())
		if err != nil {
			return nil, fmt.Errorf("sums [%d, %d) from peer: %w", req.Off, req.Off+req.Len, err)
		}
		sums, err := ParseSumsReply(reply, req.Count())
		if err != nil {
			return nil, fmt.Errorf("sums [%d, %d) from peer: %w", req.Off, req.Off+req.Len, err)
		}
		out = append(out, sums...)
	}
	return out, nil
}

// ServeSums answers one request on the peer with its local Summer over a
// data area of size bytes. Bad requests and read errors become error
// replies, so the asking side reports them.
func ServeSums(ctx context.Context, local Summer, size int64, req []byte) []byte {
	r, err := ParseSumsRequest(req)
	if err != nil {
		return marshalSumsError(err)
	}
	if r.Off > size || r.Len > size-r.Off {
		return marshalSumsError(fmt.Errorf("sums request [%d, %d) beyond data size %d", r.Off, r.Off+r.Len, size))
	}
	sums, err := local.Sums(ctx, r.Off, r.Len, r.Region)
	if err != nil {
		return marshalSumsError(err)
	}
	return marshalSums(sums)
}

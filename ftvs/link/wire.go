package link

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

const (
	helloMagic   = "FTVSLNK1"
	wireVersion  = 1
	helloLen     = 8 + 2 + 1 + 1 + 8 + 32
	proofLen     = sha256.Size
	headerLen    = 8
	gcmTagLen    = 16
	keyLen       = 32
	dataOverhead = 9 // seq u64 + message type u8

	// MaxPayload is the largest message Send accepts. Bigger things
	// (snapshots) are cut into chunks by the user of the link.
	MaxPayload = 4 << 20
	// maxBody bounds a frame's ciphertext so a corrupt or hostile length
	// field cannot make the reader allocate more than this.
	maxBody = MaxPayload + dataOverhead + gcmTagLen
)

// frameType is byte 4 of a frame header.
type frameType uint8

const (
	frameData frameType = 1 // seq u64, message type u8, payload
	frameAck  frameType = 2 // cumulative seq u64: every message up to it is delivered
	framePing frameType = 3 // sender's clock u64 (ns)
	framePong frameType = 4 // the ping's clock echoed
)

func (t frameType) String() string {
	switch t {
	case frameData:
		return "data"
	case frameAck:
		return "ack"
	case framePing:
		return "ping"
	case framePong:
		return "pong"
	}
	return fmt.Sprintf("type %d", uint8(t))
}

// hello is the first thing each side writes on a new connection.
type hello struct {
	Version     uint16
	Node        uint8 // 1 or 2
	Link        uint8 // index of the link in both configs
	Incarnation uint64
	Nonce       [32]byte
}

func (h hello) marshal() []byte {
	b := make([]byte, 0, helloLen)
	b = append(b, helloMagic...)
	b = binary.BigEndian.AppendUint16(b, h.Version)
	b = append(b, h.Node, h.Link)
	b = binary.BigEndian.AppendUint64(b, h.Incarnation)
	return append(b, h.Nonce[:]...)
}

func parseHello(b []byte) (hello, error) {
	var h hello
	if len(b) != helloLen {
		return h, fmt.Errorf("hello: %d bytes, want %d", len(b), helloLen)
	}
	if string(b[:8]) != helloMagic {
		return h, fmt.Errorf("hello: magic %q, want %q (not an ftvs link peer?)", b[:8], helloMagic)
	}
	h.Version = binary.BigEndian.Uint16(b[8:])
	if h.Version != wireVersion {
		return h, fmt.Errorf("hello: wire version %d, this build speaks %d", h.Version, wireVersion)
	}
	h.Node, h.Link = b[10], b[11]
	if h.Node != 1 && h.Node != 2 {
		return h, fmt.Errorf("hello: node %d, want 1 or 2", h.Node)
	}
	h.Incarnation = binary.BigEndian.Uint64(b[12:])
	if h.Incarnation == 0 {
		return h, errors.New("hello: incarnation 0 is reserved")
	}
	copy(h.Nonce[:], b[20:])
	return h, nil
}

// proofOf is what node proves it holds the pair key with: an HMAC over both
// hellos (so it is fresh for this connection) and the prover's node number
// (so a proof cannot be reflected back at its sender).
func proofOf(key []byte, node uint8, hello1, hello2 []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("ftvs-link proof v1"))
	m.Write([]byte{node})
	m.Write(hello1)
	m.Write(hello2)
	return m.Sum(nil)
}

// directionKey derives the AEAD key for frames sent by node `from` on this
// connection: fresh per connection because both nonces are in the salt.
func directionKey(key []byte, from uint8, hello1, hello2 []byte) ([]byte, error) {
	salt := append(append([]byte{}, hello1...), hello2...)
	return hkdf.Key(sha256.New, key, salt, fmt.Sprintf("ftvs-link v1 frames from node %d", from), keyLen)
}

// codec seals or opens the frames of one direction of one connection. The
// GCM nonce is an implicit frame counter, so a replayed, dropped or
// reordered frame fails to open.
type codec struct {
	aead    cipher.AEAD
	counter uint64
	nonce   [12]byte
}

func newCodec(key []byte) (*codec, error) {
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("frame cipher: %w", err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, fmt.Errorf("frame cipher: %w", err)
	}
	return &codec{aead: g}, nil
}

func (c *codec) nextNonce() []byte {
	binary.BigEndian.PutUint64(c.nonce[4:], c.counter)
	c.counter++
	return c.nonce[:]
}

// seal appends one frame (header and sealed body) to dst.
func (c *codec) seal(dst []byte, t frameType, plain []byte) []byte {
	n := len(plain) + gcmTagLen
	start := len(dst)
	dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	dst = append(dst, byte(t), 0, 0, 0)
	hdr := dst[start : start+headerLen]
	return c.aead.Seal(dst, c.nextNonce(), plain, hdr)
}

// sealData appends m's data frame (sequence number, type, payload) to dst,
// building the plaintext in plain's storage; it returns both for reuse.
func (c *codec) sealData(dst, plain []byte, m outMsg) ([]byte, []byte) {
	plain = binary.BigEndian.AppendUint64(plain[:0], m.seq)
	plain = append(append(plain, m.typ), m.payload...)
	return c.seal(dst, frameData, plain), plain
}

// readFrame reads and opens one frame. buf is reused for the body.
func (c *codec) readFrame(r io.Reader, hdr *[headerLen]byte, buf []byte) (frameType, []byte, error) {
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	t := frameType(hdr[4])
	if hdr[5] != 0 || hdr[6] != 0 || hdr[7] != 0 {
		return 0, nil, fmt.Errorf("frame header: reserved bytes %x not zero", hdr[5:8])
	}
	if n < gcmTagLen || n > maxBody {
		return 0, nil, fmt.Errorf("frame header: body length %d outside [%d, %d]", n, gcmTagLen, maxBody)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		return 0, nil, fmt.Errorf("frame body (%d bytes): %w", n, err)
	}
	plain, err := c.aead.Open(buf[:0], c.nextNonce(), buf, hdr[:])
	if err != nil {
		return 0, nil, fmt.Errorf("frame %d (%s, %d bytes): authentication failed", c.counter-1, t, n)
	}
	return t, plain, nil
}

// frame is a decoded frame body.
type frame struct {
	typ     frameType
	seq     uint64 // data: message sequence; ack: cumulative seq; ping/pong: clock
	msgType uint8
	payload []byte
}

func parseBody(t frameType, b []byte) (frame, error) {
	f := frame{typ: t}
	switch t {
	case frameData:
		if len(b) < dataOverhead {
			return f, fmt.Errorf("data frame: %d bytes, need at least %d", len(b), dataOverhead)
		}
		f.seq = binary.BigEndian.Uint64(b)
		if f.seq == 0 {
			return f, errors.New("data frame: sequence 0 is reserved")
		}
		f.msgType = b[8]
		f.payload = b[dataOverhead:]
	case frameAck, framePing, framePong:
		if len(b) != 8 {
			return f, fmt.Errorf("%s frame: %d bytes, want 8", t, len(b))
		}
		f.seq = binary.BigEndian.Uint64(b)
	default:
		return f, fmt.Errorf("frame: unknown type %d", uint8(t))
	}
	return f, nil
}

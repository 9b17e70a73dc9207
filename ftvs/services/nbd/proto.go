package nbd

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Wire constants from doc/proto.md.
const (
	magicNBD     = 0x4e42444d41474943 // "NBDMAGIC"
	magicOpt     = 0x49484156454F5054 // "IHAVEOPT"
	magicRep     = 0x0003e889045565a9
	magicRequest = 0x25609513
	magicSimple  = 0x67446698

	flagFixedNewstyle = 1 << 0
	flagNoZeroes      = 1 << 1

	optExportName = 1
	optAbort      = 2
	optList       = 3
	optInfo       = 6
	optGo         = 7

	repAck        = 1
	repServer     = 2
	repInfo       = 3
	repErrUnsup   = 1<<31 + 1
	repErrInvalid = 1<<31 + 3
	repErrUnknown = 1<<31 + 6

	infoExport    = 0
	infoBlockSize = 3

	tfHasFlags     = 1 << 0
	tfReadOnly     = 1 << 1
	tfSendFlush    = 1 << 2
	tfSendFUA      = 1 << 3
	tfSendTrim     = 1 << 5
	tfWriteZeroes  = 1 << 6
	tfCanMultiConn = 1 << 8

	cmdRead        = 0
	cmdWrite       = 1
	cmdDisc        = 2
	cmdFlush       = 3
	cmdTrim        = 4
	cmdWriteZeroes = 6

	cmdFlagFUA    = 1 << 0
	cmdFlagNoHole = 1 << 1

	errPerm     = 1
	errIO       = 5
	errInval    = 22
	errNoSpc    = 28
	errNotSup   = 95
	errShutdown = 108
)

// requestLen is the size of a transmission request header.
const requestLen = 28

// maxOptionLen bounds an option's data: a name, its length and up to 64
// info requests. Anything larger is a protocol violation (disconnect).
const maxOptionLen = 4 + maxNameLen + 2 + 2*64

// ErrProtocol marks input the service answers by disconnecting.
var ErrProtocol = errors.New("nbd protocol violation")

// option is one parsed option request.
type option struct {
	code uint32
	data []byte // aliases the input
}

// parseOption reads one option from in. n is 0 while incomplete.
func parseOption(in []byte) (o option, n int, err error) {
	if len(in) < 16 {
		return o, 0, nil
	}
	if m := binary.BigEndian.Uint64(in); m != magicOpt {
		return o, 0, fmt.Errorf("%w: option magic %#x, want IHAVEOPT", ErrProtocol, m)
	}
	o.code = binary.BigEndian.Uint32(in[8:])
	l := binary.BigEndian.Uint32(in[12:])
	if l > maxOptionLen {
		return o, 0, fmt.Errorf("%w: option %d carries %d bytes, at most %d", ErrProtocol, o.code, l, maxOptionLen)
	}
	if len(in) < 16+int(l) {
		return o, 0, nil
	}
	o.data = in[16 : 16+l]
	return o, 16 + int(l), nil
}

// infoRequest is the data of OPT_INFO and OPT_GO.
type infoRequest struct {
	name  string
	infos []uint16
}

// parseInfo reads OPT_INFO/OPT_GO data; an error means NBD_REP_ERR_INVALID.
func parseInfo(d []byte) (infoRequest, error) {
	var r infoRequest
	if len(d) < 4 {
		return r, fmt.Errorf("info request of %d bytes has no name length", len(d))
	}
	nl := binary.BigEndian.Uint32(d)
	if nl > maxNameLen || uint64(len(d)) < 4+uint64(nl)+2 {
		return r, fmt.Errorf("info request: name length %d does not fit in %d bytes", nl, len(d))
	}
	r.name = string(d[4 : 4+nl])
	rest := d[4+nl:]
	k := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) != 2*k {
		return r, fmt.Errorf("info request: %d info types announced, %d bytes follow", k, len(rest))
	}
	for i := 0; i < k; i++ {
		r.infos = append(r.infos, binary.BigEndian.Uint16(rest[2*i:]))
	}
	return r, nil
}

// request is one transmission request header.
type request struct {
	flags  uint16
	typ    uint16
	cookie uint64
	off    uint64
	length uint32
}

// parseRequest reads one request header. n is 0 while incomplete.
func parseRequest(in []byte) (r request, n int, err error) {
	if len(in) < requestLen {
		return r, 0, nil
	}
	if m := binary.BigEndian.Uint32(in); m != magicRequest {
		return r, 0, fmt.Errorf("%w: request magic %#x, want %#x", ErrProtocol, m, magicRequest)
	}
	r.flags = binary.BigEndian.Uint16(in[4:])
	r.typ = binary.BigEndian.Uint16(in[6:])
	r.cookie = binary.BigEndian.Uint64(in[8:])
	r.off = binary.BigEndian.Uint64(in[16:])
	r.length = binary.BigEndian.Uint32(in[24:])
	if r.typ == cmdWrite && r.length > MaxPayload {
		// The payload cannot be skipped safely: disconnect.
		return r, 0, fmt.Errorf("%w: WRITE of %d bytes exceeds %d", ErrProtocol, r.length, MaxPayload)
	}
	return r, requestLen, nil
}

func optReply(opt, typ uint32, data []byte) []byte {
	b := make([]byte, 20, 20+len(data))
	binary.BigEndian.PutUint64(b, magicRep)
	binary.BigEndian.PutUint32(b[8:], opt)
	binary.BigEndian.PutUint32(b[12:], typ)
	binary.BigEndian.PutUint32(b[16:], uint32(len(data)))
	return append(b, data...)
}

func simpleReply(cookie uint64, errno uint32) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint32(b, magicSimple)
	binary.BigEndian.PutUint32(b[4:], errno)
	binary.BigEndian.PutUint64(b[8:], cookie)
	return b
}

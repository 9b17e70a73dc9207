package mirror

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Remote block I/O between the two CoServers: one request type and one reply
// type on the link (Config.TypeBase and TypeBase+1; the daemon's own types
// start at 64, lockstep's are below 16). Little-endian:
//
//	request: 'B' | ver 1 | op u8 | id u64 | off u64 | count u64 | n u32 | n bytes
//	reply:   'b' | ver 1 | id u64 | status u8 | n u32 | n bytes
//
// count is the byte length for OpRead (whose 8 data bytes carry the
// reader's lockstep write count) and op-specific elsewhere (see Op).
// status 0: the bytes are the result; 1: the bytes are an error message.
const (
	wireVersion  = 1
	reqHeader    = 3 + 8 + 8 + 8 + 4
	replyHeader  = 2 + 8 + 1 + 4
	maxErrorText = 1024
	// MaxData is the largest data part of one message (a remote read or
	// write of more is split); it leaves room in a link message.
	MaxData = 1 << 20
)

// Op is a remote operation.
type Op uint8

const (
	OpRead        Op = iota + 1 // read Count bytes at Off (Wait: the reader's lockstep write count); reply: server's write count u64 | data
	OpWrite                     // the machine's write, for a peer whose copy is detached
	OpFlush                     // flush the server's copy
	OpResyncWrite               // resync data for the target (no marking)
	OpResyncFlush               // target flush (a resync checkpoint)
	OpSums                      // data: a vdisk.SumsRequest; reply: vdisk sums reply
	OpGetMeta                   // reply: 4096-byte metadata slot | on-disk bitmap
	OpSetMeta                   // data: metadata slot to persist (identity must match)
	OpClearMarks                // the target drops every mark (its own were copied over)
	OpGoSolo                    // the sender's copy detached: go solo, mark [Off, Off+Count)
	OpBulkDone                  // source to target: bulk passes over (data: error text, or empty)
	OpFlushed                   // secondary to primary: my copy is durable through my write Count
	OpResyncState               // target to source: reply one byte, a bulkState (is a resync toward me running, over?)
	opMax
)

func (o Op) String() string {
	names := [...]string{"?", "read", "write", "flush", "resync-write", "resync-flush", "sums", "get-meta", "set-meta", "clear-marks", "go-solo", "bulk-done", "flushed", "resync-state"}
	if int(o) < len(names) {
		return names[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Request is one remote operation.
type Request struct {
	Op    Op
	ID    uint64
	Off   int64
	Count uint64 // OpRead: length in bytes; see Op for the rest
	Wait  uint64 // OpRead in lockstep: the requester's write count
	Data  []byte
}

// Reply answers the request with the same ID.
type Reply struct {
	ID   uint64
	Err  string // non-empty: the operation failed on the peer
	Data []byte
}

// ErrBadMessage wraps every decoding failure.
var ErrBadMessage = errors.New("mirror: bad message")

func badMsg(what string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(what, a...))
}

// Marshal encodes the request. OpRead carries its length in Count and the
// write count in the (otherwise empty) data part.
func (r Request) Marshal() []byte {
	data := r.Data
	if r.Op == OpRead {
		data = binary.LittleEndian.AppendUint64(nil, r.Wait)
	}
	b := make([]byte, reqHeader, reqHeader+len(data))
	r.putHeader(b[:reqHeader], len(data))
	return append(b, data...)
}

// putHeader writes the request's header, for n data bytes, into b.
func (r Request) putHeader(b []byte, n int) {
	b[0], b[1], b[2] = 'B', wireVersion, byte(r.Op)
	binary.LittleEndian.PutUint64(b[3:], r.ID)
	binary.LittleEndian.PutUint64(b[11:], uint64(r.Off))
	binary.LittleEndian.PutUint64(b[19:], r.Count)
	binary.LittleEndian.PutUint32(b[27:], uint32(n))
}

// ParseRequest decodes and validates a request; data aliases b.
func ParseRequest(b []byte) (Request, error) {
	var r Request
	if len(b) < reqHeader {
		return r, badMsg("request of %d bytes, header needs %d", len(b), reqHeader)
	}
	if b[0] != 'B' || b[1] != wireVersion {
		return r, badMsg("request header %#02x version %d, want 'B' version %d", b[0], b[1], wireVersion)
	}
	r.Op = Op(b[2])
	if r.Op == 0 || r.Op >= opMax {
		return r, badMsg("request op %d unknown", b[2])
	}
	r.ID = binary.LittleEndian.Uint64(b[3:])
	off := binary.LittleEndian.Uint64(b[11:])
	if off > 1<<62 {
		return r, badMsg("%s request offset %d out of range", r.Op, off)
	}
	r.Off = int64(off)
	r.Count = binary.LittleEndian.Uint64(b[19:])
	n := binary.LittleEndian.Uint32(b[27:])
	if int64(n) != int64(len(b)-reqHeader) {
		return r, badMsg("%s request says %d data bytes, carries %d", r.Op, n, len(b)-reqHeader)
	}
	if n > MaxData+4096 {
		return r, badMsg("%s request carries %d data bytes, at most %d", r.Op, n, MaxData+4096)
	}
	r.Data = b[reqHeader:]
	switch r.Op {
	case OpRead:
		if len(r.Data) != 8 {
			return r, badMsg("read request carries %d data bytes, want 8 (write count)", len(r.Data))
		}
		if r.Count == 0 || r.Count > MaxData {
			return r, badMsg("read request of %d bytes, want 1..%d", r.Count, MaxData)
		}
		r.Wait, r.Data = binary.LittleEndian.Uint64(r.Data), nil
	case OpWrite, OpResyncWrite:
		if len(r.Data) == 0 {
			return r, badMsg("%s request without data", r.Op)
		}
	case OpSetMeta:
		if len(r.Data) != 4096 {
			return r, badMsg("set-meta request carries %d bytes, want one 4096-byte slot", len(r.Data))
		}
	case OpSums:
	case OpBulkDone:
		if len(r.Data) > maxErrorText {
			return r, badMsg("bulk-done request carries %d bytes of error text, at most %d", len(r.Data), maxErrorText)
		}
	default:
		if len(r.Data) != 0 {
			return r, badMsg("%s request carries %d data bytes, want none", r.Op, len(r.Data))
		}
	}
	return r, nil
}

// Marshal encodes the reply.
func (r Reply) Marshal() []byte {
	status, data := byte(0), r.Data
	if r.Err != "" {
		status, data = 1, []byte(r.Err)
		if len(data) > maxErrorText {
			data = data[:maxErrorText]
		}
	}
	b := make([]byte, replyHeader, replyHeader+len(data))
	b[0], b[1] = 'b', wireVersion
	binary.LittleEndian.PutUint64(b[2:], r.ID)
	b[10] = status
	binary.LittleEndian.PutUint32(b[11:], uint32(len(data)))
	return append(b, data...)
}

// ParseReply decodes a reply; data aliases b.
func ParseReply(b []byte) (Reply, error) {
	var r Reply
	if len(b) < replyHeader {
		return r, badMsg("reply of %d bytes, header needs %d", len(b), replyHeader)
	}
	if b[0] != 'b' || b[1] != wireVersion {
		return r, badMsg("reply header %#02x version %d, want 'b' version %d", b[0], b[1], wireVersion)
	}
	r.ID = binary.LittleEndian.Uint64(b[2:])
	n := binary.LittleEndian.Uint32(b[11:])
	if int64(n) != int64(len(b)-replyHeader) {
		return r, badMsg("reply %d says %d data bytes, carries %d", r.ID, n, len(b)-replyHeader)
	}
	data := b[replyHeader:]
	switch b[10] {
	case 0:
		if len(data) > MaxData+4096+(64<<10) {
			return r, badMsg("reply %d carries %d bytes", r.ID, len(data))
		}
		r.Data = data
	case 1:
		if len(data) == 0 || len(data) > maxErrorText {
			return r, badMsg("reply %d error text of %d bytes, want 1..%d", r.ID, len(data), maxErrorText)
		}
		r.Err = string(data)
	default:
		return r, badMsg("reply %d status %d unknown", r.ID, b[10])
	}
	return r, nil
}

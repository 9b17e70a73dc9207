// Package machine is the deterministic virtual server: a pure state machine
// whose only way to change is Step. Both CoServers run one on the same input
// log and must produce the same outputs and the same state hash at every step.
// See DESIGN.md, "The deterministic core", for the rules every package below
// this one follows (the import-walking test enforces them).
package machine

// InputKind says what an Input carries.
type InputKind uint8

const (
	// InFrame: an Ethernet frame received on the VS's network port.
	InFrame InputKind = 1
	// InTick: a timer tick; Payload is empty. The shell feeds one when the
	// virtual clock reaches NextDeadline.
	InTick InputKind = 2
	// InCommand: a management command (see command.go); Payload is its encoding.
	InCommand InputKind = 3
)

// Input is one entry of the input log.
type Input struct {
	Seq     uint64 // position in the log, assigned by the primary
	Now     int64  // virtual time in nanoseconds, stamped by the primary
	Kind    InputKind
	Payload []byte
}

// OutputKind says what an Output carries.
type OutputKind uint8

const (
	// OutFrame: an Ethernet frame to send on the VS's port. When GSO is
	// non-zero the frame is a TCP/IPv4 super-segment longer than the MTU that
	// the shell must cut into GSO-byte segments (TAP with IFF_VNET_HDR does
	// this in the kernel). With Config.ChecksumOffload, TCP frames carry only
	// the pseudo-header sum in their checksum field (CHECKSUM_PARTIAL,
	// csum_start 34, csum_offset 16) and the shell completes it.
	OutFrame OutputKind = 1
	// OutEvent: a status event for the shell (text, for logs and alerts).
	OutEvent OutputKind = 2
)

// Output is one effect of a Step.
type Output struct {
	Seq     uint64 // the input that produced it
	Kind    OutputKind
	GSO     uint16
	Payload []byte
}

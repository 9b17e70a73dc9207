package machine

import "fmt"

// Management commands carried by InCommand inputs. The encoding is
// versioned: byte 0 is the command-set version, byte 1 the opcode, the rest
// the arguments. A command the machine cannot read produces an OutEvent and
// changes nothing else (besides the bad-command counter).
const commandVersion = 1

// Command opcodes.
const (
	// OpGratuitousARP announces the VS's IP and MAC (sent at go-live so the
	// LAN's switches and neighbours learn the port it now lives behind).
	OpGratuitousARP uint8 = 1
	// OpBehaviour raises the VS behaviour level (behaviour.go); argument
	// the level, u16 little-endian. The primary sends it only when both
	// CoServers' builds have that level.
	OpBehaviour uint8 = 2
)

// GratuitousARPCommand is the payload of an InCommand that sends a
// gratuitous ARP.
func GratuitousARPCommand() []byte { return []byte{commandVersion, OpGratuitousARP} }

// command runs one management command; a non-nil error becomes an OutEvent.
func (m *Machine) command(p []byte) error {
	if len(p) < 2 {
		return fmt.Errorf("command of %d bytes: need at least version and opcode", len(p))
	}
	if p[0] != commandVersion {
		return fmt.Errorf("command set version %d: this build reads version %d", p[0], commandVersion)
	}
	switch op, args := p[1], p[2:]; op {
	case OpGratuitousARP:
		if len(args) != 0 {
			return fmt.Errorf("gratuitous ARP command: %d unexpected argument bytes", len(args))
		}
		m.stack.GratuitousARP()
		return nil
	case OpBehaviour:
		if len(args) != 2 {
			return fmt.Errorf("behaviour command: %d argument bytes, want 2 (the level)", len(args))
		}
		return m.raiseBehaviour(uint16(args[0]) | uint16(args[1])<<8)
	default:
		return fmt.Errorf("unknown command opcode %d", op)
	}
}

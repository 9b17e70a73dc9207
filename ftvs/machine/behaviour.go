package machine

import "fmt"

// The VS behaviour level names what the VS emits for a given input log: a
// build that changes any output byte (a protocol detail, a header, a timer)
// for the same inputs keeps the old behaviour under the old level and puts
// the new one under a new level. Two CoServers compare a running hash of
// every output, so a mixed-version pair runs the lower level:
//   - a fresh machine starts at its build's MaxBehaviour;
//   - a restored machine runs the level of the snapshot it restored (a new
//     build that joined an old primary behaves as the old build does);
//   - an OpBehaviour command in the log raises it, on both replicas at the
//     same input; the primary's runtime sends it once both CoServers run a
//     build that has the level (ftvs/coserver), which is after the second
//     step of a rolling upgrade.
// Raising the level also moves the snapshot encoding to this build's, so an
// older build can no longer join: that is the point of no return, and why
// it waits for both nodes.
//
// Level 1 is the behaviour of every build before levels existed. MaxBehaviour
// (behaviour_level.go) is this build's newest; the test-only build tag
// ftvs_behaviourbump adds a level 2 that marks the VS's IPv4 frames with TOS
// 0x20, so tests run two builds whose outputs differ.

// BehaviourCommand is the payload of an InCommand that raises the VS
// behaviour level to level (no effect when it is already there or above).
func BehaviourCommand(level uint16) []byte {
	return []byte{commandVersion, OpBehaviour, byte(level), byte(level >> 8)}
}

// Behaviour is the VS behaviour level the machine runs.
func (m *Machine) Behaviour() uint16 { return m.behaviour }

func (m *Machine) raiseBehaviour(level uint16) error {
	if level == 0 || level > MaxBehaviour {
		return fmt.Errorf("behaviour level %d: this build runs levels 1..%d", level, MaxBehaviour)
	}
	if level <= m.behaviour {
		return nil
	}
	m.behaviour = level
	m.snapVersion = machineVersion
	return nil
}

//go:build ftvs_behaviourbump

package machine

import (
	"encoding/binary"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
)

// TEST-ONLY build (-tags ftvs_behaviourbump): VS behaviour level 2 marks
// every IPv4 frame the VS emits with TOS 0x20, so its outputs differ from a
// level-1 build's for the same inputs. The rolling-upgrade test runs it as
// the "new" build beside a normal one.
const MaxBehaviour uint16 = 2

// bumpTOS is the TOS byte level 2 writes.
const bumpTOS = 0x20

func behaviourFrame(level uint16, frame []byte) []byte {
	const ip = 14 // Ethernet header
	if level < 2 || len(frame) < ip+20 || binary.BigEndian.Uint16(frame[12:]) != 0x0800 {
		return frame
	}
	hl := int(frame[ip]&0x0f) * 4
	if hl < 20 || len(frame) < ip+hl {
		return frame
	}
	frame[ip+1] = bumpTOS
	frame[ip+10], frame[ip+11] = 0, 0
	binary.BigEndian.PutUint16(frame[ip+10:], wire.Checksum(frame[ip:ip+hl]))
	return frame
}

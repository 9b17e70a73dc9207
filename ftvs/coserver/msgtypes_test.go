package coserver

import (
	"testing"

	"github.com/ftvs/ftvs/ftvs/mirror"
)

// The daemon's link message types share one space with lockstep's (1..11)
// and the mirrors' (mirror.DefaultTypeBase on, two per disk): a collision
// makes one side read the other's messages (a leave notice read as relayed
// frames, say).
func TestDaemonMessageTypesAreDistinct(t *testing.T) {
	seen := map[uint8]string{}
	for name, typ := range map[string]uint8{"msgRole": msgRole, "msgFrames": msgFrames, "msgCarrier": msgCarrier, "msgLeaving": msgLeaving} {
		if other, ok := seen[typ]; ok {
			t.Errorf("%s and %s are both message type %d", name, other, typ)
		}
		seen[typ] = name
		if typ <= 11 || typ >= mirror.DefaultTypeBase {
			t.Errorf("%s = %d: inside lockstep's 1..11 or the mirrors' %d.. range", name, typ, mirror.DefaultTypeBase)
		}
	}
}

package lockstep

import (
	"context"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
)

// benchOutputLatency: one input submitted, its output released, b.N times;
// ns/op is submit-to-release latency. With a synced peer over a veth link
// it includes the output rule's wait for the peer's ack; solo it does not.
func benchOutputLatency(b *testing.B, prefix string, net8 int, withPeer bool) {
	e, _ := netnsEnv(b, prefix, net8)
	released := make(chan uint64, 1024)
	a := e.start(1, RolePrimary, sideOpts{released: released})
	if withPeer {
		e.start(2, RoleJoining, sideOpts{})
		for a.node.Status().Peer != PeerSynced {
			time.Sleep(time.Millisecond)
		}
	}
	ctx := context.Background()
	payload := make([]byte, 64)
	b.ResetTimer()
	for range b.N {
		if err := a.node.Submit(ctx, machine.InFrame, payload); err != nil {
			b.Fatal(err)
		}
		<-released
	}
}

func BenchmarkOutputSolo(b *testing.B)     { benchOutputLatency(b, "fl6o", 74, false) }
func BenchmarkOutputLockstep(b *testing.B) { benchOutputLatency(b, "fl6p", 75, true) }

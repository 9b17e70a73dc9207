package coserver

import (
	"fmt"
	"os"
	"strconv"
	"sync/atomic"

	"github.com/ftvs/ftvs/ftvs/machine"
)

// Test-only fault injection. Two environment variables must both be set, one
// of them to a sentence nobody types by accident, so a production node can
// never run with it.
const (
	faultEnvAck = "FTVS_TEST_FAULTS"
	faultAck    = "i-want-this-replica-to-diverge"
	divergeEnv  = "FTVS_TEST_DIVERGE_AT_SEQ"
)

// DivergeFromEnv returns the lockstep Diverge hook the environment asks for,
// or nil. The hook replaces the first IPv4 frame input at or after the given
// sequence number, on this node only, by an ARP request for the frame's
// destination (the VS) from its source: this replica answers an ARP the
// other never saw, so their outputs differ at once (an input that is merely
// dropped can heal itself, as TCP's cumulative ACKs do).
func DivergeFromEnv() (func(*machine.Input), error) {
	at := os.Getenv(divergeEnv)
	if at == "" {
		return nil, nil
	}
	if os.Getenv(faultEnvAck) != faultAck {
		return nil, fmt.Errorf("%s is set but %s is not %q: refusing to start with a fault hook", divergeEnv, faultEnvAck, faultAck)
	}
	seq, err := strconv.ParseUint(at, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", divergeEnv, at, err)
	}
	var done atomic.Bool
	return func(in *machine.Input) {
		f := in.Payload
		if in.Seq < seq || in.Kind != machine.InFrame || done.Load() || len(f) < 34 || f[12] != 0x08 || f[13] != 0x00 {
			return
		}
		done.Store(true)
		fmt.Fprintf(os.Stderr, "ftvs: TEST FAULT HOOK: input %d (a %d-byte frame) replaced by an ARP request on this replica\n", in.Seq, len(f))
		in.Payload = arpRequest([]byte{0x02, 0xde, 0xad, 0, 0, 1}, [4]byte(f[26:30]), [4]byte(f[30:34]))
	}, nil
}

func arpRequest(src []byte, sender, target [4]byte) []byte {
	a := make([]byte, 0, 60)
	a = append(a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	a = append(a, src...)
	a = append(a, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	a = append(a, src...)
	a = append(a, sender[:]...)
	a = append(a, 0, 0, 0, 0, 0, 0)
	a = append(a, target[:]...)
	return append(a, make([]byte, 60-len(a))...)
}

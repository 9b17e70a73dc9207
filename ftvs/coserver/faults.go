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
// or nil. The hook turns the first frame input at or after the given
// sequence number into an empty timer tick on this node only, so this
// replica misses one frame the other executes.
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
		if in.Seq >= seq && in.Kind == machine.InFrame && !done.Load() {
			done.Store(true)
			in.Kind, in.Payload = machine.InTick, nil
		}
	}, nil
}

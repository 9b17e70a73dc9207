package inputlog

import (
	"bytes"
	"fmt"

	"github.com/ftvs/ftvs/ftvs/machine"
)

// Replay feeds the log's inputs into n fresh machines, each with its own
// Env (files, boot disk and disks copied), and requires identical outputs
// at every step and identical state hashes at the end. It returns the
// machines for the caller's checks of what the session did.
func (lg *Log) Replay(n int) ([]*machine.Machine, error) {
	if n < 1 {
		return nil, fmt.Errorf("replay into %d machines", n)
	}
	ms := make([]*machine.Machine, n)
	for i := range ms {
		env, err := lg.Env()
		if err != nil {
			return nil, err
		}
		if ms[i], err = machine.NewEnv(lg.Config, env); err != nil {
			return nil, fmt.Errorf("replica %d: %w", i, err)
		}
	}
	for step, in := range lg.Inputs {
		first := ms[0].Step(in)
		for r, m := range ms[1:] {
			out := m.Step(in)
			if len(out) != len(first) {
				return ms, fmt.Errorf("input %d (seq %d): replica %d made %d outputs, replica 0 %d", step, in.Seq, r+1, len(out), len(first))
			}
			for i := range out {
				if out[i].Kind != first[i].Kind || !bytes.Equal(out[i].Payload, first[i].Payload) {
					return ms, fmt.Errorf("input %d (seq %d): replica %d's output %d differs from replica 0's", step, in.Seq, r+1, i)
				}
			}
		}
	}
	for r, m := range ms[1:] {
		if m.StateHash() != ms[0].StateHash() {
			return ms, fmt.Errorf("replica %d's state hash differs from replica 0's after %d inputs", r+1, len(lg.Inputs))
		}
	}
	return ms, nil
}

//go:build !ftvs_behaviourbump

package machine

// MaxBehaviour is the newest VS behaviour level this build runs.
const MaxBehaviour uint16 = 1

// behaviourFrame applies the level's changes to an output frame (none yet).
func behaviourFrame(level uint16, frame []byte) []byte { return frame }

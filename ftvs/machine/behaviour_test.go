package machine

import (
	"strings"
	"testing"
)

func newBare(t *testing.T) *Machine {
	t.Helper()
	m, err := NewEnv(Config{MAC: [6]byte{2, 0xf7, 0, 0, 0, 9}, IP: [4]byte{10, 77, 0, 9}, PrefixLen: 24}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A machine restored from an older build's snapshot keeps that build's
// behaviour level and encoding; a level this build lacks is refused.
func TestBehaviourLevelFollowsTheSnapshot(t *testing.T) {
	m := newBare(t)
	if m.Behaviour() != MaxBehaviour {
		t.Fatalf("fresh machine at level %d, want this build's %d", m.Behaviour(), MaxBehaviour)
	}
	// As the build before levels wrote it: section version 2, level 1.
	m.snapVersion, m.behaviour = 2, 1
	old := m.Snapshot()
	r := newBare(t)
	if err := r.Restore(old); err != nil {
		t.Fatal(err)
	}
	if r.Behaviour() != 1 || string(r.Snapshot()) != string(old) {
		t.Fatalf("restored a version-2 snapshot: level %d, re-encoding identical %v", r.Behaviour(), string(r.Snapshot()) == string(old))
	}
	// Raising to a level this build lacks is a bad command; nothing changes.
	out := r.Step(Input{Seq: 1, Now: 1, Kind: InCommand, Payload: BehaviourCommand(MaxBehaviour + 1)})
	if len(out) != 1 || out[0].Kind != OutEvent || !strings.Contains(string(out[0].Payload), "behaviour level") || r.Behaviour() != 1 {
		t.Fatalf("raise beyond MaxBehaviour: outputs %+v, level %d", out, r.Behaviour())
	}
	// Raising to level 1 (where it is) is a no-op with no output.
	if out := r.Step(Input{Seq: 2, Now: 2, Kind: InCommand, Payload: BehaviourCommand(1)}); len(out) != 0 || r.Behaviour() != 1 {
		t.Fatalf("raise to the current level: outputs %+v, level %d", out, r.Behaviour())
	}
	if MaxBehaviour >= 2 {
		r.Step(Input{Seq: 3, Now: 3, Kind: InCommand, Payload: BehaviourCommand(2)})
		if r.Behaviour() != 2 || r.snapVersion != machineVersion {
			t.Fatalf("after raising to 2: level %d, snapshot version %d", r.Behaviour(), r.snapVersion)
		}
		r2 := newBare(t)
		if err := r2.Restore(r.Snapshot()); err != nil || r2.Behaviour() != 2 || r2.StateHash() != r.StateHash() {
			t.Fatalf("round trip at level 2: %v, level %d", err, r2.Behaviour())
		}
	}
	// A snapshot at a level above this build's is refused with the reason.
	m.snapVersion, m.behaviour = machineVersion, MaxBehaviour+1
	if err := newBare(t).Restore(m.Snapshot()); err == nil || !strings.Contains(err.Error(), "behaviour level") {
		t.Fatalf("restore of a level-%d snapshot: %v", MaxBehaviour+1, err)
	}
}

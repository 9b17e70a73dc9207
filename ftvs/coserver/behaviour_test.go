package coserver

import "testing"

// The peer's newest VS behaviour level comes from its role message; a build
// from before levels sends three bytes and counts as level 1, so a level
// above 1 is never put in the log for it.
func TestPeerBehaviourFromRoleMessage(t *testing.T) {
	d := &Daemon{} // no lockstep node: raiseBehaviour does nothing
	for _, c := range []struct {
		role []byte
		want uint32
	}{
		{[]byte{2, 1, 0}, 1},
		{[]byte{2, 1, 0, 0}, 1},
		{[]byte{2, 1, 0, 1}, 1},
		{[]byte{2, 1, 0, 2}, 2},
	} {
		d.peerBehaviour(c.role)
		if got := d.behaviour.peerMax.Load(); got != c.want {
			t.Errorf("role message % x: peer level %d, want %d", c.role, got, c.want)
		}
	}
}

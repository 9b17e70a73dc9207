package coserver

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/lockstep"
	"github.com/ftvs/ftvs/ftvs/machine"
)

// behaviourState negotiates the VS behaviour level (ftvs/machine
// behaviour.go) across a mixed-version pair: each node's role message
// carries its build's newest level; the primary, once its secondary is in
// sync, puts an OpBehaviour command for the lower of the two in the log, so
// both replicas change behaviour at the same input. A level above 1 is
// never sent to a peer whose build may not know it (builds before levels
// send no level: 1).
type behaviourState struct {
	peerMax atomic.Uint32 // the peer build's newest level; 0 unknown
	asked   atomic.Uint32 // the level this process last put in the log
}

// peerBehaviour records the level of a role message (its 4th byte).
func (d *Daemon) peerBehaviour(role []byte) {
	lvl := uint32(1)
	if len(role) >= 4 && role[3] != 0 {
		lvl = uint32(role[3])
	}
	d.behaviour.peerMax.Store(lvl)
	go d.raiseBehaviour()
}

// raiseBehaviour has the primary of a synced pair raise the VS to the
// newest level both builds run. Harmless when the VS is there already (the
// command is then a no-op in the log).
func (d *Daemon) raiseBehaviour() {
	n := d.node.Load()
	if n == nil {
		return
	}
	st := n.Status()
	peer := d.behaviour.peerMax.Load()
	lvl := min(uint32(machine.MaxBehaviour), peer)
	if st.Role != lockstep.RolePrimary || st.Peer != lockstep.PeerSynced || peer == 0 || lvl <= 1 || d.behaviour.asked.Load() >= lvl {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Submit(ctx, machine.InCommand, machine.BehaviourCommand(uint16(lvl))); err != nil {
		d.addEvent("behaviour", 0, fmt.Sprintf("raising the VS behaviour level to %d: %v", lvl, err))
		return
	}
	d.behaviour.asked.Store(lvl)
	d.addEvent("behaviour", 0, fmt.Sprintf("VS behaviour level %d in the log: both CoServers run a build that has it", lvl))
}

// Package coserver is the CoServer daemon (`ftvs coserver --config FILE`):
// it wires one node's configuration to the VS's network port (ftvs/port on
// the redirected NIC), the link session to the peer (ftvs/link), the
// lockstep node (ftvs/lockstep) running the deterministic VS
// (ftvs/machine over ftvs/dirstore), and a status endpoint on the
// management address.
//
// # Startup roles
//
// A node starts "deciding": it opens its links and tells the peer, on every
// EventPeerUp, what it is (deciding, or the role of its running lockstep
// node) with a daemon message (link type 64; lockstep uses 1..8). Then:
//
//   - the peer runs as primary: this node joins it (snapshot, then the log);
//   - both are deciding (a fresh pair): node 1 is primary, node 2 joins;
//   - the peer runs but not as primary (it lost its primary and may not go
//     live): this node starts a fresh VS as primary and the peer joins it;
//   - no peer within cold_start.solo_after (0, the default: wait forever):
//     the node starts the VS alone, but only after the split-brain checks
//     below find no live VS.
//
// A restarted node therefore always joins the running primary.
//
// # Split-brain rule
//
// A secondary goes live (becomes primary when its peer falls silent on every
// CoServer link) only if all of these hold:
//
//  1. Management probe: the peer's status endpoint (management.peer) does
//     not answer, or answers with a role other than primary.
//  2. LAN probe: during timeouts.split_brain, ARP probes for the VS IP
//     (sender 0.0.0.0, from a locally administered probe MAC) sent on the
//     redirected NIC draw no frame from the VS MAC, and no other frame from
//     the VS MAC is seen there.
//  3. Witness (when configured): the witness grants this node the lease.
//     A primary renews its lease while it serves; when its peer is silent
//     and the lease has lapsed, it fences itself (emits nothing) until it
//     holds the lease again, so the witness alone decides for SplitSite.
//
// When in doubt the secondary stays secondary (EventNoGoLive) and asks again
// every 500 ms while the peer stays silent (the daemon hands the node another
// peer-silent event). A primary that stops waiting for its secondary sends it
// a drop notice over the management network (POST /drop); a dropped
// secondary never goes live until it has rejoined from a snapshot. Failure modes: with every
// CoServer link and the management network cut and no witness, a primary
// whose VS is idle still answers the ARP probe, so the rule holds; a
// primary whose redirected NIC is also cut is invisible and the secondary
// goes live (two VSs, each reachable only from its own side).
//
// # Healed split brain
//
// When such a split heals, the two primaries meet and exactly one fences
// itself at once (splitheal.go): it emits no frame and takes none from the
// LAN, keeps its VS and disk copies untouched, shows role "fenced (split
// brain)" and raises a split-brain event. The rule needs no further
// exchange: each primary announces when its VS went live (the role message
// on the CoServer links, live_since_ms in its status); the one that went
// live later fences (with a witness: the one not holding the lease);
// equal or unknown times: node 2. The survivor then sends gratuitous ARPs
// for a few seconds so the LAN forgets the fenced port. A primary learns of
// the other from the role message at peer-up, else (links silent) from the
// management probe every second, or on the LAN: the guard's ARP probe for
// the VS IP once a second (only another VS answers it), or any frame from
// the VS MAC it did not send. A LAN sighting asks the management network
// at once and, with no answer, node 2 fences and node 1 serves on (the tie
// rule, which needs no figures). A peer that announces it is fenced is left
// alone. The fence lifts only when the peer follows this node's VS (the
// operator kept this node's data); otherwise the operator's resolve makes
// the fenced node discard its VS and rejoin from the survivor.
package coserver

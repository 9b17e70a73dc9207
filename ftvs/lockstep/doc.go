// Package lockstep runs one deterministic replica (ftvs/machine) in
// lockstep with the peer CoServer's: the primary sequences inputs and
// streams them, the secondary applies the same log, outputs leave only once
// the peer has applied their input, and either node carries on alone when
// the other dies. It is the protocol core; the daemon around it (ports,
// config, status, split-brain guard) wires a Node to the VS's network port
// and a link.Session.
//
// # Roles
//
//	joining   --snapshot restored-->   secondary   --peer silent, in sync, guard ok-->  primary (solo)
//	   ^  <--link reset, drop, bad msg--    |     --hand-over at N (no guard)-------------->   |
//	   |                                    +--peer silent, not in sync: stays (EventNoGoLive)
//	   +----------------------------------------------------------- hand-over done ------------+
//	primary: peer none --Join--> joining (snapshot sent) --ack of N--> synced --silence/restart--> none
//
// A node starts as primary (fresh VS) or joining (waits for a snapshot);
// who starts how is the daemon's decision.
//
// # Primary: sequencer and output rule
//
// Every input (Submit, or a timer tick when the virtual clock reaches the
// replica's NextDeadline) gets Seq = last+1 and Now = max(virtual clock,
// last Now); the primary executes it at once and, with a peer, appends it to
// the bounded log (MaxLogEntries/MaxLogBytes, default 65536 inputs/128 MiB;
// overflow drops the peer, EventPeerLost, and tells it with msgDrop). After
// each turn of the loop (which takes every queued submission first) the
// unsent log goes to the peer in batches of up to MaxBatchBytes (128 KiB).
// Outputs of inputs executed while the peer is synced are held and released,
// in Seq order, when an ack says the peer applied that input: the primary
// never waits to execute, only outputs wait. Without a peer (solo) outputs
// leave at once; when the peer is lost every held output leaves at once.
//
// # Secondary: apply and ack
//
// The secondary applies each batch as it arrives (inputs must continue its
// Seq exactly) and acks (gen, applied Seq, running output hash) once per
// batch, at once. On an idle link both the batch and the ack are written
// by the sending goroutine itself (link.Session.Send), so an output waits
// about one link round trip plus the secondary's Step. It discards its
// outputs; the running hash is 64 bits: a CRC-32C (SSE4.2 hardware) over
// every output's Seq, kind, GSO, length and bytes, and a CRC-32C over the
// headers alone. (CRC-64/ECMA, table-driven at 1 GB/s, was most of the
// lockstep CPU per byte served.)
//
// # Divergence
//
// The primary compares an ack's hash with its own running hash at the acked
// Seq. A mismatch raises EventDivergence and resynchronises the peer from a
// snapshot (below); outputs still held stay held until that snapshot is
// acked, because the diverged peer is no safe failover target for them.
// Config.Diverge is a test-only hook that alters inputs on one node.
//
// # Reintegration
//
// A joining node sends msgJoin on every EventPeerUp. A Replica that is a
// SnapshotPreparer may refuse first (PrepareSnapshot fails: nothing is
// sent, EventSnapshotRefused, a following peer is dropped; a new msgJoin
// tries again). The primary takes
// Snapshot() at its current Seq N and goes on executing; the loop stops only
// for Snapshot() itself: that is the pause (EventSnapshotSent.Pause). Its
// length follows the snapshot's size, mostly TCP send buffers: the netstack
// copies them at memory speed and keeps no more unsent data per connection
// than TCP can use soon (netstack Config.SendAhead), so 64 downloads in
// flight make a snapshot of about 16 MiB and a pause of a few ms. It
// sends msgSnapBegin (gen, N, Now, output hash, size), then 1 MiB chunks as
// fast as the link window takes them (retrying every millisecond when it is
// full, never blocking the loop), then msgSnapEnd with a CRC-32C of the bytes
// computed off the loop. Inputs N+1... wait in the log (bounded as above)
// and follow the snapshot in the same ordered stream. The joiner checks the
// CRC, restores, checks that its replica's Snapshot() right after Restore
// is byte-identical (same CRC: the replicas hold the same state), and acks
// N; the primary then gates outputs from Seq S on and sends msgSynced(S).
// Outputs of N+1..S-1 left ungated, so a secondary may go live only after
// msgSynced: by then it has applied every input whose output anyone may
// have seen. The sync generation gen (bumped per snapshot) makes acks and
// chunks of an older attempt harmless.
//
// # Go-live
//
// On link.EventPeerSilent (PeerTimeout, default 250 ms, of silence on
// every link) a synced secondary has already applied every batch delivered
// before the silence (one ordered stream), so the log it holds is finished.
// It asks Config.MayGoLive (the daemon's split-brain guard), then becomes
// primary with no peer, continues the virtual clock from the last input's
// Now plus the time since that input arrived (the silence counts, so the
// VS's TCP retransmission timers are due at once rather than a full RTO
// after go-live; time still enters the replica only as the Input.Now this
// node stamps, never going back), and stamps an InCommand input carrying
// machine.GratuitousARPCommand(), so the VS announces its MAC from its new
// port. Outputs the dead primary never released are recovered by the
// clients' TCP retransmissions. A primary whose peer restarts or overflows
// continues solo. One whose peer falls silent asks Config.MayGoOnAlone
// first: until it says yes the primary holds its outputs and stamps
// nothing (Status.Halted; the peer might still be alive and about to take
// over with a log lacking them); Node.Reconsider asks again, and a peer
// that comes back and rejoins from a snapshot ends the halt. Going on
// alone bumps gen and sends a drop notice (msgDrop).
//
// # Planned hand-over
//
// Node.HandOver gives the primary role to a synced secondary without a
// failover (a rolling upgrade taking the primary out of service). The
// primary stops stamping at its last input N (submissions wait in the
// queue), waits until the peer's ack of N released every held output (the
// output rule: nothing left that the peer has not applied), then sends
// msgHandOver(gen, N, output hash) and still stamps nothing. The
// secondary, at exactly N with the same hash and ready by its own
// Config.MayTakeOver (the daemon: its disk copies), answers msgTookOver(N, 1)
// before anything else and goes live at once: no silence, no MayGoLive
// (the primary gave up explicitly); EventGoLive has Planned set. On the
// answer the old primary raises EventHandOver and becomes a joining node
// that releases nothing until it rejoins by snapshot; the submissions still
// queued are returned to the caller (HandOverResult.Unstamped: the daemon
// relays those frames to the new primary; a lost client frame would cost
// a retransmission timeout, a lost window update the VS's persist timer).
// A Submit racing the role change may still strand one input.
//
// Failures: no synced peer refuses at once (ErrNoSyncedPeer); no ack of N
// within the timeout, the peer lost (silence with MayGoOnAlone's yes, a
// restart), a resync, or a refusal (msgTookOver(N, 0): not at N, another
// hash, or MayTakeOver's no) end the hand-over with an error and the primary stamps on, nothing
// lost. A timeout after msgHandOver while the link still hears the peer
// (the message or the answer lost) leaves the outcome unknown: the node
// gives up its role all the same (ErrHandOverUnconfirmed), and the peer
// goes live by the ordinary path (silence, guard) once this node is gone.
// The one unsafe window is the answer lost after the peer took over: the
// new primary dying within a link round trip of its answer, or every link
// failing then. The old primary, seeing the peer silent, resumes at N
// (after MayGoOnAlone) although the peer may have emitted the outputs of
// inputs after N, or, links cut, still serves (split brain). The daemon
// re-executes right after a failed hand-over, which bounds the second
// case to that moment.
//
// # Messages (link message types; integers little-endian)
//
//	1 batch      firstSeq u64 | count u32 | count × (now i64 | kind u8 | len u32 | payload)
//	2 ack        gen u64 | applied u64 | output hash u64
//	3 snap-begin gen u64 | seq u64 | now i64 | output hash u64 | size u64
//	4 snap-chunk gen u64 | offset u64 | bytes
//	5 synced     gen u64 | seq u64
//	6 join       (empty)
//	7 hello      role u8 | seq u64   (sent on every EventPeerUp; two primaries: EventSplitBrain)
//	8 drop       gen u64
//	9 snap-end   gen u64 | snapshot length u32<<32 | CRC-32C of its bytes (as a u64)
//	10 hand-over gen u64 | seq u64 | output hash u64   (primary: take over at seq)
//	11 took-over seq u64 | 1 took over, 0 refused (u64)
//
// Any malformed message raises EventProtocol; a secondary then rejoins.
//
// # Failure modes
//
//   - Both links cut, both nodes alive: the secondary goes live unless
//     MayGoLive refuses; without a guard both serve (EventSplitBrain when
//     the links return). The guard belongs to the daemon.
//   - Primary dies before the joiner got msgSynced: the joiner does not go
//     live (EventNoGoLive); the VS is down until an operator acts.
//   - A diverged secondary that goes live before the resync reaches it
//     serves its diverged state.
//   - A Node must be the only reader of its link's Incoming channel from
//     its start, or it misses EventPeerUp and never joins.
package lockstep

// Package mirror is the runtime side of a mirrored virtual disk: on each
// CoServer it wraps that CoServer's copy (ftvs/vdisk) into the
// blockdev.Device the machine uses, and talks to the peer's mirror over the
// CoServer link for everything that crosses it: remote block I/O when the
// local copy failed, bitmap resync, generation exchange, online verify and
// lockstep mark clearing.
//
// # What it guarantees
//
//   - Lockstep: both CoServers apply the VS's writes themselves (they are
//     part of the deterministic step). A FLUSH/FUA is answered only once
//     both copies are durable (DRBD protocol C): the primary flushes inside
//     its step; the secondary defers its flush to lockstep's BeforeAck hook,
//     one flush per batch, and lockstep releases the reply only after that
//     ack. Marking stays on in lockstep; when the secondary reports a
//     durable flush (OpFlushed) the primary drops its marks up to the point
//     both copies are durable, so a double crash resyncs only recent writes.
//   - Alone: the survivor rotates generations (vdisk GoSolo) before its next
//     write and marks every write (4 KiB in RAM, 4 MiB on disk, persisted
//     before the data write).
//   - Local I/O error: the copy is detached (vdisk Detach: Inconsistent),
//     EventDetached is raised, the peer goes solo and marks the failed range,
//     and the VS carries on: reads come from the peer's copy; writes go to
//     it unless the peer applies them itself in lockstep. In lockstep the
//     two replicas are at different points of the log, so a remote read
//     carries the reader's write count (counts are aligned at
//     StartLockstep) and the peer answers with its own: a lagging peer's
//     data is brought to the reader's count from the reader's history of
//     recent writes (32 MiB by default), and a peer that is ahead refuses
//     (an I/O error to the VS) if a later write overlapped the range.
//   - Peer back: Decide (vdisk) picks the direction; the source streams only
//     the marked regions in address order, rate-limited (token bucket),
//     client I/O first (ClientFirst), resumable (progress persisted after
//     each target flush), then, inside the snapshot pause, the final pass
//     and EndResync (target first). The target is Inconsistent throughout
//     and never goes live alone.
//   - Split brain, unrelated data, both copies bad: nothing is written,
//     EventSplitBrain/EventRefused, MayGoLive says no, until the operator
//     runs `ftvs vdisk resolve --discard-node N` on the victim's copy and
//     the daemon calls Connect again.
//   - A copy that was running when its CoServer stopped (crashed-primary
//     flag) may not go live alone after a restart before it met the peer:
//     after a double crash only the generations can say which copy is newer.
//
// # Wire
//
// Two link message types per disk (Config.TypeBase, TypeBase+1: requests,
// replies; wire.go documents the layout). Requests are served in arrival
// order by one worker per mirror; replies are matched by id; calls time out
// after Config.CallTimeout and fail at once on a peer-silent event.
//
// # Integration: what the daemon calls, in order
//
// At start, per virtual disk i:
//
//  1. dev := filedev.Open(path, filedev.Options{Direct: true, Lock: true,
//     Exclusive: true}); disk := vdisk.Open(dev).
//  2. m := mirror.New(mirror.Config{Disk: disk, Link: sess, TypeBase:
//     mirror.DefaultTypeBase + 2*i, NewGen: cryptoRandUint64, OnEvent: →
//     event log/alerts, ResyncRate: configured bytes/s}).
//  3. go m.Run(ctx, false). In the daemon's delivery loop: a message with
//     m.IsMine(d.Type) goes to m.Handle(d) and not to lockstep; every link
//     event goes to m.Handle(d) as well as to lockstep (mirror.Demux does
//     this split for a plain Transport).
//  4. The machine's Env.Disks[i] = m (a blockdev.Device).
//  5. lockstep.Config.BeforeAck = func(uint64) error { for each m:
//     m.FlushPending() } — on both nodes (a no-op on the primary).
//  6. lockstep.Config.MayGoLive (the go-live guard) = the daemon's checks
//     AND, for each m, m.MayGoLive() (ok, reason); log the reason when no.
//     The cold-start guard asks m.MayGoLive() too before starting alone.
//
// Going live alone (cold start alone, or a secondary whose primary fell
// silent), after the guard said yes and before the VS's next write:
// m.SetDeferFlush(false) (performs an owed flush), then m.PeerLost(). On
// a primary: in OnEvent(EventPeerLost) — it runs on the node's goroutine
// before the next input is stepped — call m.PeerLost(). An error from
// PeerLost (no usable copy) stops the VS with an alert.
//
// Peer back (link EventPeerUp), on both nodes, off the lockstep goroutine:
// dec, err := m.Connect(ctx). Connect reads this copy's metadata before and
// after the peer's and reads again if they changed meanwhile (the peer's
// Connect wrote them), so Decide sees one moment of both copies: two new
// copies meeting at once get the initial sync from node 1. The source returns after its bulk passes
// (the VS keeps running and marking meanwhile); the target returns when the
// source says the bulk is over (OpBulkDone, and OpResyncState, which the
// target asks every second: each side starts its rounds on its own link
// events, so the target may wait on a round that is long over or never
// ran). Only then does the target's daemon let its lockstep node join
// (deliver EventPeerUp / start it as RoleJoining). Every wait in Connect
// ends on a link event (peer silent or up), ctx or a timeout, and calls
// fail at once while the link says the peer is silent. An error:
// ErrSplitBrain / ErrRefused / ErrDetached → alert and wait for the
// operator; anything else (link lost, I/O, ErrNoResync) → run Connect
// again, with a backoff while the peer is up and at the next peer-up; the
// resync resumes from the marks left.
//
// Snapshot hand-over: the primary's Replica implements lockstep's
// SnapshotPreparer; its PrepareSnapshot calls m.FinishResync(ctx) for every
// mirror (final pass and EndResync while the VS is paused; a no-op when not
// a resync source) before the machine snapshot. An error refuses the join
// (no snapshot: the target's copy may still be Inconsistent); the daemon
// runs Connect again and then answers the held join request. In OnEvent(EventSnapshotSent) on the primary and
// OnEvent(EventRestored) on the secondary (both on the node's goroutine,
// before input N+1): m.StartLockstep(); on the secondary also
// m.SetDeferFlush(true).
//
// Online verify (ftvs vdisk verify on a running pair): m.Verify(ctx,
// vdisk.VerifyOptions{...}) on either node; regions written during the
// pass may differ transiently and are verified again.
//
// Clean stop: flush, then disk.CloseClean().
package mirror

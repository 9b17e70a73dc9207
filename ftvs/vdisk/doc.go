// Package vdisk is one CoServer's copy of a mirrored virtual disk: the
// on-disk format, DRBD-style generation identifiers that decide which copy is
// newer after any sequence of failures, write-intent marking while a copy
// runs alone, and the resync engine that brings the other copy back.
//
// # Layout of a copy
//
// A copy is a file or a partition. All offsets are bytes from its start:
//
//	offset          length      content
//	0               4096        metadata slot 0
//	4096            4096        metadata slot 1
//	8192            BitmapBytes on-disk write-intent bitmap (multiple of 4096)
//	DataOffset      DataSize    the virtual disk the VS sees (1 MiB aligned)
//
// # Metadata slot (little-endian, 4096 bytes)
//
//	offset  size  field
//	0       8     magic "FTVSVDSK"
//	8       4     format version (1)
//	12      4     slot size (4096)
//	16      8     sequence number: the valid slot with the highest wins
//	24      16    disk UUID (the same on both copies of one virtual disk)
//	40      1     node (1 or 2): which CoServer holds this copy
//	41      1     state: 1 UpToDate, 2 Outdated, 3 Inconsistent, 4 Diskless
//	42      2     flags: bit 0 crashed-primary (writes were being applied and
//	              no clean close followed), bit 1 discard-my-data (operator
//	              chose this copy as the split-brain victim); others zero
//	44      4     sector size of the data area (512 or 4096)
//	48      8     device size (bytes of the whole copy when created)
//	56      8     data offset
//	64      8     data size
//	72      8     generation: current
//	80      8     generation: bitmap (0: not marking against a peer)
//	88      8     generation: history[0]
//	96      8     generation: history[1]
//	104     8     bitmap offset (8192)
//	112     8     bitmap area length in bytes
//	120     8     bitmap granularity: data bytes per on-disk bit
//	128     8     resync cursor: data bytes below it are in sync (display only;
//	              the bitmap itself is the resumable progress)
//	136     3956  reserved, zero
//	4092    4     CRC32C (Castagnoli) of bytes 0..4091
//
// Metadata is double-buffered: an update writes the slot not holding the
// current state, with sequence+1, then flushes. A torn or lost slot write
// leaves the other slot, one update older, intact; Open picks the valid slot
// with the higher sequence and reports why the other one was rejected.
//
// # Bitmap granularity: 4 KiB in RAM, 4 MiB on disk
//
// Marking has two levels. A fine bitmap in RAM holds one bit per 4 KiB (the
// VS's block size): while the survivor keeps running — the common case, the
// peer died or was serviced — resync copies exactly the blocks written and
// nothing else. 1 TiB costs 32 MiB of RAM.
//
// The on-disk bitmap holds one bit per 4 MiB (DRBD's activity-log extent
// size; configurable at create time). Its bit is set and flushed before the
// first data write into a cold 4 MiB region completes, and it is never
// cleared while the peer is away, so each region costs at most one extra
// synchronous 4 KiB metadata write per solo period: a random-write workload
// over a 10 GiB hot set pays 2,560 metadata writes once, not one per data
// write. A persistent 4 KiB-per-bit bitmap would put a synchronous metadata
// write in front of nearly every random write, halving IOPS or worse. md's
// write-intent bitmap shows the cost of getting this wrong: wrongly sized
// bitmap writes cost 10x in IOPS until one kernel fix; a published bonnie++
// run on an internal bitmap with small chunks wrote at 0.2x the speed
// (blog.liw.fi, "write intent bitmaps"); a 2022 md patch series found bitmap
// writes "almost half of the I/O" under synchronous QD1 writes; md now
// defaults to 64 MiB per bit. The price of the coarse bit is paid only if
// the survivor itself crashes while alone: then resync copies whole 4 MiB
// regions, at most 40 ms each at DRBD's default 100 MiB/s, and never more
// than a full sync.
//
// In lockstep both CoServers apply the same writes and may mark too (the
// runtime clears bits lazily after a synchronized flush with no write in
// flight), so that after a double crash only regions that had writes in
// flight are resynchronised; with marking off a double crash in lockstep
// needs a verify or full sync.
//
// # Generations
//
// Decide is DRBD's drbd_uuid_compare plus its disk-state rules as a pure
// function of both copies' metadata; see gen.go. Transitions (GoSolo,
// BeginResync, EndResync, Settle, Outdate, MarkDiscard) are pure functions
// too; Disk persists their results.
//
// # How the runtime uses a copy
//
//   - Start: Open the copy, exchange Metadata and OnDiskMarks with the peer,
//     Decide. SplitBrain, Unrelated and Refuse raise an alert and wait for
//     the operator (ftvs vdisk resolve); nothing is written.
//   - Lockstep: set FlagCrashedPrimary (MarkRunning) before applying the
//     first write, SetMarking(true), and call ClearSynced after each
//     synchronized flush both CoServers acknowledged. CloseClean on a clean
//     stop.
//   - Peer lost: GoSolo(random generation) before the next write completes.
//     Refused for a copy that may not go live alone (CanGoLiveAlone).
//   - I/O error on this copy: Detach it; the survivor goes solo and
//     MarkRanges the failed write's range.
//   - Peer back: as SyncCopies does locally — MarkAll (full sync) or AddMarks
//     (the peer's on-disk marks), BeginResync persisted on the source then
//     the target, then Resync with Src the local Disk, Dst the link's writer,
//     FlushDst the peer's flush, Progress the source Disk, a TokenBucket and
//     ClientFirst (client I/O first). The VS keeps running and
//     marking; repeat Run until a pass copies little, quiesce the VS, run
//     the final pass, EndResync (target first), then the snapshot hand-over.
//   - Verify online: Verify with a ReaderSummer locally and a RemoteSummer
//     whose requests the peer answers with ServeSums.
package vdisk

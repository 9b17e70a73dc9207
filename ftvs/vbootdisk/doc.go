// Package vbootdisk is the VS boot disk: a FAT32 filesystem on the first
// virtual disk, read and written inside the deterministic core as an
// fsapi.WritableFileStore (HTTP GET/PUT and FTP serve it).
//
// # Why not go-diskfs inside the core
//
// go-diskfs v1.9.4 (filesystem/fat32 on top of filesystem/fat12) was audited
// for use inside machine.Step and rejected for writes:
//   - Clock: every new directory entry, the "." and ".." entries of a new
//     directory and every rename take util/timestamp.GetTime(), which is
//     time.Now() unless the process environment holds SOURCE_DATE_EPOCH
//     (os.Getenv: process-global, no per-call clock can be injected).
//     Chtimes can overwrite a file's times afterwards, but not the "." and
//     ".." entries Mkdir writes, nor the rename time.
//   - Imports: os (flags, FileMode, and backend.Storage's Sys() *os.File),
//     time, regexp, a third-party ASCII set: detcheck refuses any package
//     outside the standard library and this module.
//   - Robustness on a disk the core must not trust: the cluster-chain walk
//     has no loop bound (a looping FAT hangs Step), File.Read indexes the
//     chain by the file size (a short chain panics), and several ReadAt
//     errors are dropped (`_, _ =`), so an I/O error reads as data.
//   - Correctness and cost: Remove does not free the file's clusters
//     (measured: removing a 100000-byte file leaves fsck.fat reporting 196
//     lost clusters and a wrong free count), rename only works within one directory, there is
//     no truncate to a non-zero size, every Write rewrites both whole FATs
//     and walks the whole chain, files without clusters cannot be opened,
//     and reads starting inside a cluster may return bytes past the end.
//
// No goroutines, sync or map iteration reaching the disk were found
// (uniqueShortName's map is only looked up). So go-diskfs formats the disk at
// install time (installer/layout.FormatFAT32, reused by the format
// subpackage) and serves as the reference reader in tests, and this package
// is a small FAT32 reader/writer written for the core.
//
// # Determinism
//
// Every change carries its time from the caller (the machine's virtual
// time, Unix seconds, written as UTC by hand-written calendar arithmetic).
// Allocation is lowest-free-cluster first; new entries take the first run
// of free slots; generated short names take the lowest free ~N tail. All of
// these depend only on the disk's bytes. The store keeps caches (16 FAT
// sectors, 8 chain cursors, the free count and the lowest free cluster)
// that are functions of the disk: dirty FAT sectors are written back at the
// end of every operation. Nothing needs to be in the machine's snapshot: a
// store opened afresh on the same bytes (after a restore, on a
// reintegrated CoServer) behaves exactly like the one that ran through.
// A store must be reopened if anything else writes the disk under it.
//
// # Bounds
//
// Data moves between the caller's buffer and the disk one run of
// consecutive clusters at a time; directory scans use one cluster buffer;
// gaps are zeroed from a 64 KiB buffer. A 1 GiB file is never in memory.
//
// # Use in the machine
//
// The shell opens the boot virtual disk's data area as a blockdev.Device
// (filedev on the vdisk copy), calls Open, and hands the Store to the
// machine as machine.Env.Files (it is an fsapi.WritableFileStore, so FTP and
// HTTP PUT may change it inside Step). The store is not part of the
// machine's snapshot, like the disk it reads: a restored or reintegrated
// machine is given a store opened on its own, identical, copy (or the old
// store after Reload when the disk was resynchronised under it). Writes are
// not flushed by the store; Sync calls the device's Flush where a client's
// request needs durability.
//
// Errors wrap fsapi's (ErrNotExist, ErrInvalid, ErrExist, ErrIsDir,
// ErrNotDir, ErrNotEmpty) or ErrCorrupt (naming the field, cluster or
// slot), ErrNoSpace (checked before anything changes), ErrTooLarge,
// ErrDirFull. A FAT smaller than the cluster count (go-diskfs issue #418 at
// 64, 129, 259 MiB and 4 GiB) is refused at Open; format refuses to make one.
package vbootdisk

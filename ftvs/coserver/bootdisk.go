package coserver

import (
	"fmt"
	"strings"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
)

// bootFiles is what HTTP and FTP serve when a vs.disks entry is the boot
// disk: a vbootdisk.Store on the MIRRORED device of that disk (every write
// of the VS reaches both copies through ftvs/mirror, and a joiner gets the
// rest by resync), limited to serve_dir.
//
// The store's caches are functions of the disk (vbootdisk's doc), so they
// are not in the machine's snapshot: they are (re)built from the disk at
// every point where the disk is known to hold what the machine's state
// says — a machine started as primary (load before it runs) and a
// snapshot restored on a joiner (load before Restore: the primary finished
// the resync inside the snapshot pause, so the joiner's copy holds the
// snapshot's disk). Between those points only the machine writes the disk.
// A joining machine has no store until its snapshot comes: calls fail.
//
// Used only from the lockstep node's goroutine (Step, Restore) and from
// newNode before that node runs; never concurrently.
type bootFiles struct {
	dev  blockdev.Device
	name string // vs.disks entry, for errors
	dir  string // served directory inside the FAT32, no slashes at the ends ("": root)
	st   *vbootdisk.Store
}

var (
	_ fsapi.WritableFileStore = (*bootFiles)(nil)
	_ fsapi.Syncer            = (*bootFiles)(nil)
)

func newBootFiles(dev blockdev.Device, name, serveDir string) *bootFiles {
	return &bootFiles{dev: dev, name: name, dir: strings.Trim(serveDir, "/")}
}

// load (re)reads the FAT32 from the disk, forgetting every cache.
func (b *bootFiles) load() error {
	if b.st == nil {
		st, err := vbootdisk.Open(b.dev)
		if err != nil {
			return fmt.Errorf("boot disk %s: %w", b.name, err)
		}
		b.st = st
	} else if err := b.st.Reload(); err != nil {
		b.st = nil
		return fmt.Errorf("boot disk %s: reload: %w", b.name, err)
	}
	if b.dir != "" {
		fi, err := b.st.Stat(b.dir)
		if err != nil || !fi.Dir {
			b.st = nil
			return fmt.Errorf("boot disk %s: serve_dir /%s is not a directory on it (%v)", b.name, b.dir, err)
		}
	}
	return nil
}

// forget drops the store: a joining machine waits for its snapshot.
func (b *bootFiles) forget() { b.st = nil }

// Sync makes the completed changes durable on both copies (the mirror's
// Flush: on a secondary deferred to the ack of the input, so the reply
// that follows leaves the primary only then).
func (b *bootFiles) Sync() error {
	if b.st == nil {
		return errNotLoaded
	}
	return b.st.Sync()
}

var errNotLoaded = fmt.Errorf("%w: the boot disk is not loaded (waiting for the snapshot)", fsapi.ErrInvalid)

// path maps a served path into the FAT32. write refuses the served root
// itself (renaming or removing serve_dir would take the whole tree away).
func (b *bootFiles) path(p string, write bool) (*vbootdisk.Store, string, error) {
	if b.st == nil {
		return nil, "", errNotLoaded
	}
	rel := strings.Trim(p, "/")
	if write && (rel == "" || rel == ".") {
		return nil, "", fmt.Errorf("%w: the served root", fsapi.ErrInvalid)
	}
	if b.dir == "" {
		return b.st, p, nil
	}
	return b.st, b.dir + "/" + rel, nil
}

func (b *bootFiles) Stat(p string) (fsapi.FileInfo, error) {
	st, q, err := b.path(p, false)
	if err != nil {
		return fsapi.FileInfo{}, err
	}
	fi, err := st.Stat(q)
	if err == nil && strings.Trim(p, "/") == "" {
		fi.Name = "" // the served root, as the FAT32's own root reads
	}
	return fi, err
}

func (b *bootFiles) ReadAt(p string, buf []byte, off int64) (int, error) {
	st, q, err := b.path(p, false)
	if err != nil {
		return 0, err
	}
	return st.ReadAt(q, buf, off)
}

func (b *bootFiles) ReadDir(p string) ([]fsapi.FileInfo, error) {
	st, q, err := b.path(p, false)
	if err != nil {
		return nil, err
	}
	return st.ReadDir(q)
}

func (b *bootFiles) Create(p string, mtime int64) error {
	st, q, err := b.path(p, true)
	if err != nil {
		return err
	}
	return st.Create(q, mtime)
}

func (b *bootFiles) WriteAt(p string, buf []byte, off int64, mtime int64) (int, error) {
	st, q, err := b.path(p, true)
	if err != nil {
		return 0, err
	}
	return st.WriteAt(q, buf, off, mtime)
}

func (b *bootFiles) Truncate(p string, size int64, mtime int64) error {
	st, q, err := b.path(p, true)
	if err != nil {
		return err
	}
	return st.Truncate(q, size, mtime)
}

func (b *bootFiles) Remove(p string, mtime int64) error {
	st, q, err := b.path(p, true)
	if err != nil {
		return err
	}
	return st.Remove(q, mtime)
}

func (b *bootFiles) Rename(from, to string, mtime int64) error {
	st, f, err := b.path(from, true)
	if err != nil {
		return err
	}
	_, t, err := b.path(to, true)
	if err != nil {
		return err
	}
	return st.Rename(f, t, mtime)
}

func (b *bootFiles) Mkdir(p string, mtime int64) error {
	st, q, err := b.path(p, true)
	if err != nil {
		return err
	}
	return st.Mkdir(q, mtime)
}

func (b *bootFiles) Rmdir(p string, mtime int64) error {
	st, q, err := b.path(p, true)
	if err != nil {
		return err
	}
	return st.Rmdir(q, mtime)
}

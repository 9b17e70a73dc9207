package dirstore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// Writable is a directory served read-write as an fsapi.WritableFileStore
// (FTP uploads in the solo driver). Like Store, every access goes through
// os.Root. Modification times come from the caller (the machine's virtual
// time), never from the clock, so two replicas given the same calls hold the
// same metadata. It is safe for concurrent use, but meant to be driven by
// one machine.
type Writable struct {
	*Store
}

var _ fsapi.WritableFileStore = (*Writable)(nil)

// NewWritable opens dir read-write; maxOpen bounds cached descriptors.
func NewWritable(dir string, maxOpen int) (*Writable, error) {
	s, err := New(dir, maxOpen)
	if err != nil {
		return nil, err
	}
	return &Writable{Store: s}, nil
}

// writable cleans a path for a change, refusing the root itself.
func writable(path string) (string, error) {
	p, err := clean(path)
	if err != nil {
		return "", err
	}
	if p == "." {
		return "", fmt.Errorf("%w: the root itself cannot be changed", fsapi.ErrInvalid)
	}
	return p, nil
}

func parentOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// mapWriteErr extends mapErr with the errors changes can meet.
func mapWriteErr(path string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOTEMPTY): // before ErrExist, which it also matches
		return fmt.Errorf("%w: %s", fsapi.ErrNotEmpty, path)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("%w: %s", fsapi.ErrExist, path)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("%w: %s", fsapi.ErrIsDir, path)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%w: %s", fsapi.ErrNotDir, path)
	}
	return mapErr(path, err)
}

// touch records mtime on p and its parent directory.
func (w *Writable) touch(p string, mtime int64, withSelf bool) {
	t := time.Unix(mtime, 0)
	if withSelf {
		_ = w.root.Chtimes(p, t, t)
	}
	_ = w.root.Chtimes(parentOf(p), t, t)
}

// evict drops cached descriptors of p and of everything below it, so a
// renamed or removed name is never read through a stale descriptor.
func (w *Writable) evict(p string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for e := w.lru.Front(); e != nil; {
		next := e.Next()
		en := e.Value.(*entry)
		if en.path == p || strings.HasPrefix(en.path, p+"/") {
			w.lru.Remove(e)
			delete(w.byKey, en.path)
			en.f.Close()
		}
		e = next
	}
}

// regular fails unless p is a regular file.
func (w *Writable) regular(path, p string) error {
	fi, err := w.root.Lstat(p)
	if err != nil {
		return mapWriteErr(path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: %s", fsapi.ErrIsDir, path)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular file", fsapi.ErrInvalid, path)
	}
	return nil
}

// Create makes an empty regular file or truncates an existing one.
func (w *Writable) Create(path string, mtime int64) error {
	p, err := writable(path)
	if err != nil {
		return err
	}
	if fi, err := w.root.Lstat(p); err == nil {
		if fi.IsDir() {
			return fmt.Errorf("%w: %s", fsapi.ErrIsDir, path)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("%w: %s is not a regular file", fsapi.ErrInvalid, path)
		}
	}
	f, err := w.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return mapWriteErr(path, err)
	}
	if err := f.Close(); err != nil {
		return mapWriteErr(path, err)
	}
	w.touch(p, mtime, true)
	return nil
}

// WriteAt writes p at off into an existing regular file.
func (w *Writable) WriteAt(path string, b []byte, off int64, mtime int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: %s: negative offset %d", fsapi.ErrInvalid, path, off)
	}
	p, err := writable(path)
	if err != nil {
		return 0, err
	}
	if err := w.regular(path, p); err != nil {
		return 0, err
	}
	f, err := w.root.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return 0, mapWriteErr(path, err)
	}
	n, err := f.WriteAt(b, off)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("dirstore %s: write at %d: %w", path, off, err)
	}
	t := time.Unix(mtime, 0)
	_ = w.root.Chtimes(p, t, t)
	return n, nil
}

// Truncate sets a regular file's size.
func (w *Writable) Truncate(path string, size int64, mtime int64) error {
	if size < 0 {
		return fmt.Errorf("%w: %s: negative size %d", fsapi.ErrInvalid, path, size)
	}
	p, err := writable(path)
	if err != nil {
		return err
	}
	if err := w.regular(path, p); err != nil {
		return err
	}
	f, err := w.root.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return mapWriteErr(path, err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("dirstore %s: truncate to %d: %w", path, size, err)
	}
	t := time.Unix(mtime, 0)
	_ = w.root.Chtimes(p, t, t)
	return nil
}

// Remove deletes a regular file.
func (w *Writable) Remove(path string, mtime int64) error {
	p, err := writable(path)
	if err != nil {
		return err
	}
	fi, err := w.root.Lstat(p)
	if err != nil {
		return mapWriteErr(path, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: %s", fsapi.ErrIsDir, path)
	}
	w.evict(p)
	if err := w.root.Remove(p); err != nil {
		return mapWriteErr(path, err)
	}
	w.touch(p, mtime, false)
	return nil
}

// Rename moves a file or directory; a regular file at to is replaced.
func (w *Writable) Rename(from, to string, mtime int64) error {
	pf, err := writable(from)
	if err != nil {
		return err
	}
	pt, err := writable(to)
	if err != nil {
		return err
	}
	src, err := w.root.Lstat(pf)
	if err != nil {
		return mapWriteErr(from, err)
	}
	if dst, err := w.root.Lstat(pt); err == nil {
		if dst.IsDir() {
			return fmt.Errorf("%w: %s is a directory", fsapi.ErrExist, to)
		}
		if src.IsDir() {
			return fmt.Errorf("%w: %s", fsapi.ErrExist, to)
		}
	}
	if src.IsDir() && (pt == pf || strings.HasPrefix(pt, pf+"/")) {
		return fmt.Errorf("%w: cannot move %s into itself", fsapi.ErrInvalid, from)
	}
	w.evict(pf)
	w.evict(pt)
	if err := w.root.Rename(pf, pt); err != nil {
		return mapWriteErr(from+" -> "+to, err)
	}
	w.touch(pf, mtime, false)
	w.touch(pt, mtime, false)
	return nil
}

// Mkdir makes a directory.
func (w *Writable) Mkdir(path string, mtime int64) error {
	p, err := writable(path)
	if err != nil {
		return err
	}
	if err := w.root.Mkdir(p, 0o755); err != nil {
		return mapWriteErr(path, err)
	}
	w.touch(p, mtime, true)
	return nil
}

// Rmdir removes an empty directory.
func (w *Writable) Rmdir(path string, mtime int64) error {
	p, err := writable(path)
	if err != nil {
		return err
	}
	fi, err := w.root.Lstat(p)
	if err != nil {
		return mapWriteErr(path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s", fsapi.ErrNotDir, path)
	}
	w.evict(p)
	if err := w.root.Remove(p); err != nil {
		return mapWriteErr(path, err)
	}
	w.touch(p, mtime, false)
	return nil
}

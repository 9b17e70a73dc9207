package vbootdisk

import (
	"fmt"
	"io"
	"sort"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

func (s *Store) info(e *entry) fsapi.FileInfo {
	fi := fsapi.FileInfo{Name: e.name, ModTime: e.modTime(), Dir: e.isDir()}
	if !fi.Dir {
		fi.Size = int64(e.size)
	}
	return fi
}

// Stat describes the file or directory at path ("" or "/" is the root).
func (s *Store) Stat(path string) (fi fsapi.FileInfo, err error) {
	defer s.done(&err)
	e, err := s.lookup(path)
	if err != nil {
		return fsapi.FileInfo{}, err
	}
	return s.info(&e), nil
}

// ReadDir lists a directory sorted by name.
func (s *Store) ReadDir(path string) (list []fsapi.FileInfo, err error) {
	defer s.done(&err)
	d, err := s.lookup(path)
	if err != nil {
		return nil, err
	}
	if err := s.asDir(&d, path); err != nil {
		return nil, err
	}
	err = s.scanDir(d.first, func(e *entry) bool {
		list = append(list, s.info(e))
		return false
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// ReadAt reads len(p) bytes of the file at path from off (io.EOF at the end).
func (s *Store) ReadAt(path string, p []byte, off int64) (n int, err error) {
	defer s.done(&err)
	e, err := s.lookup(path)
	if err != nil {
		return 0, err
	}
	if e.isDir() {
		return 0, fmt.Errorf("%w: %s", fsapi.ErrIsDir, path)
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", fsapi.ErrInvalid, off)
	}
	size := int64(e.size)
	if off >= size {
		return 0, io.EOF
	}
	want := p
	if int64(len(want)) > size-off {
		want = want[:size-off]
	}
	if err := s.transfer(&e, path, want, off, false); err != nil {
		return 0, err
	}
	if len(want) < len(p) {
		return len(want), io.EOF
	}
	return len(want), nil
}

// transfer reads or writes p at off within e's clusters, one device access
// per run of consecutive clusters.
func (s *Store) transfer(e *entry, path string, p []byte, off int64, write bool) error {
	cs := s.g.clusterSize
	for len(p) > 0 {
		ci := uint32(off / cs)
		in := off % cs
		if e.first == 0 {
			return fmt.Errorf("%w: file %s has %d bytes but no clusters", ErrCorrupt, path, e.size)
		}
		c, ok, err := s.ch.at(e.first, ci)
		if err != nil {
			return fmt.Errorf("file %s: %w", path, err)
		}
		if !ok {
			return fmt.Errorf("%w: file %s: cluster chain ends before cluster %d that byte %d needs", ErrCorrupt, path, ci, off)
		}
		need := (in + int64(len(p)) + cs - 1) / cs
		run, err := s.ch.run(c, uint32(min(need, 1<<16)))
		if err != nil {
			return fmt.Errorf("file %s: %w", path, err)
		}
		n := min(int64(run)*cs-in, int64(len(p)))
		pos := s.g.clusterOffset(c) + in
		if write {
			err = s.io.writeAt(p[:n], pos)
		} else {
			err = s.io.readAt(p[:n], pos)
		}
		if err != nil {
			return fmt.Errorf("file %s: %w", path, err)
		}
		p, off = p[n:], off+n
	}
	return nil
}

// clustersFor is how many clusters size bytes need.
func (s *Store) clustersFor(size int64) uint32 {
	return uint32((size + s.g.clusterSize - 1) / s.g.clusterSize)
}

// grow makes e's chain hold at least size bytes (the FAT only).
func (s *Store) grow(e *entry, size int64) error {
	need := s.clustersFor(size)
	if need == 0 {
		return nil
	}
	if e.first == 0 {
		first, err := s.ch.extend(0, need)
		if err != nil {
			return err
		}
		e.first = first
		return nil
	}
	last, have, err := s.ch.tail(e.first)
	if err != nil {
		return err
	}
	if have < need {
		_, err = s.ch.extend(last, need-have)
	}
	return err
}

// zeroRange writes zeros over [from, to) of e's data.
func (s *Store) zeroRange(e *entry, path string, from, to int64) error {
	z := s.zeros()
	for from < to {
		n := min(int64(len(z)), to-from)
		if err := s.transfer(e, path, z[:n], from, true); err != nil {
			return err
		}
		from += n
	}
	return nil
}

func (s *Store) regularFile(path string) (entry, error) {
	parts, err := splitPath(path)
	if err != nil {
		return entry{}, err
	}
	if len(parts) == 0 {
		return entry{}, fmt.Errorf("%w: the root is a directory", fsapi.ErrIsDir)
	}
	e, _, err := s.walk(path, parts)
	if err != nil {
		return entry{}, err
	}
	if e.isDir() {
		return entry{}, fmt.Errorf("%w: %s", fsapi.ErrIsDir, path)
	}
	return e, nil
}

// WriteAt writes p at off into the existing regular file at path, extending
// it (a gap reads as zeros); mtime becomes its modification time.
func (s *Store) WriteAt(path string, p []byte, off int64, mtime int64) (n int, err error) {
	defer s.done(&err)
	e, err := s.regularFile(path)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: negative offset %d", fsapi.ErrInvalid, off)
	}
	if len(p) == 0 {
		return 0, nil // like write(2): no data, no change
	}
	end := off + int64(len(p))
	if end > maxFATSize {
		return 0, fmt.Errorf("%w: %s would end at byte %d", ErrTooLarge, path, end)
	}
	old := int64(e.size)
	if err := s.grow(&e, end); err != nil {
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	if off > old {
		if err := s.zeroRange(&e, path, old, off); err != nil {
			return 0, err
		}
	}
	if err := s.transfer(&e, path, p, off, true); err != nil {
		return 0, err
	}
	if end > old {
		e.size = uint32(end)
	}
	e.touch(mtime)
	if err := s.saveEntry(&e); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Truncate sets the size of the regular file at path.
func (s *Store) Truncate(path string, size int64, mtime int64) (err error) {
	defer s.done(&err)
	e, err := s.regularFile(path)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("%w: negative size %d", fsapi.ErrInvalid, size)
	}
	if size > maxFATSize {
		return fmt.Errorf("%w: %s to %d bytes", ErrTooLarge, path, size)
	}
	old := int64(e.size)
	switch {
	case size < old || (size == 0 && e.first != 0):
		if e.first != 0 {
			keep := s.clustersFor(size)
			if err := s.ch.truncate(e.first, keep); err != nil {
				return fmt.Errorf("truncate %s: %w", path, err)
			}
			if keep == 0 {
				e.first = 0
			}
		}
	case size > old:
		if err := s.grow(&e, size); err != nil {
			return fmt.Errorf("truncate %s: %w", path, err)
		}
		if err := s.zeroRange(&e, path, old, size); err != nil {
			return err
		}
	}
	e.size = uint32(size)
	e.touch(mtime)
	return s.saveEntry(&e)
}

// touchDir records mtime on the directory whose path holds dirs (root
// first); the root has no entry to change.
func (s *Store) touchDir(path string, mtime int64) error {
	parts, err := splitPath(path)
	if err != nil || len(parts) <= 1 {
		return err
	}
	d, _, err := s.walk(path, parts[:len(parts)-1])
	if err != nil {
		return err
	}
	d.touch(mtime)
	return s.saveEntry(&d)
}

// Create makes an empty regular file at path, truncating an existing one.
func (s *Store) Create(path string, mtime int64) (err error) {
	defer s.done(&err)
	parent, name, _, err := s.lookupParent(path)
	if err != nil {
		return err
	}
	e, ok, err := s.find(&parent, name)
	if err != nil {
		return err
	}
	if ok {
		if e.isDir() {
			return fmt.Errorf("%w: %s", fsapi.ErrIsDir, path)
		}
		if e.first != 0 {
			if err := s.ch.truncate(e.first, 0); err != nil {
				return fmt.Errorf("create %s: %w", path, err)
			}
		}
		e.first, e.size = 0, 0
		e.touch(mtime)
		return s.saveEntry(&e)
	}
	e = entry{attr: attrArchive}
	e.touch(mtime)
	e.crtDate, e.crtTime = e.wrtDate, e.wrtTime
	if err := s.addEntry(&parent, name, &e); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return s.touchDir(path, mtime)
}

// Remove deletes the regular file at path.
func (s *Store) Remove(path string, mtime int64) (err error) {
	defer s.done(&err)
	e, err := s.regularFile(path)
	if err != nil {
		return err
	}
	if e.first != 0 {
		if err := s.ch.truncate(e.first, 0); err != nil {
			return fmt.Errorf("remove %s: %w", path, err)
		}
	}
	if err := s.deleteEntry(&e); err != nil {
		return err
	}
	return s.touchDir(path, mtime)
}

// Mkdir makes a directory at path.
func (s *Store) Mkdir(path string, mtime int64) (err error) {
	defer s.done(&err)
	parent, name, _, err := s.lookupParent(path)
	if err != nil {
		return err
	}
	if _, ok, err := s.find(&parent, name); err != nil {
		return err
	} else if ok {
		return fmt.Errorf("%w: %s", fsapi.ErrExist, path)
	}
	c, err := s.ch.extend(0, 1)
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	if err := s.zeroCluster(c); err != nil {
		return err
	}
	dots := make([]byte, 2*slotSize)
	up := parent.first
	if parent.root {
		up = 0 // ".." naming the root holds 0
	}
	dotEntry(dots[:slotSize], ".", c, mtime)
	dotEntry(dots[slotSize:], "..", up, mtime)
	if err := s.io.writeAt(dots, s.g.clusterOffset(c)); err != nil {
		return err
	}
	e := entry{attr: attrDir, first: c}
	e.touch(mtime)
	e.crtDate, e.crtTime = e.wrtDate, e.wrtTime
	if err := s.addEntry(&parent, name, &e); err != nil {
		if ferr := s.ch.truncate(c, 0); ferr != nil {
			return fmt.Errorf("mkdir %s: %w (and freeing its cluster: %v)", path, err, ferr)
		}
		return fmt.Errorf("mkdir %s: %w", path, err)
	}
	return s.touchDir(path, mtime)
}

// Rmdir removes the empty directory at path.
func (s *Store) Rmdir(path string, mtime int64) (err error) {
	defer s.done(&err)
	parts, err := splitPath(path)
	if err != nil {
		return err
	}
	if len(parts) == 0 {
		return fmt.Errorf("%w: the root cannot be removed", fsapi.ErrInvalid)
	}
	e, _, err := s.walk(path, parts)
	if err != nil {
		return err
	}
	if err := s.asDir(&e, path); err != nil {
		return err
	}
	empty := true
	if err := s.scanDir(e.first, func(*entry) bool { empty = false; return true }); err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("%w: %s", fsapi.ErrNotEmpty, path)
	}
	if err := s.ch.truncate(e.first, 0); err != nil {
		return fmt.Errorf("rmdir %s: %w", path, err)
	}
	if err := s.deleteEntry(&e); err != nil {
		return err
	}
	return s.touchDir(path, mtime)
}

// Rename moves a file or directory; an existing regular file at to is
// replaced, an existing directory is ErrExist.
func (s *Store) Rename(from, to string, mtime int64) (err error) {
	defer s.done(&err)
	fparts, err := splitPath(from)
	if err != nil {
		return err
	}
	if len(fparts) == 0 {
		return fmt.Errorf("%w: the root cannot be renamed", fsapi.ErrInvalid)
	}
	src, _, err := s.walk(from, fparts)
	if err != nil {
		return err
	}
	parent, name, dirs, err := s.lookupParent(to)
	if err != nil {
		return err
	}
	if src.isDir() {
		for _, d := range dirs {
			if d == src.first {
				return fmt.Errorf("%w: cannot move %s into itself (%s)", fsapi.ErrInvalid, from, to)
			}
		}
	}
	dst, exists, err := s.find(&parent, name)
	if err != nil {
		return err
	}
	same := exists && dst.dir == src.dir && dst.slot == src.slot
	if exists && !same {
		switch {
		case dst.isDir():
			return fmt.Errorf("%w: %s is a directory", fsapi.ErrExist, to)
		case src.isDir():
			return fmt.Errorf("%w: cannot replace file %s by directory %s", fsapi.ErrNotDir, to, from)
		}
		if dst.first != 0 {
			if err := s.ch.truncate(dst.first, 0); err != nil {
				return fmt.Errorf("rename: replace %s: %w", to, err)
			}
		}
		if err := s.deleteEntry(&dst); err != nil {
			return err
		}
	}
	if same {
		// A change of case only: free the old slots first so the new
		// name may reuse them.
		if err := s.deleteEntry(&src); err != nil {
			return err
		}
	}
	moved := src
	if err := s.addEntry(&parent, name, &moved); err != nil {
		return fmt.Errorf("rename %s: %w", from, err)
	}
	if !same {
		if err := s.deleteEntry(&src); err != nil {
			return err
		}
	}
	if src.isDir() && src.dir != parent.first {
		up := parent.first
		if parent.root {
			up = 0
		}
		var dd [slotSize]byte
		pos := s.g.clusterOffset(src.first) + slotSize
		if err := s.io.readAt(dd[:], pos); err != nil {
			return err
		}
		if string(dd[:11]) == "..         " {
			dd[20], dd[21] = byte(up>>16), byte(up>>24)
			dd[26], dd[27] = byte(up), byte(up>>8)
			if err := s.io.writeAt(dd[:], pos); err != nil {
				return err
			}
		}
	}
	if err := s.touchDir(from, mtime); err != nil {
		return err
	}
	if src.dir != parent.first {
		return s.touchDir(to, mtime)
	}
	return nil
}

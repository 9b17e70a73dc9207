// Package dirstore serves a directory as an fsapi.FileStore: the file store
// of the solo driver (the lockstep runtime later uses the FAT32 boot disk).
// Every access goes through os.Root, so no path, ".." or symlink can reach
// outside the directory; open files are kept in a small LRU so the HTTP
// service's chunked ReadAt calls do not reopen a file for every chunk.
package dirstore

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// DefaultMaxOpen is the number of open files kept when New is given 0.
const DefaultMaxOpen = 64

// Store is a directory served read-only. It is safe for concurrent use.
// A file replaced while its descriptor is cached keeps being read from the
// old copy until the descriptor is evicted; the store, like a disk, is meant
// to stay unchanged while a VS runs on it.
type Store struct {
	dir     string
	root    *os.Root
	maxOpen int

	mu    sync.Mutex
	lru   *list.List // of *entry, most recent first
	byKey map[string]*list.Element
}

type entry struct {
	path string
	f    *os.File
}

// New opens dir; maxOpen bounds the cached descriptors (0: DefaultMaxOpen).
func New(dir string, maxOpen int) (*Store, error) {
	if maxOpen < 0 {
		return nil, fmt.Errorf("dirstore: max open files %d is negative", maxOpen)
	}
	if maxOpen == 0 {
		maxOpen = DefaultMaxOpen
	}
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("dirstore: root %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("dirstore: root %s is not a directory", dir)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("dirstore: root %s: %w", dir, err)
	}
	return &Store{dir: dir, root: root, maxOpen: maxOpen, lru: list.New(), byKey: map[string]*list.Element{}}, nil
}

// Close closes the cached descriptors and the root.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for e := s.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*entry).f.Close()
	}
	s.lru.Init()
	clear(s.byKey)
	return s.root.Close()
}

// OpenFiles is the number of cached descriptors (at most maxOpen).
func (s *Store) OpenFiles() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// clean turns a store path into a name for os.Root, refusing what could only
// be an attempt to leave the root ("..", NUL). os.Root refuses the rest
// (symlinks that lead out).
func clean(path string) (string, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return "", fmt.Errorf("%w: %q contains NUL", fsapi.ErrInvalid, path)
	}
	p := strings.Trim(path, "/")
	if p == "" {
		return ".", nil
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q climbs above the root", fsapi.ErrInvalid, path)
		}
	}
	return p, nil
}

// mapErr turns an os error into the fsapi vocabulary.
func mapErr(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %s", fsapi.ErrNotExist, path)
	case strings.Contains(err.Error(), "escapes"):
		// os.Root's "path escapes from parent" (no exported sentinel).
		return fmt.Errorf("%w: %s leads outside the root", fsapi.ErrInvalid, path)
	default:
		return fmt.Errorf("dirstore %s: %w", path, err)
	}
}

func info(name string, fi fs.FileInfo) fsapi.FileInfo {
	out := fsapi.FileInfo{Name: name, ModTime: fi.ModTime().Unix(), Dir: fi.IsDir()}
	if !out.Dir {
		out.Size = fi.Size()
	}
	return out
}

// Stat describes a file or directory ("" or "/" is the root).
func (s *Store) Stat(path string) (fsapi.FileInfo, error) {
	p, err := clean(path)
	if err != nil {
		return fsapi.FileInfo{}, err
	}
	fi, err := s.cachedStat(p)
	if err != nil {
		fi, err = s.root.Stat(p)
	}
	if err != nil {
		return fsapi.FileInfo{}, mapErr(path, err)
	}
	if !fi.IsDir() && !fi.Mode().IsRegular() {
		return fsapi.FileInfo{}, fmt.Errorf("%w: %s is not a regular file or directory", fsapi.ErrNotExist, path)
	}
	name := p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		name = p[i+1:]
	}
	if p == "." {
		name = ""
	}
	return info(name, fi), nil
}

// cachedStat stats a file through its cached descriptor (one fstat instead
// of a walk through the root), or fails if none is cached.
func (s *Store) cachedStat(p string) (fs.FileInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.byKey[p]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return e.Value.(*entry).f.Stat()
}

// file returns a cached descriptor for a regular file, opening it if needed.
func (s *Store) file(path string) (*os.File, error) {
	p, err := clean(path)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.byKey[p]; ok {
		s.lru.MoveToFront(e)
		return e.Value.(*entry).f, nil
	}
	f, err := s.root.Open(p)
	if err != nil {
		return nil, mapErr(path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, mapErr(path, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", fsapi.ErrInvalid, path)
	}
	for s.lru.Len() >= s.maxOpen {
		old := s.lru.Back()
		oe := s.lru.Remove(old).(*entry)
		delete(s.byKey, oe.path)
		// A reader holding oe.f finishes its ReadAt first: see ReadAt.
		oe.f.Close()
	}
	s.byKey[p] = s.lru.PushFront(&entry{path: p, f: f})
	return f, nil
}

// ReadAt reads len(b) bytes of a file at off, like io.ReaderAt.
func (s *Store) ReadAt(path string, b []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("%w: %s: negative offset %d", fsapi.ErrInvalid, path, off)
	}
	for attempt := 0; ; attempt++ {
		f, err := s.file(path)
		if err != nil {
			return 0, err
		}
		n, err := f.ReadAt(b, off)
		if errors.Is(err, os.ErrClosed) && attempt < 3 {
			continue // evicted by another reader between lookup and read
		}
		if err != nil && err != io.EOF {
			return n, fmt.Errorf("dirstore %s: %w", path, err)
		}
		return n, err
	}
}

// ReadDir lists a directory sorted by name. Entries that are neither regular
// files nor directories, and symlinks that lead outside the root or nowhere,
// are left out.
func (s *Store) ReadDir(path string) ([]fsapi.FileInfo, error) {
	p, err := clean(path)
	if err != nil {
		return nil, err
	}
	d, err := s.root.Open(p)
	if err != nil {
		return nil, mapErr(path, err)
	}
	defer d.Close()
	ents, err := d.ReadDir(-1)
	if err != nil {
		return nil, mapErr(path, err)
	}
	out := make([]fsapi.FileInfo, 0, len(ents))
	for _, e := range ents {
		child := e.Name()
		if p != "." {
			child = p + "/" + child
		}
		fi, err := s.root.Stat(child) // follows symlinks, inside the root only
		if err != nil || (!fi.IsDir() && !fi.Mode().IsRegular()) {
			continue
		}
		out = append(out, info(e.Name(), fi))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

var _ fsapi.FileStore = (*Store)(nil)

package memfs

import (
	"fmt"
	"path"
	"strings"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// Clone is an independent copy of the store (synthetic files stay
// synthetic until written), so each replica of a replay changes its own.
func (f *FS) Clone() *FS {
	c := &FS{nodes: make(map[string]*node, len(f.nodes))}
	//detcheck:orderless: a copy
	for p, n := range f.nodes {
		cp := *n
		if n.data != nil {
			cp.data = append([]byte(nil), n.data...)
		}
		c.nodes[p] = &cp
	}
	return c
}

// Writable is the store as an fsapi.WritableFileStore, with the semantics
// of dirstore.Writable (changes record mtime on what changed and on its
// parent directory), for replays of sessions that upload.
type Writable struct{ *FS }

var _ fsapi.WritableFileStore = Writable{}

// maxWritable bounds a file written in memory.
const maxWritable = 1 << 30

func (w Writable) target(p string) (string, error) {
	if strings.Contains("/"+p+"/", "/../") {
		return "", fsapi.ErrInvalid
	}
	q := clean(p)
	if q == "" {
		return "", fmt.Errorf("%w: the root itself cannot be changed", fsapi.ErrInvalid)
	}
	return q, nil
}

// parentDir fails unless q's parent is a directory.
func (w Writable) parentDir(q string) (*node, error) {
	d, ok := w.nodes[parent(q)]
	if !ok {
		return nil, fmt.Errorf("%w: parent of %s", fsapi.ErrNotExist, q)
	}
	if !d.info.Dir {
		return nil, fmt.Errorf("%w: parent of %s", fsapi.ErrNotDir, q)
	}
	return d, nil
}

func (w Writable) file(p string) (*node, error) {
	q, err := w.target(p)
	if err != nil {
		return nil, err
	}
	n, ok := w.nodes[q]
	if !ok {
		return nil, fmt.Errorf("%w: %s", fsapi.ErrNotExist, p)
	}
	if n.info.Dir {
		return nil, fmt.Errorf("%w: %s", fsapi.ErrIsDir, p)
	}
	if n.data == nil && n.info.Size > 0 { // materialise a synthetic file
		if n.info.Size > maxWritable {
			return nil, fmt.Errorf("%w: %s is too big to change in memory", fsapi.ErrInvalid, p)
		}
		n.data = make([]byte, n.info.Size)
		Fill(n.data, n.seed, 0)
	}
	if n.data == nil {
		n.data = []byte{}
	}
	return n, nil
}

func (w Writable) Create(p string, mtime int64) error {
	q, err := w.target(p)
	if err != nil {
		return err
	}
	d, err := w.parentDir(q)
	if err != nil {
		return err
	}
	if n, ok := w.nodes[q]; ok && n.info.Dir {
		return fmt.Errorf("%w: %s", fsapi.ErrIsDir, p)
	}
	w.nodes[q] = &node{info: fsapi.FileInfo{Name: path.Base(q), ModTime: mtime}, data: []byte{}}
	d.info.ModTime = mtime
	return nil
}

func (w Writable) WriteAt(p string, b []byte, off int64, mtime int64) (int, error) {
	if off < 0 || off+int64(len(b)) > maxWritable {
		return 0, fmt.Errorf("%w: %s: write at %d", fsapi.ErrInvalid, p, off)
	}
	n, err := w.file(p)
	if err != nil {
		return 0, err
	}
	if end := off + int64(len(b)); end > int64(len(n.data)) {
		n.data = append(n.data, make([]byte, end-int64(len(n.data)))...)
	}
	copy(n.data[off:], b)
	n.info.Size = int64(len(n.data))
	n.info.ModTime = mtime
	return len(b), nil
}

func (w Writable) Truncate(p string, size int64, mtime int64) error {
	if size < 0 || size > maxWritable {
		return fmt.Errorf("%w: %s: size %d", fsapi.ErrInvalid, p, size)
	}
	n, err := w.file(p)
	if err != nil {
		return err
	}
	if size <= int64(len(n.data)) {
		n.data = n.data[:size]
	} else {
		n.data = append(n.data, make([]byte, size-int64(len(n.data)))...)
	}
	n.info.Size, n.info.ModTime = size, mtime
	return nil
}

func (w Writable) Remove(p string, mtime int64) error {
	q, err := w.target(p)
	if err != nil {
		return err
	}
	n, ok := w.nodes[q]
	if !ok {
		return fmt.Errorf("%w: %s", fsapi.ErrNotExist, p)
	}
	if n.info.Dir {
		return fmt.Errorf("%w: %s", fsapi.ErrIsDir, p)
	}
	delete(w.nodes, q)
	w.nodes[parent(q)].info.ModTime = mtime
	return nil
}

func (w Writable) Mkdir(p string, mtime int64) error {
	q, err := w.target(p)
	if err != nil {
		return err
	}
	d, err := w.parentDir(q)
	if err != nil {
		return err
	}
	if _, ok := w.nodes[q]; ok {
		return fmt.Errorf("%w: %s", fsapi.ErrExist, p)
	}
	w.nodes[q] = &node{info: fsapi.FileInfo{Name: path.Base(q), Dir: true, ModTime: mtime}}
	d.info.ModTime = mtime
	return nil
}

func (w Writable) hasChildren(q string) bool {
	//detcheck:orderless: an existence test
	for c := range w.nodes {
		if c != "" && parent(c) == q {
			return true
		}
	}
	return false
}

func (w Writable) Rmdir(p string, mtime int64) error {
	q, err := w.target(p)
	if err != nil {
		return err
	}
	n, ok := w.nodes[q]
	switch {
	case !ok:
		return fmt.Errorf("%w: %s", fsapi.ErrNotExist, p)
	case !n.info.Dir:
		return fmt.Errorf("%w: %s", fsapi.ErrNotDir, p)
	case w.hasChildren(q):
		return fmt.Errorf("%w: %s", fsapi.ErrNotEmpty, p)
	}
	delete(w.nodes, q)
	w.nodes[parent(q)].info.ModTime = mtime
	return nil
}

func (w Writable) Rename(from, to string, mtime int64) error {
	qf, err := w.target(from)
	if err != nil {
		return err
	}
	qt, err := w.target(to)
	if err != nil {
		return err
	}
	src, ok := w.nodes[qf]
	if !ok {
		return fmt.Errorf("%w: %s", fsapi.ErrNotExist, from)
	}
	if _, err := w.parentDir(qt); err != nil {
		return err
	}
	if dst, ok := w.nodes[qt]; ok && (dst.info.Dir || src.info.Dir) {
		return fmt.Errorf("%w: %s", fsapi.ErrExist, to)
	}
	if src.info.Dir && (qt == qf || strings.HasPrefix(qt, qf+"/")) {
		return fmt.Errorf("%w: cannot move %s into itself", fsapi.ErrInvalid, from)
	}
	// Move the node and, for a directory, everything below it (in a
	// sorted order, though the result does not depend on it).
	var moves []string
	//detcheck:orderless: collected; each key moves independently
	for q := range w.nodes {
		if q == qf || strings.HasPrefix(q, qf+"/") {
			moves = append(moves, q)
		}
	}
	moved := make(map[string]*node, len(moves))
	for _, q := range moves {
		moved[qt+strings.TrimPrefix(q, qf)] = w.nodes[q]
		delete(w.nodes, q)
	}
	//detcheck:orderless: distinct keys
	for q, n := range moved {
		w.nodes[q] = n
	}
	src.info.Name = path.Base(qt)
	w.nodes[parent(qf)].info.ModTime = mtime
	w.nodes[parent(qt)].info.ModTime = mtime
	return nil
}

// Package memfs is an in-memory fsapi.FileStore for tests and replays: small
// files hold their bytes, big ones are synthetic (every byte a function of
// the file's seed and offset), so a 1 GiB file costs no memory and both
// replicas of a test read identical content.
package memfs

import (
	"encoding/binary"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/ftvs/ftvs/ftvs/fsapi"
)

// FS is the store. The zero value is not usable; call New.
type FS struct {
	nodes map[string]*node // by clean path without leading slash; "" is the root
}

type node struct {
	info fsapi.FileInfo
	data []byte // nil for synthetic files
	seed uint64
}

// New returns a store holding only the root directory.
func New() *FS {
	return &FS{nodes: map[string]*node{"": {info: fsapi.FileInfo{Name: "", Dir: true}}}}
}

// Add stores a file with the given content, creating parent directories.
func (f *FS) Add(p string, data []byte, modTime int64) {
	p = clean(p)
	f.mkdirs(path.Dir(p), modTime)
	f.nodes[p] = &node{info: fsapi.FileInfo{Name: path.Base(p), Size: int64(len(data)), ModTime: modTime}, data: data}
}

// AddSynthetic stores a file of size bytes whose content is Pattern(seed, off).
func (f *FS) AddSynthetic(p string, size int64, seed uint64, modTime int64) {
	p = clean(p)
	f.mkdirs(path.Dir(p), modTime)
	f.nodes[p] = &node{info: fsapi.FileInfo{Name: path.Base(p), Size: size, ModTime: modTime}, seed: seed}
}

// Mkdir creates a directory and its parents.
func (f *FS) Mkdir(p string, modTime int64) { f.mkdirs(clean(p), modTime) }

func (f *FS) mkdirs(p string, modTime int64) {
	if p == "." || p == "/" {
		p = ""
	}
	for p != "" {
		if _, ok := f.nodes[p]; ok {
			return
		}
		f.nodes[p] = &node{info: fsapi.FileInfo{Name: path.Base(p), Dir: true, ModTime: modTime}}
		p = path.Dir(p)
		if p == "." {
			p = ""
		}
	}
}

func clean(p string) string {
	p = strings.Trim(path.Clean("/"+p), "/")
	return p
}

func (f *FS) lookup(p string) (*node, error) {
	if strings.Contains("/"+p+"/", "/../") {
		return nil, fsapi.ErrInvalid
	}
	n, ok := f.nodes[clean(p)]
	if !ok {
		return nil, fsapi.ErrNotExist
	}
	return n, nil
}

// Stat describes one file or directory.
func (f *FS) Stat(p string) (fsapi.FileInfo, error) {
	n, err := f.lookup(p)
	if err != nil {
		return fsapi.FileInfo{}, err
	}
	return n.info, nil
}

// ReadAt reads a file like io.ReaderAt.
func (f *FS) ReadAt(p string, b []byte, off int64) (int, error) {
	n, err := f.lookup(p)
	if err != nil {
		return 0, err
	}
	if n.info.Dir {
		return 0, fsapi.ErrInvalid
	}
	if off < 0 {
		return 0, fsapi.ErrInvalid
	}
	if off >= n.info.Size {
		return 0, io.EOF
	}
	k := len(b)
	if rest := n.info.Size - off; int64(k) > rest {
		k = int(rest)
	}
	if n.data != nil {
		copy(b, n.data[off:off+int64(k)])
	} else {
		Fill(b[:k], n.seed, off)
	}
	if k < len(b) {
		return k, io.EOF
	}
	return k, nil
}

// ReadDir lists a directory sorted by name.
func (f *FS) ReadDir(p string) ([]fsapi.FileInfo, error) {
	n, err := f.lookup(p)
	if err != nil {
		return nil, err
	}
	if !n.info.Dir {
		return nil, fsapi.ErrInvalid
	}
	dir := clean(p)
	var out []fsapi.FileInfo
	//detcheck:orderless: collected, then sorted
	for q, c := range f.nodes {
		if q != "" && parent(q) == dir {
			out = append(out, c.info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func parent(q string) string {
	d := path.Dir(q)
	if d == "." {
		return ""
	}
	return d
}

// Fill writes the synthetic content of a file with seed at offset off.
// Each 8-byte word is a mix of the seed and the word index, so any shift or
// mix-up of offsets shows.
func Fill(b []byte, seed uint64, off int64) {
	i := 0
	// Unaligned head, byte by byte.
	for ; i < len(b) && (off+int64(i))&7 != 0; i++ {
		pos := off + int64(i)
		b[i] = byte(mix(seed^uint64(pos>>3)) >> (uint(pos&7) * 8))
	}
	// Whole words.
	for ; i+8 <= len(b); i += 8 {
		binary.LittleEndian.PutUint64(b[i:], mix(seed^uint64((off+int64(i))>>3)))
	}
	// Tail.
	for ; i < len(b); i++ {
		pos := off + int64(i)
		b[i] = byte(mix(seed^uint64(pos>>3)) >> (uint(pos&7) * 8))
	}
}

func mix(x uint64) uint64 {
	// splitmix64 finaliser
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// Package fsapi is the file-store contract between the deterministic services
// and the shell. A FileStore is like a disk: both CoServers hold identical
// copies, the services read it synchronously inside machine.Step, and it is
// not part of the machine's snapshot. The shell implements it (a directory in
// the solo driver; the FAT32 virtual boot disk later).
package fsapi

import "errors"

// FileInfo describes one file or directory.
type FileInfo struct {
	Name    string // base name
	Size    int64
	ModTime int64 // seconds since the Unix epoch, from the file's metadata
	Dir     bool
}

// Errors a FileStore returns.
var (
	ErrNotExist = errors.New("file does not exist")
	ErrInvalid  = errors.New("invalid path")
)

// FileStore reads files by slash-separated path relative to the store's root
// ("" or "/" is the root). Paths are cleaned by the caller; an implementation
// must still refuse any path that escapes the root.
type FileStore interface {
	Stat(path string) (FileInfo, error)
	// ReadAt reads len(p) bytes at off, like io.ReaderAt (io.EOF at the end).
	ReadAt(path string, p []byte, off int64) (int, error)
	// ReadDir lists a directory sorted by name.
	ReadDir(path string) ([]FileInfo, error)
}

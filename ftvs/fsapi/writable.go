package fsapi

import "errors"

// More errors a WritableFileStore returns.
var (
	ErrExist    = errors.New("file already exists")
	ErrNotEmpty = errors.New("directory not empty")
	ErrIsDir    = errors.New("is a directory")
	ErrNotDir   = errors.New("not a directory")
)

// WritableFileStore is a FileStore the services may change (FTP uploads).
// Writes happen inside machine.Step, so an implementation must be
// deterministic: the same calls on both CoServers' copies leave the same
// bytes, names and metadata. That is why every change carries mtime (seconds
// since the Unix epoch, from the machine's virtual time): the store records it
// as the modification time of what changed and of its parent directory,
// instead of reading a clock. Paths are as in FileStore.
type WritableFileStore interface {
	FileStore
	// Create makes an empty regular file, truncating an existing one.
	// The parent directory must exist; a directory at path is ErrIsDir.
	Create(path string, mtime int64) error
	// WriteAt writes p at off into an existing regular file, extending it
	// as needed (like io.WriterAt; a short write returns an error).
	WriteAt(path string, p []byte, off int64, mtime int64) (int, error)
	// Truncate sets an existing regular file's size.
	Truncate(path string, size int64, mtime int64) error
	// Remove deletes a regular file (a directory is ErrIsDir).
	Remove(path string, mtime int64) error
	// Rename moves a file or directory; an existing regular file at to is
	// replaced, an existing directory is ErrExist.
	Rename(from, to string, mtime int64) error
	// Mkdir makes a directory (ErrExist when something is there).
	Mkdir(path string, mtime int64) error
	// Rmdir removes an empty directory (ErrNotEmpty otherwise).
	Rmdir(path string, mtime int64) error
}

// Syncer is a store that can make its completed changes durable (the VS
// boot disk: in a pair, on both CoServers' copies, the secondary's before
// its ack, so before the reply that follows leaves the primary). The
// services call it before they report an upload complete.
type Syncer interface {
	Sync() error
}

// Sync makes fs's completed changes durable when fs is a Syncer; other
// stores have nothing to do.
func Sync(fs FileStore) error {
	if s, ok := fs.(Syncer); ok {
		return s.Sync()
	}
	return nil
}

package inventory

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Snapshot size limits: real ones are a few MB unpacked with some
// thousands of entries; the limits stop a decompression bomb.
const (
	maxSnapshotBytes   = 512 << 20
	maxSnapshotEntries = 200000
)

// Unpack extracts a snapshot tarball (gzip-compressed tar, as ghw and
// `ftvs hwcheck snapshot` write it) into dir. Only directories, regular
// files and symlinks that stay inside dir are created.
func Unpack(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("open snapshot: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("snapshot %s: not a gzip-compressed tarball: %w", file, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	root := filepath.Clean(dir) + string(os.PathSeparator)
	var total int64
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return fmt.Errorf("snapshot %s: empty tarball", file)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("snapshot %s: corrupt or truncated tarball after %d entries: %w", file, n, err)
		}
		if n >= maxSnapshotEntries {
			return fmt.Errorf("snapshot %s: more than %d entries", file, maxSnapshotEntries)
		}
		target := filepath.Join(dir, hdr.Name)
		if !strings.HasPrefix(target+string(os.PathSeparator), root) {
			return fmt.Errorf("snapshot %s: entry %q escapes the snapshot root", file, hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(target, 0o755)
		case tar.TypeReg:
			total += hdr.Size
			if total > maxSnapshotBytes {
				return fmt.Errorf("snapshot %s: more than %d bytes unpacked", file, maxSnapshotBytes)
			}
			err = writeEntry(target, tr)
		case tar.TypeSymlink:
			link := hdr.Linkname
			if filepath.IsAbs(link) {
				continue // e.g. etc/mtab -> /proc/self/mounts: would point at this machine
			}
			if !strings.HasPrefix(filepath.Join(filepath.Dir(target), link)+string(os.PathSeparator), root) {
				return fmt.Errorf("snapshot %s: symlink %q -> %q escapes the snapshot root", file, hdr.Name, link)
			}
			if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
				err = os.Symlink(link, target)
			}
		default:
			continue // devices, fifos, hard links: nothing the inventory reads
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("snapshot %s: truncated in entry %q", file, hdr.Name)
			}
			return fmt.Errorf("snapshot %s: entry %q: %w", file, hdr.Name, err)
		}
	}
}

func writeEntry(target string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// scratchDir makes a temporary directory for an unpacked or captured
// snapshot, in memory (/dev/shm) when the machine has it: a snapshot is
// thousands of tiny files, which a busy disk writes 100 times slower.
func scratchDir(pattern string) (string, error) {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", pattern); err == nil {
			return dir, nil
		}
	}
	return os.MkdirTemp("", pattern)
}

package vsrun

import (
	"errors"
	"fmt"
	"io"
	"path"

	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
)

// MaxRecordedContent bounds the file content a recording embeds: a log
// carries the whole file store so a replay needs nothing else.
const MaxRecordedContent = 64 << 20

// NewRecording starts an input log of a session on w: the machine's
// configuration and every directory and file of the store, content
// included (at most MaxRecordedContent bytes in all). Feed it inputs with
// its Input method and Close it at the end.
func NewRecording(w io.Writer, cfg machine.Config, store fsapi.FileStore) (*inputlog.Writer, error) {
	lw := inputlog.NewWriter(w, cfg)
	total := int64(0)
	var walk func(dir string) error
	walk = func(dir string) error {
		ents, err := store.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("record the file store: %w", err)
		}
		for _, e := range ents {
			p := path.Join(dir, e.Name)
			if e.Dir {
				lw.Dir(p, e.ModTime)
				if err := walk(p); err != nil {
					return err
				}
				continue
			}
			if total += e.Size; total > MaxRecordedContent {
				return fmt.Errorf("record the file store: more than %d MiB of content (at %s); record a session on a smaller directory", MaxRecordedContent>>20, p)
			}
			b := make([]byte, e.Size)
			if n, err := store.ReadAt(p, b, 0); int64(n) != e.Size && err != nil {
				return fmt.Errorf("record the file store: read %s: %w", p, err)
			}
			lw.File(p, e.ModTime, b)
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	return lw, nil
}

// NewBootDiskRecording starts an input log of a session served from the
// solo VS's boot disk: the configuration and the disk's image as it is now
// (its non-zero sectors), so replicas replay uploads into their own copies.
func NewBootDiskRecording(w io.Writer, cfg machine.Config, s *Solo) (*inputlog.Writer, error) {
	if s.boot == nil {
		return nil, errors.New("record: the VS serves no boot disk")
	}
	lw := inputlog.NewWriter(w, cfg)
	lw.BootDisk(s.boot.dev)
	return lw, nil
}

package layout

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
)

// Files is the content of a FAT filesystem: slash paths to bytes.
type Files map[string][]byte

// Content is what goes into the FAT partitions.
type Content struct {
	ESP    Files // CoServer boot files (kernel, initramfs, loader)
	System Files // runtime config, keys, install log
	VSBoot Files // the VS's config and initial content
}

// Options of Apply.
type Options struct {
	Wipe    bool   // overwrite a disk that holds partitions or filesystems
	Node    int    // this server's node number, recorded in each vdisk copy
	PairKey []byte // derives the vdisk UUIDs both servers share
}

// ErrInUse is returned when the disk holds partitions or filesystems and
// the caller did not allow wiping it.
var ErrInUse = errors.New("disk is in use")

// Apply writes the plan to the disk at path: it refuses a disk that holds a
// partition table or a filesystem unless wipe is set, clears old
// signatures in every planned partition, writes the GPT and the FAT32
// filesystems with their content, and verifies the result by reading it
// back. path must be the disk the user named; nothing else is opened.
func Apply(path string, p *Plan, c Content, o Options) error {
	if o.Node != 1 && o.Node != 2 {
		return fmt.Errorf("layout: node %d, want 1 or 2", o.Node)
	}
	if len(o.PairKey) == 0 {
		return fmt.Errorf("layout: no pair key to derive the virtual disk identities from")
	}
	sigs, err := Inspect(path)
	if err != nil {
		return err
	}
	if len(sigs) > 0 && !o.Wipe {
		return fmt.Errorf("%s holds %s: %w; set wipe: true (or confirm in the wizard) to overwrite it", path, Describe(sigs), ErrInUse)
	}
	d, err := diskfs.Open(path, diskfs.WithOpenMode(diskfs.ReadWrite), diskfs.WithSectorSize(SectorSize))
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer d.Close()
	if uint64(d.Size) < p.MinBytes {
		return fmt.Errorf("%s is %d bytes; the layout needs %d", path, d.Size, p.MinBytes)
	}
	w, err := d.Backend.Writable()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Old signatures: the disk's head and tail, and the start of every
	// partition (a stale superblock in a raw virtual disk would mislead).
	zeroes := make([]byte, mib)
	offs := []int64{0, d.Size - mib}
	for _, pt := range p.Parts {
		offs = append(offs, int64(pt.Start)*SectorSize)
	}
	for _, off := range offs {
		if _, err := w.WriteAt(zeroes, off); err != nil {
			return fmt.Errorf("%s: clear signatures at %d: %w", path, off, err)
		}
	}
	if err := d.Partition(p.gptTable()); err != nil {
		return fmt.Errorf("%s: write GPT: %w", path, err)
	}
	f, err := d.Backend.Sys()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, pt := range p.Parts {
		if pt.Kind == KindVDisk {
			if err := createVDisk(f, pt, o.Node, o.PairKey); err != nil {
				return fmt.Errorf("%s partition %d (%s): %w", path, pt.Index, pt.Name, err)
			}
		}
		if pt.Label == "" {
			continue
		}
		off, size := fatArea(pt)
		if err := FormatFAT32Stamped(d.Backend, off, size, pt.Label, c.filesFor(pt), PairStamp(o.PairKey, pt.Name)); err != nil {
			return fmt.Errorf("%s partition %d (%s): %w", path, pt.Index, pt.Name, err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: sync: %w", path, err)
	}
	return Verify(path, p, c, o)
}

// fatArea is where a partition's FAT lies: the whole partition, or a
// virtual disk's data area.
func fatArea(pt Part) (offset, size int64) {
	if pt.Kind == KindVDisk {
		return int64(pt.Start)*SectorSize + int64(pt.DataOffset), int64(pt.DataSize)
	}
	return int64(pt.Start) * SectorSize, int64(pt.Size)
}

func (c Content) filesFor(pt Part) Files {
	switch pt.Kind {
	case KindESP:
		return c.ESP
	case KindSystem:
		return c.System
	}
	return c.VSBoot
}

// FormatFAT32 makes a FAT32 filesystem of size bytes at offset in b and
// writes files into it, reproducibly with DefaultStamp(label): the same
// arguments give the same bytes whatever the clock.
func FormatFAT32(b backend.Storage, offset, size int64, label string, files Files) error {
	return FormatFAT32Stamped(b, offset, size, label, files, DefaultStamp(label))
}

// FormatFAT32Stamped is FormatFAT32 with the given times and volume ID
// (PairStamp for a disk both CoServers format). Same arguments, same bytes:
// go-diskfs formats in reproducible mode, files are written in path order,
// and st replaces every clock reading go-diskfs made.
func FormatFAT32Stamped(b backend.Storage, offset, size int64, label string, files Files, st Stamp) error {
	if _, _, err := fatDateTime(st.Time); err != nil {
		return err
	}
	if err := checkFATBytes(size); err != nil {
		return err
	}
	fs, err := fat32.Create(b, size, offset, SectorSize, label, true)
	if err != nil {
		return fmt.Errorf("format FAT32: %w", err)
	}
	if err := WriteFiles(fs, files); err != nil {
		return err
	}
	// One read of the geometry and FAT for both passes. Stamp first: it may
	// free clusters (in v's FAT too), which fixFAT32's FSInfo counts.
	v, err := readFATVolume(b, offset)
	if err != nil {
		return fmt.Errorf("stamp FAT32: %w", err)
	}
	if err := stampFAT32(b, offset, v, st); err != nil {
		return fmt.Errorf("stamp FAT32: %w", err)
	}
	return fixFAT32(b, offset, v)
}

func checkFATBytes(size int64) error {
	if size < 40*mib {
		return fmt.Errorf("FAT32 of %d bytes is below the 40 MiB minimum", size)
	}
	switch size {
	case 64 * mib, 129 * mib, 259 * mib, 4096 * mib:
		return fmt.Errorf("FAT32 of exactly %d MiB hits the go-diskfs FAT size bug (#418)", size/mib)
	}
	return nil
}

// WriteFiles writes files (creating directories) into a filesystem, in path
// order so two installs write identical filesystems.
func WriteFiles(fs filesystem.FileSystem, files Files) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	made := map[string]bool{"/": true}
	for _, n := range names {
		p := path.Clean("/" + n)
		for dir := path.Dir(p); !made[dir]; dir = path.Dir(dir) {
			if err := fs.Mkdir(dir); err != nil {
				return fmt.Errorf("mkdir %s: %w", dir, err)
			}
			made[dir] = true
		}
		f, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("create %s: %w", p, err)
		}
		if _, err := f.Write(files[n]); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("close %s: %w", p, err)
		}
	}
	return nil
}

// Verify reads the disk back with go-diskfs: the GPT must hold exactly the
// planned partitions and every FAT partition the planned files.
func Verify(path string, p *Plan, c Content, o Options) error {
	st, err := file.OpenFromPath(path, true)
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	d, err := diskfs.OpenBackend(st, diskfs.WithSectorSize(SectorSize))
	if err != nil {
		return fmt.Errorf("verify %s: %w", path, err)
	}
	defer d.Close()
	t, err := d.GetPartitionTable()
	if err != nil {
		return fmt.Errorf("verify %s: read GPT: %w", path, err)
	}
	g, ok := t.(*gpt.Table)
	if !ok {
		return fmt.Errorf("verify %s: partition table is %s, want GPT", path, t.Type())
	}
	var got []*gpt.Partition
	for _, pt := range g.Partitions {
		if pt.Type != gpt.Unused {
			got = append(got, pt)
		}
	}
	if len(got) != len(p.Parts) {
		return fmt.Errorf("verify %s: %d partitions, want %d", path, len(got), len(p.Parts))
	}
	for i, want := range p.Parts {
		g := got[i]
		if g.Start != want.Start || g.End != want.End || !strings.EqualFold(string(g.Type), string(want.Type)) || g.Name != want.Name {
			return fmt.Errorf("verify %s: partition %d is %s %d-%d %s, want %s %d-%d %s", path, i+1,
				g.Name, g.Start, g.End, g.Type, want.Name, want.Start, want.End, want.Type)
		}
		if want.Kind == KindVDisk {
			f, err := d.Backend.Sys()
			if err != nil {
				return fmt.Errorf("verify %s: %w", path, err)
			}
			if err := checkVDisk(f, want, o.Node, o.PairKey); err != nil {
				return fmt.Errorf("verify %s partition %d: %w", path, want.Index, err)
			}
		}
		if want.Label == "" {
			continue
		}
		off, size := fatArea(want)
		fs, err := fat32.Read(d.Backend, size, off, SectorSize)
		if err != nil {
			return fmt.Errorf("verify %s partition %d: read FAT32: %w", path, want.Index, err)
		}
		if l := strings.TrimSpace(fs.Label()); l != want.Label {
			return fmt.Errorf("verify %s partition %d: label %q, want %q", path, want.Index, l, want.Label)
		}
		for name, data := range c.filesFor(want) {
			if len(data) == 0 {
				// An empty file has start cluster 0 (as fsck.fat wants),
				// which go-diskfs v1.9.4 refuses to open or list: our own
				// reader checks it.
				if err := verifyEmpty(d.Backend, off, size, name); err != nil {
					return fmt.Errorf("verify %s partition %d: %w", path, want.Index, err)
				}
				continue
			}
			f, err := fs.OpenFile(path2(name), os.O_RDONLY)
			if err != nil {
				return fmt.Errorf("verify %s partition %d: %s: %w", path, want.Index, name, err)
			}
			// One read from offset 0 with room for one byte more than we
			// wrote: go-diskfs v1.9.4 returns bytes past the end of a file
			// when a read starts mid-cluster, so io.ReadAll is not usable.
			back := make([]byte, len(data)+1)
			n, err := f.Read(back)
			back = back[:n]
			if err == io.EOF {
				err = nil
			}
			f.Close()
			if err != nil || !bytes.Equal(back, data) {
				return fmt.Errorf("verify %s partition %d: %s reads back different (%d bytes, want %d; %v)", path, want.Index, name, len(back), len(data), err)
			}
		}
	}
	return nil
}

func path2(n string) string { return path.Clean("/" + n) }

// verifyEmpty checks with ftvs/vbootdisk that the FAT32 of size bytes at
// off holds name as an empty regular file.
func verifyEmpty(b backend.Storage, off, size int64, name string) error {
	f, err := b.Sys()
	if err != nil {
		return err
	}
	st, err := vbootdisk.Open(region{f: f, off: off, size: size})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fi, err := st.Stat(strings.Trim(path2(name), "/"))
	if err != nil || fi.Dir || fi.Size != 0 {
		return fmt.Errorf("%s reads back different (want an empty file; %v)", name, err)
	}
	return nil
}

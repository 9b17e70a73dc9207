// Package layout plans and writes a CoServer's disk: GPT with an EFI system
// partition (the CoServer's boot files), a system partition (config, keys,
// logs) and one partition per virtual disk, the first of which holds the VS
// boot disk (FAT32). The plan depends only on the config, so both servers
// get identical partitions whatever their disk sizes, and the FAT32s are
// formatted reproducibly (reproducible.go: fixed times, a volume ID from the
// pair key), so both servers' VS boot disk data areas are byte-identical.
package layout

import (
	"bytes"
	"fmt"
	"text/tabwriter"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/dustin/go-humanize"

	"github.com/ftvs/ftvs/installer/config"
)

// SectorSize is the logical sector size the layout is written with.
const SectorSize = 512

const (
	mib        = 1 << 20
	alignBytes = mib // every partition starts on a 1 MiB boundary
)

// Kind is what a partition is for.
type Kind string

// Partition kinds.
const (
	KindESP    Kind = "esp"
	KindSystem Kind = "system"
	KindVDisk  Kind = "vdisk"
)

// VDiskType is the GPT partition type of an ftvs virtual disk copy.
const VDiskType gpt.Type = "5F7E3A1C-9B2D-4C6E-8F0A-46545653564B"

// Part is one planned partition.
type Part struct {
	Index  int // 1-based GPT index
	Name   string
	Kind   Kind
	Type   gpt.Type
	Start  uint64 // first sector
	End    uint64 // last sector, inclusive
	Size   uint64 // bytes
	Label  string // FAT volume label, "" = raw
	VDName string // virtual disk name (KindVDisk)
	// Virtual disks: where the data area the VS sees lies inside the
	// partition (after the vdisk metadata and bitmap), and its size.
	DataOffset uint64
	DataSize   uint64
}

// Plan is the full disk layout.
type Plan struct {
	Parts    []Part
	MinBytes uint64 // smallest disk the plan fits on
}

// PlanFor lays out the partitions the config asks for.
func PlanFor(c *config.Config) (*Plan, error) {
	if err := config.CheckFATSize("ESP", c.Disk.ESPSize); err != nil {
		return nil, err
	}
	if err := config.CheckFATSize("system partition", c.Disk.SystemSize); err != nil {
		return nil, err
	}
	if len(c.VirtualDisks) == 0 {
		return nil, fmt.Errorf("no virtual disks: the first is the VS boot disk")
	}
	if err := config.CheckFATSize("the VS boot disk", c.VirtualDisks[0].Size); err != nil {
		return nil, err
	}
	p := &Plan{}
	next := uint64(alignBytes / SectorSize)
	add := func(name string, k Kind, t gpt.Type, size uint64, label, vd string) error {
		if size == 0 || size%alignBytes != 0 {
			return fmt.Errorf("partition %s: size %d is not a positive whole number of MiB", name, size)
		}
		n := size / SectorSize
		p.Parts = append(p.Parts, Part{Index: len(p.Parts) + 1, Name: name, Kind: k, Type: t,
			Start: next, End: next + n - 1, Size: size, Label: label, VDName: vd})
		next += n
		return nil
	}
	if err := add("ftvs-esp", KindESP, gpt.EFISystemPartition, c.Disk.ESPSize, "FTVS-ESP", ""); err != nil {
		return nil, err
	}
	if err := add("ftvs-system", KindSystem, gpt.LinuxFilesystem, c.Disk.SystemSize, "FTVS-SYS", ""); err != nil {
		return nil, err
	}
	for i, v := range c.VirtualDisks {
		label := ""
		if i == 0 {
			label = "FTVS-VS"
		}
		if err := add("ftvs-vd-"+v.Name, KindVDisk, VDiskType, v.Size, label, v.Name); err != nil {
			return nil, err
		}
		pt := &p.Parts[len(p.Parts)-1]
		off, size, err := vdiskData(v.Size, i == 0)
		if err != nil {
			return nil, fmt.Errorf("virtual disk %s: %w", v.Name, err)
		}
		pt.DataOffset, pt.DataSize = off, size
	}
	// 1 MiB at the end holds the backup GPT (33 sectors) with room to spare.
	p.MinBytes = next*SectorSize + alignBytes
	return p, nil
}

// SameSizes says whether two plans give every partition the same place and
// size: what both CoServers must have.
func SameSizes(a, b *Plan) error {
	if len(a.Parts) != len(b.Parts) {
		return fmt.Errorf("%d partitions here, %d on the peer", len(a.Parts), len(b.Parts))
	}
	for i := range a.Parts {
		x, y := a.Parts[i], b.Parts[i]
		if x.Name != y.Name || x.Start != y.Start || x.End != y.End || x.Size != y.Size || x.Type != y.Type {
			return fmt.Errorf("partition %d differs: %s %d-%d (%s) here, %s %d-%d (%s) on the peer",
				x.Index, x.Name, x.Start, x.End, humanize.IBytes(x.Size), y.Name, y.Start, y.End, humanize.IBytes(y.Size))
		}
	}
	return nil
}

// Table renders the plan for the console.
func (p *Plan) Table() string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 2, 4, 2, ' ', 0)
	fmt.Fprintln(w, "#\tNAME\tKIND\tSTART\tEND\tSIZE\tCONTENT")
	for _, pt := range p.Parts {
		var content string
		switch {
		case pt.Kind == KindESP:
			content = "FAT32 " + pt.Label + ": CoServer boot files"
		case pt.Kind == KindSystem:
			content = "FAT32 " + pt.Label + ": config, keys, logs"
		case pt.Label != "":
			content = fmt.Sprintf("vdisk, data %s at +%s: FAT32 %s, the VS boot disk", humanize.IBytes(pt.DataSize), humanize.IBytes(pt.DataOffset), pt.Label)
		default:
			content = fmt.Sprintf("vdisk, data %s at +%s (raw, exported over NBD)", humanize.IBytes(pt.DataSize), humanize.IBytes(pt.DataOffset))
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%d\t%s\t%s\n", pt.Index, pt.Name, pt.Kind, pt.Start, pt.End, humanize.IBytes(pt.Size), content)
	}
	w.Flush()
	fmt.Fprintf(&b, "needs a disk of at least %s\n", humanize.IBytes(p.MinBytes))
	return b.String()
}

// Table returns the GPT the plan describes.
func (p *Plan) gptTable() *gpt.Table {
	t := &gpt.Table{LogicalSectorSize: SectorSize, PhysicalSectorSize: SectorSize, ProtectiveMBR: true}
	for _, pt := range p.Parts {
		t.Partitions = append(t.Partitions, &gpt.Partition{Index: pt.Index, Start: pt.Start, End: pt.End,
			Size: pt.Size, Type: pt.Type, Name: pt.Name})
	}
	return t
}

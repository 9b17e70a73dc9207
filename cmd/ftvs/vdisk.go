package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

func newVdiskCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "vdisk",
		Short: "Create, inspect, verify and repair the copies of a mirrored virtual disk",
	}
	c.AddCommand(newVdiskCreateCmd(), newVdiskInspectCmd(), newVdiskVerifyCmd(),
		newVdiskResolveCmd(), newVdiskResyncCmd())
	return c
}

// parseSize reads "64MiB", "1G", "4096" into bytes.
func parseSize(flag, s string) (int64, error) {
	v, err := humanize.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("--%s %q: %w", flag, s, err)
	}
	if v > 1<<62 {
		return 0, fmt.Errorf("--%s %q: too large", flag, s)
	}
	return int64(v), nil
}

// randomGen returns a random generation identifier (never 0 or JustCreated).
func randomGen() uint64 {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on Linux
		}
		if g := binary.LittleEndian.Uint64(b[:]); g > vdisk.JustCreated {
			return g
		}
	}
}

func newVdiskCreateCmd() *cobra.Command {
	var (
		sizeS, granS, uuidS string
		node                int
		force, direct       bool
	)
	c := &cobra.Command{
		Use:   "create --size S --node N [--uuid U] FILE|DEV",
		Short: "Create one CoServer's copy of a virtual disk (metadata, bitmap, data area)",
		Long: `Create writes vdisk metadata and a clear write-intent bitmap at the start of
FILE or DEV. A FILE that does not exist is created (sparse). Create both
copies of one virtual disk with the same --uuid and --size, --node 1 on one
CoServer and --node 2 on the other. A copy starts Inconsistent; the first
connection of the two copies runs the initial sync.

Create refuses a device or file that holds data or an existing vdisk unless
--force is given, and a block device in use (mounted, held) always.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if node != 1 && node != 2 {
				return &exitError{2, fmt.Errorf("--node %d: want 1 or 2", node)}
			}
			var size int64
			if sizeS != "" {
				var err error
				if size, err = parseSize("size", sizeS); err != nil {
					return &exitError{2, err}
				}
				if size <= 0 || size%vdisk.FineGranularity != 0 {
					return &exitError{2, fmt.Errorf("--size %s = %d bytes: want a positive multiple of 4096", sizeS, size)}
				}
			}
			gran, err := parseSize("bitmap-granularity", granS)
			if err != nil {
				return &exitError{2, err}
			}
			id := uuid.New()
			if uuidS != "" {
				if id, err = uuid.Parse(uuidS); err != nil {
					return &exitError{2, fmt.Errorf("--uuid %q: %w", uuidS, err)}
				}
			}
			_, statErr := os.Stat(path)
			dev, err := openForCreate(path, size, gran, force, direct)
			if err != nil {
				return &exitError{2, err}
			}
			defer dev.Close()
			d, err := vdisk.Create(dev, vdisk.CreateOptions{UUID: id, Node: uint8(node), DataSize: size, Granularity: gran})
			if err != nil {
				if errors.Is(statErr, os.ErrNotExist) {
					os.Remove(path) // we made it; leave nothing half-done behind
				}
				return &exitError{2, fmt.Errorf("%s: %w", path, err)}
			}
			md := d.Metadata()
			fmt.Fprintf(cmd.OutOrStdout(), "created node %d copy of vdisk %s on %s: %s of data at offset %d, bitmap granularity %s; state %s until the initial sync\n",
				md.Node, uuid.UUID(md.UUID), path, humanize.IBytes(uint64(md.DataSize)), md.DataOffset,
				humanize.IBytes(uint64(md.Granularity)), md.State)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&sizeS, "size", "", "data size the virtual server sees (e.g. 10GiB); default for a device: all of it")
	f.IntVar(&node, "node", 0, "CoServer holding this copy: 1 or 2 (required)")
	f.StringVar(&uuidS, "uuid", "", "disk UUID shared by both copies (default: a new random one)")
	f.StringVar(&granS, "bitmap-granularity", "4MiB", "data bytes per on-disk write-intent bit")
	f.BoolVar(&force, "force", false, "overwrite a file or device that holds data or a vdisk")
	f.BoolVar(&direct, "direct", false, "use O_DIRECT")
	_ = c.MarkFlagRequired("node")
	return c
}

// openForCreate opens or creates the target, refusing anything that holds
// data unless forced. It never touches another path.
func openForCreate(path string, size, gran int64, force, direct bool) (*filedev.Dev, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		if size == 0 {
			return nil, fmt.Errorf("%s does not exist: --size is required to create it", path)
		}
		l, err := vdisk.Layout(size, 512, gran)
		if err != nil {
			return nil, err
		}
		return filedev.Create(path, l.DeviceSize, filedev.Options{Direct: direct, Lock: true})
	}
	if err != nil {
		return nil, err
	}
	if fi.Mode().IsRegular() && fi.Size()%512 != 0 {
		return nil, fmt.Errorf("file %s holds %d bytes, not a whole number of 512-byte sectors: refusing to use it (name a new file)", path, fi.Size())
	}
	if fi.Mode().IsRegular() && size != 0 {
		// Grow (never shrink) an existing file to fit.
		if l, err := vdisk.Layout(size, 512, gran); err == nil && fi.Size() < l.DeviceSize && fi.Size()%512 == 0 {
			probe, err := filedev.Open(path, filedev.Options{ReadOnly: true})
			if err != nil {
				return nil, err
			}
			has, what, err := probe.HoldsData()
			probe.Close()
			if err != nil {
				return nil, err
			}
			if has && !force {
				return nil, refuseCreate(path, what, probe)
			}
			if err := os.Truncate(path, l.DeviceSize); err != nil {
				return nil, err
			}
		}
	}
	dev, err := filedev.Open(path, filedev.Options{Direct: direct, Exclusive: true, Lock: true})
	if err != nil {
		return nil, err
	}
	if force {
		return dev, nil
	}
	if _, _, _, err := vdisk.ReadMetadata(dev); err == nil || !errors.Is(err, vdisk.ErrNotVdisk) {
		md, _, _, _ := vdisk.ReadMetadata(dev)
		dev.Close()
		if err == nil {
			return nil, fmt.Errorf("%s already holds vdisk %s (node %d, %s): refusing without --force", path, uuid.UUID(md.UUID), md.Node, md.State)
		}
		return nil, fmt.Errorf("%s holds damaged vdisk metadata (%v): refusing without --force", path, err)
	}
	has, what, err := dev.HoldsData()
	if err != nil {
		dev.Close()
		return nil, err
	}
	if has {
		dev.Close()
		return nil, refuseCreate(path, what, dev)
	}
	return dev, nil
}

func refuseCreate(path, what string, dev *filedev.Dev) error {
	kind := "file"
	if dev.IsBlockDevice() {
		kind = "device"
	}
	return fmt.Errorf("%s %s holds data (%s): refusing to overwrite it without --force", kind, path, what)
}

// inspectJSON is the machine-readable form of inspect.
type inspectJSON struct {
	Path         string      `json:"path"`
	UUID         string      `json:"uuid"`
	Node         uint8       `json:"node"`
	State        string      `json:"state"`
	CrashedPrim  bool        `json:"crashed_primary"`
	DiscardMine  bool        `json:"discard_my_data"`
	Seq          uint64      `json:"seq"`
	Slot         int         `json:"slot"`
	Slots        [2]slotJSON `json:"slots"`
	SectorSize   uint32      `json:"sector_size"`
	DeviceSize   int64       `json:"device_size"`
	DataOffset   int64       `json:"data_offset"`
	DataSize     int64       `json:"data_size"`
	Gens         genJSON     `json:"generations"`
	BitmapOffset int64       `json:"bitmap_offset"`
	BitmapBytes  int64       `json:"bitmap_bytes"`
	Granularity  int64       `json:"bitmap_granularity"`
	MarkedBits   int64       `json:"marked_regions"`
	MarkedBytes  int64       `json:"marked_bytes"`
	ResyncCursor int64       `json:"resync_cursor"`
	CanGoLive    bool        `json:"can_go_live_alone"`
	WhyNot       string      `json:"why_not,omitempty"`
	Marked       [][2]int64  `json:"marked_ranges,omitempty"`
}

type slotJSON struct {
	Valid bool   `json:"valid"`
	Seq   uint64 `json:"seq,omitempty"`
	Error string `json:"error,omitempty"`
}

type genJSON struct {
	Current string    `json:"current"`
	Bitmap  string    `json:"bitmap"`
	History [2]string `json:"history"`
}

func hexGen(g uint64) string { return fmt.Sprintf("%016X", g) }

func openRO(path string) (*filedev.Dev, vdisk.Metadata, int, [2]vdisk.SlotStatus, error) {
	dev, err := filedev.Open(path, filedev.Options{ReadOnly: true})
	if err != nil {
		return nil, vdisk.Metadata{}, -1, [2]vdisk.SlotStatus{}, err
	}
	md, slot, st, err := vdisk.ReadMetadata(dev)
	if err != nil {
		dev.Close()
		if errors.Is(err, vdisk.ErrNotVdisk) {
			err = fmt.Errorf("%s is not an ftvs vdisk copy (no metadata magic)", path)
		} else {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, md, slot, st, err
	}
	return dev, md, slot, st, nil
}

func newVdiskInspectCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "inspect FILE|DEV [--json]",
		Short: "Print a copy's metadata, both metadata slots and its write-intent marks",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dev, md, slot, st, err := openRO(args[0])
			if err != nil {
				return &exitError{2, err}
			}
			defer dev.Close()
			bm, err := vdisk.ReadBitmap(dev, md)
			if err != nil {
				return &exitError{2, fmt.Errorf("%s: %w", args[0], err)}
			}
			ok, why := vdisk.CanGoLiveAlone(md)
			j := inspectJSON{
				Path: args[0], UUID: uuid.UUID(md.UUID).String(), Node: md.Node, State: md.State.String(),
				CrashedPrim: md.Crashed(), DiscardMine: md.Discard(), Seq: md.Seq, Slot: slot,
				SectorSize: md.SectorSize, DeviceSize: md.DeviceSize, DataOffset: md.DataOffset, DataSize: md.DataSize,
				Gens: genJSON{hexGen(md.Gens.Current), hexGen(md.Gens.Bitmap),
					[2]string{hexGen(md.Gens.History[0]), hexGen(md.Gens.History[1])}},
				BitmapOffset: md.BitmapOffset, BitmapBytes: md.BitmapBytes, Granularity: md.Granularity,
				MarkedBits: bm.Count(), MarkedBytes: bm.DirtyBytes(), ResyncCursor: md.ResyncCursor,
				CanGoLive: ok, WhyNot: why, Marked: bm.Ranges(),
			}
			for i, s := range st {
				j.Slots[i] = slotJSON{Valid: s.Valid, Seq: s.Seq}
				if s.Err != nil {
					j.Slots[i] = slotJSON{Error: s.Err.Error()}
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(j)
			}
			printInspect(out, j)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printInspect(w io.Writer, j inspectJSON) {
	p := func(k, f string, a ...any) { fmt.Fprintf(w, "%-20s "+f+"\n", append([]any{k + ":"}, a...)...) }
	p("path", "%s", j.Path)
	p("disk uuid", "%s", j.UUID)
	p("node", "%d", j.Node)
	flags := []string{}
	if j.CrashedPrim {
		flags = append(flags, "crashed-primary")
	}
	if j.DiscardMine {
		flags = append(flags, "discard-my-data")
	}
	p("state", "%s %s", j.State, strings.Join(flags, " "))
	p("data", "%s (%d bytes) at offset %d, sector %d", humanize.IBytes(uint64(j.DataSize)), j.DataSize, j.DataOffset, j.SectorSize)
	p("generations", "current %s bitmap %s history %s %s", j.Gens.Current, j.Gens.Bitmap, j.Gens.History[0], j.Gens.History[1])
	p("bitmap", "%d bytes at %d, %s per bit", j.BitmapBytes, j.BitmapOffset, humanize.IBytes(uint64(j.Granularity)))
	p("marked", "%d regions, %s", j.MarkedBits, humanize.IBytes(uint64(j.MarkedBytes)))
	p("resync cursor", "%d", j.ResyncCursor)
	for i, s := range j.Slots {
		v := fmt.Sprintf("valid, seq %d", s.Seq)
		if !s.Valid {
			v = "INVALID: " + s.Error
		}
		if i == j.Slot {
			v += " (in use)"
		}
		p(fmt.Sprintf("metadata slot %d", i), "%s", v)
	}
	if j.CanGoLive {
		p("may go live alone", "yes")
	} else {
		p("may go live alone", "no: %s", j.WhyNot)
	}
}

func newVdiskVerifyCmd() *cobra.Command {
	var (
		regionS string
		asJSON  bool
	)
	c := &cobra.Command{
		Use:   "verify A B",
		Short: "Compare two copies of a virtual disk by per-region checksums",
		Long: `Verify reads both copies' data areas, compares SHA-256 checksums per region
and lists the regions that differ. Exit status: 0 identical, 1 different,
2 could not compare. It also prints what the generations decide.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			region, err := parseSize("region", regionS)
			if err != nil || region <= 0 || region%4096 != 0 {
				return &exitError{2, fmt.Errorf("--region %s: want a positive multiple of 4096", regionS)}
			}
			var disks [2]*vdisk.Disk
			for i, p := range args {
				dev, _, _, _, err := openRO(p)
				if err != nil {
					return &exitError{2, err}
				}
				defer dev.Close()
				if disks[i], err = vdisk.Open(dev); err != nil {
					return &exitError{2, fmt.Errorf("%s: %w", p, err)}
				}
			}
			ma, mb := disks[0].Metadata(), disks[1].Metadata()
			if ma.UUID != mb.UUID {
				return &exitError{2, fmt.Errorf("%s is vdisk %s, %s is vdisk %s: not copies of one disk", args[0], uuid.UUID(ma.UUID), args[1], uuid.UUID(mb.UUID))}
			}
			if ma.DataSize != mb.DataSize {
				return &exitError{2, fmt.Errorf("%s holds %d bytes of data, %s holds %d", args[0], ma.DataSize, args[1], mb.DataSize)}
			}
			start := time.Now()
			diffs, err := vdisk.Verify(cmd.Context(), vdisk.ReaderSummer{R: disks[0]}, vdisk.ReaderSummer{R: disks[1]}, ma.DataSize, vdisk.VerifyOptions{Region: region})
			if err != nil {
				return &exitError{2, err}
			}
			dec := vdisk.Decide(ma, mb)
			out := cmd.OutOrStdout()
			var differing int64
			for _, d := range diffs {
				differing += d.Len
			}
			if asJSON {
				type rj struct {
					Offset int64 `json:"offset"`
					Length int64 `json:"length"`
				}
				res := struct {
					Identical   bool    `json:"identical"`
					Region      int64   `json:"region"`
					Differing   []rj    `json:"differing"`
					DifferBytes int64   `json:"differing_bytes"`
					Decision    string  `json:"decision"`
					Seconds     float64 `json:"seconds"`
				}{Identical: len(diffs) == 0, Region: region, DifferBytes: differing, Decision: dec.String(), Seconds: time.Since(start).Seconds()}
				res.Differing = []rj{}
				for _, d := range diffs {
					res.Differing = append(res.Differing, rj{d.Off, d.Len})
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				for _, d := range diffs {
					fmt.Fprintf(out, "differ: [%d, %d) %s\n", d.Off, d.Off+d.Len, humanize.IBytes(uint64(d.Len)))
				}
				fmt.Fprintf(out, "%s of data compared in %s regions: %d differing ranges, %s\n",
					humanize.IBytes(uint64(ma.DataSize)), humanize.IBytes(uint64(region)), len(diffs), humanize.IBytes(uint64(differing)))
				fmt.Fprintf(out, "generations: %s\n", dec)
			}
			if len(diffs) > 0 {
				return &exitError{1, nil}
			}
			return nil
		},
	}
	c.Flags().StringVar(&regionS, "region", "1MiB", "bytes per checksum")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func openRW(path string) (*filedev.Dev, *vdisk.Disk, error) {
	dev, err := filedev.Open(path, filedev.Options{Exclusive: true, Lock: true})
	if err != nil {
		return nil, nil, err
	}
	d, err := vdisk.Open(dev)
	if err != nil {
		dev.Close()
		if errors.Is(err, vdisk.ErrNotVdisk) {
			return nil, nil, fmt.Errorf("%s is not an ftvs vdisk copy (no metadata magic)", path)
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return dev, d, nil
}

func newVdiskResolveCmd() *cobra.Command {
	var (
		discard int
		force   bool
	)
	c := &cobra.Command{
		Use:   "resolve --discard-node N COPY [PEER]",
		Short: "Resolve a split brain: the changes made on node N are discarded at the next resync",
		Long: `After a split brain both copies were written independently and ftvs never
chooses between them by itself. resolve marks node N's copy as the victim
(discard-my-data): the next resync overwrites what node N wrote while it
was alone with the other copy's data. Give both copies to check that they
really are in split brain first; give node N's copy alone when the peer
copy is on the other CoServer.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if discard != 1 && discard != 2 {
				return &exitError{2, fmt.Errorf("--discard-node %d: want 1 or 2", discard)}
			}
			var disks []*vdisk.Disk
			for _, p := range args {
				dev, d, err := openRW(p)
				if err != nil {
					return &exitError{2, err}
				}
				defer dev.Close()
				disks = append(disks, d)
			}
			var victim *vdisk.Disk
			for _, d := range disks {
				if d.Metadata().Node == uint8(discard) {
					victim = d
				}
			}
			if victim == nil {
				return &exitError{2, fmt.Errorf("no copy of node %d among %s", discard, strings.Join(args, ", "))}
			}
			out := cmd.OutOrStdout()
			if len(disks) == 2 {
				dec := vdisk.Decide(disks[0].Metadata(), disks[1].Metadata())
				if dec.Action != vdisk.SplitBrain && !force {
					return &exitError{2, fmt.Errorf("the copies are not in split brain (%s): refusing without --force", dec)}
				}
			}
			if err := victim.Update(func(m *vdisk.Metadata) { *m = vdisk.MarkDiscard(*m) }); err != nil {
				return &exitError{2, err}
			}
			fmt.Fprintf(out, "node %d's copy will be overwritten by the peer's at the next resync\n", discard)
			if len(disks) == 2 {
				fmt.Fprintf(out, "generations now: %s\n", vdisk.Decide(disks[0].Metadata(), disks[1].Metadata()))
			}
			return nil
		},
	}
	c.Flags().IntVar(&discard, "discard-node", 0, "node (1 or 2) whose changes are discarded (required)")
	c.Flags().BoolVar(&force, "force", false, "mark the copy even if the two given copies are not in split brain")
	_ = c.MarkFlagRequired("discard-node")
	return c
}

func newVdiskResyncCmd() *cobra.Command {
	var (
		rateS, chunkS, ckS string
		skipEqual          bool
		inflight           int
	)
	c := &cobra.Command{
		Use:   "resync A B",
		Short: "Bring two local copies of a virtual disk in sync as their generations decide",
		Long: `resync is the offline form of the runtime's resync, for two copies reachable
from this host (tests, a disk moved between servers). It follows the
generations: bitmap or full sync in the direction they give; split brain and
unrelated data are refused (see resolve). Interrupted, it continues where it
stopped on the next run.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var disks [2]*vdisk.Disk
			for i, p := range args {
				dev, d, err := openRW(p)
				if err != nil {
					return &exitError{2, err}
				}
				defer dev.Close()
				disks[i] = d
			}
			if inflight < 1 || inflight > 64 {
				return &exitError{2, fmt.Errorf("--inflight %d: want 1 to 64", inflight)}
			}
			o := vdisk.SyncOptions{NewGen: randomGen, SkipEqual: skipEqual, Offline: true, InFlight: inflight}
			for _, f := range []struct {
				name, val string
				dst       *int64
			}{{"chunk", chunkS, &o.Chunk}, {"checkpoint-every", ckS, &o.CheckpointEvery}} {
				v, err := parseSize(f.name, f.val)
				if err != nil || v < 4096 || v%4096 != 0 {
					return &exitError{2, fmt.Errorf("--%s %s: want a multiple of 4096", f.name, f.val)}
				}
				*f.dst = v
			}
			if rateS != "" && rateS != "0" {
				rate, err := parseSize("rate", rateS)
				if err != nil || rate <= 0 {
					return &exitError{2, fmt.Errorf("--rate %s: want bytes per second, e.g. 100MiB", rateS)}
				}
				o.Pacer = vdisk.NewTokenBucket(rate, 0)
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			start := time.Now()
			dec, st, err := vdisk.SyncCopies(ctx, disks[0], disks[1], o)
			el := time.Since(start)
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "decision: %s\n", dec)
			if err != nil {
				return &exitError{2, err}
			}
			if dec.Action == vdisk.InSync {
				return nil
			}
			fmt.Fprintf(out, "copied %d bytes, skipped %d equal, in %d chunks, %d passes, %.3fs (%.1f MiB/s)\n",
				st.Copied, st.Skipped, st.Chunks, st.Passes, el.Seconds(),
				float64(st.Copied+st.Skipped)/(1<<20)/max(el.Seconds(), 1e-9))
			return nil
		},
	}
	c.Flags().StringVar(&rateS, "rate", "", "resync rate limit in bytes per second (e.g. 100MiB); default unlimited")
	c.Flags().BoolVar(&skipEqual, "skip-equal", false, "compare checksums first and skip chunks already equal")
	c.Flags().StringVar(&chunkS, "chunk", "1MiB", "bytes per copy request")
	c.Flags().IntVar(&inflight, "inflight", 2, "chunks copied at once (read of one overlaps the write of another)")
	c.Flags().StringVar(&ckS, "checkpoint-every", "64MiB", "bytes copied between persisted progress points (target flush + source metadata)")
	return c
}

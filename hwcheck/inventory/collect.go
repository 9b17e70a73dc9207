package inventory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/pcidb"
)

// Sources says where an inventory is read from. The zero value is the live
// machine. When Snapshot or SMBIOS is set, only those are read: a domain they
// do not cover is marked "not collected", never filled from the machine the
// code runs on.
type Sources struct {
	// Snapshot is a tarball made by `ftvs hwcheck snapshot` or ghw's
	// snapshot tool.
	Snapshot string
	// SMBIOS is a raw SMBIOS table file (/sys/firmware/dmi/tables/DMI, or a
	// dmidecode --dump-bin file). With Snapshot it overrides the snapshot's
	// own DMI tables.
	SMBIOS string
	// PCIDB is the pci.ids database to share with ghw; nil uses an empty
	// one (the inventory keeps IDs only, names are for display).
	PCIDB *pcidb.PCIDB
}

// Live reports whether s reads the machine the code runs on.
func (s Sources) Live() bool { return s.Snapshot == "" && s.SMBIOS == "" }

// Collect reads an inventory from src. It fails only when the sources are
// unusable (unreadable or corrupt file, no /proc/cpuinfo, not x86); a field
// that cannot be read is listed in Inventory.Unreadable instead.
func Collect(ctx context.Context, src Sources) (*Inventory, error) {
	inv := &Inventory{Version: SchemaVersion}
	var dmi *DMI
	var dmiErr error // why DMI is absent
	if src.SMBIOS != "" {
		data, err := os.ReadFile(src.SMBIOS)
		if err != nil {
			return nil, fmt.Errorf("read SMBIOS file: %w", err)
		}
		if dmi, err = ParseSMBIOS(data); err != nil {
			return nil, fmt.Errorf("%s: %w", src.SMBIOS, err)
		}
	}

	var r *rootReader
	switch {
	case src.Snapshot != "":
		dir, err := scratchDir("ftvs-hwcheck-*")
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", src.Snapshot, err)
		}
		defer os.RemoveAll(dir)
		if err := Unpack(src.Snapshot, dir); err != nil {
			return nil, err
		}
		if r, err = newRootReader(dir, src.Snapshot, false, src.PCIDB); err != nil {
			return nil, err
		}
		inv.Source = "snapshot " + filepath.Base(src.Snapshot)
	case src.SMBIOS != "":
		inv.Source = "smbios " + filepath.Base(src.SMBIOS)
	default:
		var err error
		if r, err = newRootReader("/", "/", true, src.PCIDB); err != nil {
			return nil, err
		}
		inv.Source = "live"
	}
	if src.SMBIOS != "" && r != nil {
		inv.Source += " + smbios " + filepath.Base(src.SMBIOS)
	}

	if dmi == nil && r != nil {
		dmi, dmiErr = r.dmi()
	}
	if r == nil {
		dmiFromSMBIOSOnly(inv, dmi)
		inv.listUnknowns()
		inv.Normalize()
		return inv, nil
	}

	if err := r.collect(ctx, inv, dmi, dmiErr); err != nil {
		return nil, err
	}
	inv.listUnknowns()
	inv.Normalize()
	return inv, nil
}

// dmiFromSMBIOSOnly fills what a lone SMBIOS table tells: firmware, board,
// the CPU signature per socket and the DIMMs.
func dmiFromSMBIOSOnly(inv *Inventory, dmi *DMI) {
	applyDMI(inv, dmi, nil)
	inv.CPU = &CPU{Sockets: dmi.Sockets} // nil (unknown) when no socket is described
	if inv.CPU.Sockets == nil {
		inv.unread("cpu.sockets", "SMBIOS table has no populated type 4 (processor) structure")
	}
	for _, s := range inv.CPU.Sockets {
		p := fmt.Sprintf("cpu.sockets[%d]", s.ID)
		inv.unread(p+".microcode", "not collected: SMBIOS does not record it")
		inv.unread(p+".flags", "not collected: SMBIOS does not record them")
	}
	inv.Memory = &Memory{DIMMs: dmi.DIMMs}
	inv.unread("memory.total_bytes", "not collected: only an SMBIOS table was given")
	inv.unread("memory.usable_bytes", "not collected: only an SMBIOS table was given")
	for _, d := range []string{"network", "storage", "pci"} {
		inv.unread(d, "not collected: only an SMBIOS table was given")
	}
	inv.unread("bios.boot_mode", "not collected: only an SMBIOS table was given")
}

// applyDMI copies the SMBIOS sections into inv; with dmi nil every field
// they would fill is marked unreadable with why.
func applyDMI(inv *Inventory, dmi *DMI, why error) {
	if dmi == nil {
		reason := "no SMBIOS table"
		if why != nil {
			reason = why.Error()
		}
		inv.System, inv.Baseboard = &System{}, &Baseboard{}
		if inv.BIOS == nil {
			inv.BIOS = &BIOS{}
		}
		for _, p := range []string{"system.vendor", "system.product", "system.version", "system.sku", "system.serial", "system.uuid",
			"baseboard.vendor", "baseboard.product", "baseboard.version", "baseboard.serial",
			"bios.vendor", "bios.version", "bios.release_date", "memory.dimms"} {
			inv.unread(p, "%s", reason)
		}
		return
	}
	inv.System, inv.Baseboard = dmi.System, dmi.Baseboard
	bootMode := (*string)(nil)
	if inv.BIOS != nil {
		bootMode = inv.BIOS.BootMode
	}
	inv.BIOS = dmi.BIOS
	for _, m := range dmi.Missing {
		inv.unread("smbios", "SMBIOS table has no %s structure", m)
	}
	if inv.System == nil {
		inv.System = &System{}
	}
	if inv.Baseboard == nil {
		inv.Baseboard = &Baseboard{}
	}
	if inv.BIOS == nil {
		inv.BIOS = &BIOS{}
	}
	inv.BIOS.BootMode = bootMode
	switch {
	case dmi.DIMMs == nil && dmi.NoTable != "":
		inv.unread("memory.dimms", "%s", dmi.NoTable)
	case dmi.DIMMs == nil:
		inv.unread("memory.dimms", "SMBIOS table has no type 17 (memory device) structure")
	}
}

// errNoDMI explains an absent DMI table.
var errNoDMI = errors.New("no DMI tables (sys/firmware/dmi/tables/DMI absent: a VM without SMBIOS, or a snapshot without DMI)")

// ghwOpts returns the ghw options shared by every domain.
func (r *rootReader) ghwOpts() []any {
	// ghw logs what it cannot read; the inventory lists those gaps itself.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := []any{ghw.WithChroot(r.root), ghw.WithPCIDB(r.db), ghw.WithDisableWarnings(), ghw.WithLogger(quiet)}
	if !r.live {
		opts = append(opts, ghw.WithDisableTools())
	}
	return opts
}

// exists reports whether rel (relative to the root) exists, without
// following a final symlink.
func (r *rootReader) exists(rel string) bool {
	_, err := os.Lstat(r.path(rel))
	return err == nil
}

func (r *rootReader) path(rel string) string { return filepath.Join(r.root, rel) }

func (r *rootReader) readFile(rel string) ([]byte, error) {
	b, err := os.ReadFile(r.path(rel))
	if err != nil && errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s absent", rel)
	}
	return b, err
}

// Load reads an inventory from a file that is either a snapshot tarball
// (collected with pcidb, which may be nil) or a saved inventory JSON.
func Load(ctx context.Context, file string, db *pcidb.PCIDB) (*Inventory, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	head := make([]byte, 512)
	n, _ := io.ReadFull(f, head)
	f.Close()
	head = bytes.TrimLeft(head[:n], " \t\r\n")
	switch {
	case n == 0:
		return nil, fmt.Errorf("%s: empty file (want a snapshot tarball or an inventory JSON file)", file)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Collect(ctx, Sources{Snapshot: file, PCIDB: db})
	case bytes.HasPrefix(head, []byte("{")):
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		return Decode(file, data)
	}
	return nil, fmt.Errorf("%s: neither a snapshot tarball (gzip) nor an inventory JSON file", file)
}

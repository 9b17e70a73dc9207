package inventory

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jaypipes/pcidb"
)

// LoadPCIDB loads the local pci.ids once, for names at display time and
// for ghw. It returns nil when none is installed; it never fetches one
// from the network, whatever PCIDB_ENABLE_NETWORK_FETCH says.
func LoadPCIDB() *pcidb.PCIDB {
	noFetch := false
	db, err := pcidb.New(&pcidb.WithOption{EnableNetworkFetch: &noFetch})
	if err != nil {
		return nil
	}
	return db
}

// WriteText writes the inventory for people; "?" is an unknown value. db
// (may be nil) names PCI vendors and devices.
func (inv *Inventory) WriteText(w io.Writer, db *pcidb.PCIDB) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("source: %s (inventory version %d)", inv.Source, inv.Version)
	if s := inv.System; s != nil {
		p("system: vendor %s, product %s, version %s, sku %s, serial %s, uuid %s", q(s.Vendor), q(s.Product), q(s.Version), q(s.SKU), q(s.Serial), q(s.UUID))
	} else {
		p("system: not collected")
	}
	if s := inv.Baseboard; s != nil {
		p("baseboard: vendor %s, product %s, version %s, serial %s", q(s.Vendor), q(s.Product), q(s.Version), q(s.Serial))
	} else {
		p("baseboard: not collected")
	}
	if s := inv.BIOS; s != nil {
		p("bios: vendor %s, version %s, release date %s, boot mode %s", q(s.Vendor), q(s.Version), q(s.ReleaseDate), q(s.BootMode))
	} else {
		p("bios: not collected")
	}
	if c := inv.CPU; c != nil {
		p("cpu: %d socket(s)", len(c.Sockets))
		for _, s := range c.Sockets {
			flags := "? flags"
			if s.Flags != nil {
				flags = strconv.Itoa(len(s.Flags)) + " flags"
			}
			p("  socket %d: %s %s, family %s model %s stepping %s, microcode %s, %s cores, %s threads, %s",
				s.ID, q(s.Vendor), q(s.ModelName), n(s.Family), n(s.Model), n(s.Stepping), q(s.Microcode), n(s.Cores), n(s.Threads), flags)
		}
	} else {
		p("cpu: not collected")
	}
	if m := inv.Memory; m != nil {
		gib := func(b *int64) string {
			if b == nil {
				return "?"
			}
			return fmt.Sprintf("%.1f", float64(*b)/(1<<30))
		}
		total := fmt.Sprintf("%s GiB in memory blocks, %s GiB usable", gib(m.TotalBytes), gib(m.UsableBytes))
		if m.DIMMs == nil {
			p("memory: %s, DIMM slots unknown", total)
		} else {
			used := 0
			for _, d := range m.DIMMs {
				if d.Populated {
					used++
				}
			}
			p("memory: %s, %d of %d DIMM slots populated", total, used, len(m.DIMMs))
		}
		for _, d := range m.DIMMs {
			if !d.Populated {
				p("  %s: empty", d.Locator)
				continue
			}
			size := "?"
			if d.SizeBytes != nil {
				size = strconv.FormatInt(*d.SizeBytes>>20, 10)
			}
			p("  %s: %s MiB %s, %s/%s MT/s, manufacturer %s, part %s, serial %s",
				d.Locator, size, q(d.Type), n(d.SpeedMTs), n(d.ConfiguredMTs), q(d.Manufacturer), q(d.PartNumber), q(d.Serial))
		}
	} else {
		p("memory: not collected")
	}
	if nw := inv.Network; nw != nil {
		p("network: %d physical NIC(s)", len(nw.NICs))
		for _, c := range nw.NICs {
			p("  %s %s: %s:%s (%s) subsystem %s:%s, driver %s, firmware %s, max %s Mb/s, link %s, mac %s",
				c.Slot, q(c.Name), q(c.VendorID), q(c.DeviceID), pciName(db, c.VendorID, c.DeviceID),
				q(c.SubsystemVendorID), q(c.SubsystemDeviceID), q(c.Driver), q(c.Firmware), n(c.MaxSpeedMbps), q(c.LinkState), q(c.MAC))
		}
	} else {
		p("network: not collected")
	}
	if st := inv.Storage; st != nil {
		p("storage: %s controller(s), %s disk(s)", count(st.Controllers), count(st.Disks))
		for _, c := range st.Controllers {
			p("  controller %s: %s:%s (%s) class %s, driver %s", c.Address, q(c.VendorID), q(c.DeviceID), pciName(db, c.VendorID, c.DeviceID), q(c.Class), q(c.Driver))
		}
		for _, d := range st.Disks {
			rot := "?"
			if d.Rotational != nil {
				rot = strconv.FormatBool(*d.Rotational)
			}
			p("  disk %s: model %s, %s bytes, rotational %s, transport %s, serial %s", d.Name, q(d.Model), n(d.SizeBytes), rot, q(d.Transport), q(d.Serial))
		}
	} else {
		p("storage: not collected")
	}
	if pc := inv.PCI; pc != nil {
		p("pci: %d device(s)", len(pc.Devices))
		for _, d := range pc.Devices {
			p("  %s %s:%s class %s rev %s driver %s  %s", d.Address, q(d.VendorID), q(d.DeviceID), q(d.Class), q(d.Revision), q(d.Driver), pciName(db, d.VendorID, d.DeviceID))
		}
	} else {
		p("pci: not collected")
	}
	p("unreadable: %d field(s)", len(inv.Unreadable))
	for _, u := range inv.Unreadable {
		p("  %s: %s", u.Path, u.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// count is a list's length, "?" when the list is unknown.
func count[T any](l []T) string {
	if l == nil {
		return "?"
	}
	return strconv.Itoa(len(l))
}

func q(s *string) string {
	if s == nil {
		return "?"
	}
	if *s == "" {
		return `""`
	}
	return *s
}

func n[T int | int64](v *T) string {
	if v == nil {
		return "?"
	}
	return strconv.FormatInt(int64(*v), 10)
}

// pciName looks a device up in the local pci.ids.
func pciName(db *pcidb.PCIDB, vendor, device *string) string {
	if db == nil || vendor == nil || device == nil {
		return "?"
	}
	name := "?"
	if v, ok := db.Vendors[*vendor]; ok {
		name = v.Name
	}
	if d, ok := db.Products[*vendor+*device]; ok {
		name += " " + d.Name
	}
	return name
}

// Package inventory describes one server's hardware (CPU, memory, NICs,
// storage, PCI, firmware) as a versioned, JSON-serialisable value, collected
// from the live machine, a snapshot tarball, a raw SMBIOS table or a saved
// inventory file.
//
// A nil pointer, slice or section means "unknown": the reason is listed in
// Inventory.Unreadable. Unknown is never equal to anything, not even to another
// unknown (see package compare).
package inventory

import (
	"encoding/json"
	"fmt"
	"sort"
)

// SchemaVersion is the version of the Inventory JSON layout. Bump it when a
// field changes meaning; Decode refuses versions it does not know.
const SchemaVersion = 1

// Inventory is one server's hardware. Sections are nil when their source
// was not collected at all.
type Inventory struct {
	Version    int          `json:"version"`
	Source     string       `json:"source"`
	System     *System      `json:"system"`
	Baseboard  *Baseboard   `json:"baseboard"`
	BIOS       *BIOS        `json:"bios"`
	CPU        *CPU         `json:"cpu"`
	Memory     *Memory      `json:"memory"`
	Network    *Network     `json:"network"`
	Storage    *Storage     `json:"storage"`
	PCI        *PCI         `json:"pci"`
	Unreadable []Unreadable `json:"unreadable"`
}

// Unreadable names a field (by its comparison path) that could not be read
// and why.
type Unreadable struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// System is SMBIOS type 1. Serial and UUID are recorded, not compared.
type System struct {
	Vendor  *string `json:"vendor"`
	Product *string `json:"product"`
	Version *string `json:"version"`
	SKU     *string `json:"sku"`
	Serial  *string `json:"serial"`
	UUID    *string `json:"uuid"`
}

// Baseboard is SMBIOS type 2 (the first one). SMBIOS has no baseboard SKU.
type Baseboard struct {
	Vendor  *string `json:"vendor"`
	Product *string `json:"product"`
	Version *string `json:"version"`
	Serial  *string `json:"serial"`
}

// BIOS is SMBIOS type 0 plus the boot mode the running kernel was started in.
type BIOS struct {
	Vendor      *string `json:"vendor"`
	Version     *string `json:"version"`
	ReleaseDate *string `json:"release_date"`
	BootMode    *string `json:"boot_mode"` // "uefi" or "legacy"
}

// CPU lists the populated sockets in physical-id order.
type CPU struct {
	Sockets []Socket `json:"sockets"`
}

// Socket is one processor package. ID is its ordinal (0, 1, ...).
type Socket struct {
	ID        int      `json:"id"`
	Vendor    *string  `json:"vendor"`
	ModelName *string  `json:"model_name"`
	Family    *int     `json:"family"`
	Model     *int     `json:"model"`
	Stepping  *int     `json:"stepping"`
	Microcode *string  `json:"microcode"`
	Cores     *int     `json:"cores"`
	Threads   *int     `json:"threads"`
	Flags     []string `json:"flags"` // sorted; nil: unknown
}

// Memory is what the kernel sees and every DIMM slot, empty ones included.
// TotalBytes is the span of the kernel's online memory blocks (ghw's
// physical total: block-size granular, so it counts the PCI hole below
// 4 GiB); UsableBytes is MemTotal. DIMMs is nil when no SMBIOS table was
// available.
type Memory struct {
	TotalBytes  *int64 `json:"total_bytes"`
	UsableBytes *int64 `json:"usable_bytes"`
	DIMMs       []DIMM `json:"dimms"`
}

// DIMM is one SMBIOS type 17 slot. For an empty slot only Locator, Bank and
// Populated are set.
type DIMM struct {
	Locator        string  `json:"locator"`
	Bank           string  `json:"bank"`
	Populated      bool    `json:"populated"`
	SizeBytes      *int64  `json:"size_bytes"`
	Type           *string `json:"type"`
	SpeedMTs       *int    `json:"speed_mts"`
	ConfiguredMTs  *int    `json:"configured_speed_mts"`
	Manufacturer   *string `json:"manufacturer"`
	PartNumber     *string `json:"part_number"`
	Serial         *string `json:"serial"`
	FormFactor     *string `json:"form_factor"`
	TotalWidthBits *int    `json:"total_width_bits"` // 72: ECC
}

// Network lists the physical NICs (those backed by a device).
type Network struct {
	NICs []NIC `json:"nics"`
}

// NIC is one physical network interface. Slot is its PCI address (or its
// name when it has none) and is the key NICs are matched by.
type NIC struct {
	Slot              string  `json:"slot"`
	Name              *string `json:"name"`
	PCIAddress        *string `json:"pci_address"`
	VendorID          *string `json:"vendor_id"`
	DeviceID          *string `json:"device_id"`
	SubsystemVendorID *string `json:"subsystem_vendor_id"`
	SubsystemDeviceID *string `json:"subsystem_device_id"`
	Driver            *string `json:"driver"`
	Firmware          *string `json:"firmware_version"`
	MaxSpeedMbps      *int    `json:"max_speed_mbps"`
	LinkState         *string `json:"link_state"`
	MAC               *string `json:"mac"`
}

// Storage is the mass-storage controllers (PCI class 01) and the disks.
type Storage struct {
	Controllers []PCIDevice `json:"controllers"`
	Disks       []Disk      `json:"disks"`
}

// Disk is one whole block device (no partitions, loop, ram, dm or md).
type Disk struct {
	Name       string  `json:"name"`
	Model      *string `json:"model"`
	SizeBytes  *int64  `json:"size_bytes"`
	Rotational *bool   `json:"rotational"`
	Transport  *string `json:"transport"`
	Serial     *string `json:"serial"`
}

// PCI lists every PCI function by address.
type PCI struct {
	Devices []PCIDevice `json:"devices"`
}

// PCIDevice holds IDs only (lower-case hex); names come from the local
// pci.ids at display time.
type PCIDevice struct {
	Address           string  `json:"address"`
	VendorID          *string `json:"vendor_id"`
	DeviceID          *string `json:"device_id"`
	SubsystemVendorID *string `json:"subsystem_vendor_id"`
	SubsystemDeviceID *string `json:"subsystem_device_id"`
	Class             *string `json:"class"` // class, subclass, prog-if: "010601"
	Revision          *string `json:"revision"`
	Driver            *string `json:"driver"`
}

// ptr returns a pointer to v: every known value is stored behind one.
func ptr[T any](v T) *T { return &v }

// unread records that path could not be read.
func (inv *Inventory) unread(path, format string, args ...any) {
	inv.Unreadable = append(inv.Unreadable, Unreadable{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// Normalize sorts every list by its matching key so that the same hardware
// always serialises to the same bytes.
func (inv *Inventory) Normalize() {
	if inv.CPU != nil {
		sortBy(inv.CPU.Sockets, func(s Socket) int { return s.ID })
		for i := range inv.CPU.Sockets {
			sort.Strings(inv.CPU.Sockets[i].Flags)
		}
	}
	if inv.Memory != nil {
		sortBy(inv.Memory.DIMMs, DIMM.Key)
	}
	if inv.Network != nil {
		sortBy(inv.Network.NICs, func(n NIC) string { return n.Slot })
	}
	if inv.Storage != nil {
		sortBy(inv.Storage.Controllers, pciAddress)
		sortBy(inv.Storage.Disks, func(d Disk) string { return d.Name })
	}
	if inv.PCI != nil {
		sortBy(inv.PCI.Devices, pciAddress)
	}
	sortBy(inv.Unreadable, func(u Unreadable) string { return u.Path })
}

func pciAddress(d PCIDevice) string { return d.Address }

// sortBy stably sorts l by the key each element maps to.
func sortBy[T any, K int | string](l []T, key func(T) K) {
	sort.SliceStable(l, func(i, j int) bool { return key(l[i]) < key(l[j]) })
}

// Key is the DIMM's matching key: its locator (the SMBIOS reader qualifies
// it with the bank when a board reuses locator names across banks).
func (d DIMM) Key() string { return d.Locator }

// Encode returns the inventory as indented JSON.
func (inv *Inventory) Encode() ([]byte, error) {
	inv.Normalize()
	b, err := json.MarshalIndent(inv, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	return append(b, '\n'), nil
}

// Decode parses an inventory JSON document. name labels errors.
func Decode(name string, data []byte) (*Inventory, error) {
	var inv Inventory
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, fmt.Errorf("%s: not an inventory JSON file: %w", name, err)
	}
	if inv.Version != SchemaVersion {
		return nil, fmt.Errorf("%s: inventory version %d, this ftvs reads version %d", name, inv.Version, SchemaVersion)
	}
	inv.Normalize()
	return &inv, nil
}

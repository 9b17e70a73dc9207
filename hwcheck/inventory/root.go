package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/pcidb"
)

// rootReader reads one filesystem root: "/" or an unpacked snapshot.
type rootReader struct {
	root     string
	label    string // names the source in errors: the snapshot file or "/"
	live     bool
	db       *pcidb.PCIDB
	manifest *Manifest // nil unless the snapshot was made by ftvs
}

func newRootReader(root, label string, live bool, db *pcidb.PCIDB) (*rootReader, error) {
	if db == nil {
		db = &pcidb.PCIDB{Classes: map[string]*pcidb.Class{}, Vendors: map[string]*pcidb.Vendor{}, Products: map[string]*pcidb.Product{}}
	}
	r := &rootReader{root: root, label: label, live: live, db: db}
	if !r.exists("proc/cpuinfo") {
		if entries, err := os.ReadDir(root); err == nil && len(entries) == 0 {
			return nil, fmt.Errorf("%s: empty root: no proc/cpuinfo (not a hardware snapshot)", label)
		}
		return nil, fmt.Errorf("%s: no proc/cpuinfo: not a hardware snapshot", label)
	}
	if !live {
		m, err := readManifest(r.path(ManifestName))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", label, err)
		}
		r.manifest = m
	}
	return r, nil
}

// dmi reads the raw SMBIOS table, falling back to /sys/class/dmi/id. It
// returns why DMI is absent, or a fatal error for a corrupt table.
func (r *rootReader) dmi() (*DMI, error) {
	const rel = "sys/firmware/dmi/tables/DMI"
	data, err := os.ReadFile(r.path(rel))
	if err == nil {
		dmi, perr := ParseSMBIOS(data)
		if perr != nil {
			return nil, &fatalError{fmt.Errorf("%s: %s: %w", r.label, rel, perr)}
		}
		return dmi, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s unreadable: %w", rel, err)
	}
	if r.exists("sys/class/dmi/id") {
		return r.dmiFromClass()
	}
	return nil, errNoDMI
}

// fatalError marks a DMI problem that must stop the inventory (a corrupt
// table) rather than leave fields unknown.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }

// dmiFromClass reads the kernel's decoded DMI strings through ghw: no
// DIMMs or sockets (those need the raw table).
func (r *rootReader) dmiFromClass() (*DMI, error) {
	opts := r.ghwOpts()
	dmi := &DMI{NoTable: "no raw SMBIOS table (sys/firmware/dmi/tables/DMI absent or root-only); /sys/class/dmi/id has no DIMM data"}
	if b, err := ghw.BIOS(opts...); err == nil {
		dmi.BIOS = &BIOS{Vendor: known(b.Vendor), Version: known(b.Version), ReleaseDate: known(b.Date)}
	}
	if b, err := ghw.Baseboard(opts...); err == nil {
		dmi.Baseboard = &Baseboard{Vendor: known(b.Vendor), Product: known(b.Product), Version: known(b.Version), Serial: known(b.SerialNumber)}
	}
	if p, err := ghw.Product(opts...); err == nil {
		dmi.System = &System{Vendor: known(p.Vendor), Product: known(p.Name), Version: known(p.Version), SKU: known(p.SKU),
			Serial: known(p.SerialNumber), UUID: known(strings.ToLower(p.UUID))}
	}
	return dmi, nil
}

// known maps ghw's "unknown" placeholder to nil.
func known(s string) *string {
	s = strings.TrimSpace(s)
	if s == "" || s == "unknown" {
		return nil
	}
	return &s
}

func (r *rootReader) collect(ctx context.Context, inv *Inventory, dmi *DMI, dmiErr error) error {
	var fe *fatalError
	if errors.As(dmiErr, &fe) {
		return fe.err
	}
	inv.BIOS = &BIOS{}
	switch {
	case r.live:
		mode := "legacy"
		if r.exists("sys/firmware/efi") {
			mode = "uefi"
		}
		inv.BIOS.BootMode = &mode
	case r.manifest != nil && r.manifest.BootMode != "":
		inv.BIOS.BootMode = ptr(r.manifest.BootMode)
	default:
		inv.unread("bios.boot_mode", "snapshot does not record whether /sys/firmware/efi existed")
	}
	applyDMI(inv, dmi, dmiErr)
	if err := r.cpu(inv); err != nil {
		return err
	}
	r.memory(inv, dmi)
	pciByAddr := r.pci(inv)
	r.storage(inv, pciByAddr)
	r.network(ctx, inv, pciByAddr)
	return nil
}

func (r *rootReader) cpu(inv *Inventory) error {
	data, err := r.readFile("proc/cpuinfo")
	if err != nil {
		return fmt.Errorf("%s: %w", r.label, err)
	}
	procs, err := ParseCPUInfo(data)
	if err != nil {
		return fmt.Errorf("%s: proc/cpuinfo: %w", r.label, err)
	}
	sockets := cpuinfoSockets(procs)
	// ghw counts cores and threads from the sysfs topology, which also
	// sees offline CPUs; cpuinfo's counts are the fallback.
	// Both lists are in physical-id order; merge only when the ids agree.
	pids := physicalIDs(procs)
	if info, err := ghw.CPU(r.ghwOpts()...); err == nil && len(info.Processors) == len(sockets) {
		for i, p := range info.Processors {
			if p.ID != pids[i] {
				break
			}
			if p.TotalCores > 0 {
				sockets[i].Cores = ptr(int(p.TotalCores))
			}
			if p.TotalHardwareThreads > 0 {
				sockets[i].Threads = ptr(int(p.TotalHardwareThreads))
			}
		}
	}
	for _, s := range sockets {
		p := fmt.Sprintf("cpu.sockets[%d]", s.ID)
		if s.Microcode == nil {
			inv.unread(p+".microcode", "proc/cpuinfo has no microcode line (a VM hides it)")
		}
		if s.Flags == nil {
			inv.unread(p+".flags", "proc/cpuinfo has no flags line")
		}
		if s.Stepping == nil {
			inv.unread(p+".stepping", "proc/cpuinfo has no stepping line")
		}
		if s.Cores == nil {
			inv.unread(p+".cores", "neither sysfs topology nor proc/cpuinfo give a core count")
		}
	}
	inv.CPU = &CPU{Sockets: sockets}
	return nil
}

func (r *rootReader) memory(inv *Inventory, dmi *DMI) {
	inv.Memory = &Memory{}
	if dmi != nil {
		inv.Memory.DIMMs = dmi.DIMMs
	}
	m, err := ghw.Memory(r.ghwOpts()...)
	switch {
	case err != nil:
		inv.unread("memory.total_bytes", "ghw memory: %v", err)
	case m.TotalPhysicalBytes > 0:
		inv.Memory.TotalBytes = ptr(m.TotalPhysicalBytes)
	default:
		inv.unread("memory.total_bytes", "neither sys/devices/system/memory nor proc/meminfo give a total")
	}
	if err == nil && m.TotalUsableBytes > 0 {
		inv.Memory.UsableBytes = ptr(m.TotalUsableBytes)
	} else {
		inv.unread("memory.usable_bytes", "proc/meminfo has no MemTotal")
	}
}

// pci reads every PCI function; the result is indexed by address for the
// NIC and storage domains.
func (r *rootReader) pci(inv *Inventory) map[string]PCIDevice {
	info, err := ghw.PCI(r.ghwOpts()...)
	if err != nil {
		inv.unread("pci", "ghw pci: %v", err)
		return nil
	}
	if !r.exists("sys/bus/pci/devices") {
		inv.unread("pci", "sys/bus/pci/devices absent")
		return nil
	}
	byAddr := map[string]PCIDevice{}
	inv.PCI = &PCI{Devices: []PCIDevice{}}
	for _, d := range info.Devices {
		pd := PCIDevice{Address: d.Address, Revision: knownHex(d.Revision), Driver: known(d.Driver)}
		// IDs come from the modalias itself: ghw's Subsystem is looked up
		// in pci.ids by subdevice ID alone, so its subsystem vendor can
		// be another vendor's entry.
		if ids, ok := ParsePCIModalias(d.Modalias); ok {
			pd.VendorID, pd.DeviceID = &ids.Vendor, &ids.Device
			pd.SubsystemVendorID, pd.SubsystemDeviceID = &ids.SubVendor, &ids.SubDevice
			pd.Class = &ids.Class
		} else {
			inv.unread("pci.devices["+d.Address+"]", "modalias %q unreadable: no PCI IDs", d.Modalias)
		}
		if pd.Driver == nil {
			// ghw's own snapshots drop driver links; live and in ftvs
			// snapshots a missing link means no driver is bound.
			if r.driversKnown() {
				pd.Driver = ptr("")
			} else {
				inv.unread("pci.devices["+d.Address+"].driver", "snapshot does not record driver bindings")
			}
		}
		inv.PCI.Devices = append(inv.PCI.Devices, pd)
		byAddr[d.Address] = pd
	}
	return byAddr
}

// PCIIDs are the IDs a PCI modalias carries, as lower-case hex.
type PCIIDs struct {
	Vendor, Device, SubVendor, SubDevice string
	Class                                string // class, subclass, prog-if
}

var modaliasRe = regexp.MustCompile(`^pci:v0000([0-9A-Fa-f]{4})d0000([0-9A-Fa-f]{4})sv0000([0-9A-Fa-f]{4})sd0000([0-9A-Fa-f]{4})bc([0-9A-Fa-f]{2})sc([0-9A-Fa-f]{2})i([0-9A-Fa-f]{2})\s*$`)

// ParsePCIModalias parses the content of a PCI device's sysfs modalias,
// e.g. "pci:v00008086d00001521sv0000FFFFsd00000000bc02sc00i00".
func ParsePCIModalias(s string) (PCIIDs, bool) {
	m := modaliasRe.FindStringSubmatch(s)
	if m == nil {
		return PCIIDs{}, false
	}
	l := strings.ToLower
	return PCIIDs{Vendor: l(m[1]), Device: l(m[2]), SubVendor: l(m[3]), SubDevice: l(m[4]), Class: l(m[5] + m[6] + m[7])}, true
}

var hexID = regexp.MustCompile(`^(0x)?[0-9a-fA-F]+$`)

// knownHex normalises an ID to lower-case hex without 0x, or nil.
func knownHex(s string) *string {
	s = strings.TrimSpace(s)
	if !hexID.MatchString(s) {
		return nil
	}
	return ptr(strings.ToLower(strings.TrimPrefix(s, "0x")))
}

// virtualDisk matches block devices that are not hardware.
var virtualDisk = regexp.MustCompile(`^(loop|ram|zram|dm-|md|nbd|sr|fd)[0-9]`)

func (r *rootReader) storage(inv *Inventory, pciByAddr map[string]PCIDevice) {
	inv.Storage = &Storage{}
	if pciByAddr != nil {
		inv.Storage.Controllers = []PCIDevice{}
		for _, d := range pciByAddr {
			if d.Class != nil && strings.HasPrefix(*d.Class, "01") {
				inv.Storage.Controllers = append(inv.Storage.Controllers, d)
			}
		}
	} else {
		inv.unread("storage.controllers", "PCI devices unreadable")
	}
	if !r.exists("sys/block") {
		inv.unread("storage.disks", "sys/block absent: the source does not record block devices")
		return
	}
	info, err := ghw.Block(r.ghwOpts()...)
	if err != nil {
		inv.unread("storage.disks", "ghw block: %v", err)
		return
	}
	inv.Storage.Disks = []Disk{}
	for _, d := range info.Disks {
		if virtualDisk.MatchString(d.Name) {
			continue
		}
		p := "storage.disks[" + d.Name + "]"
		disk := Disk{Name: d.Name, Model: known(d.Model), Serial: known(d.SerialNumber)}
		if d.SizeBytes > 0 {
			disk.SizeBytes = ptr(int64(d.SizeBytes))
		} else {
			inv.unread(p+".size_bytes", "sys/block/%s/size unreadable or zero", d.Name)
		}
		switch d.DriveType {
		case ghw.DriveTypeHDD:
			disk.Rotational = ptr(true)
		case ghw.DriveTypeSSD:
			disk.Rotational = ptr(false)
		default:
			inv.unread(p+".rotational", "drive type %s", d.DriveType)
		}
		if d.StorageController != ghw.StorageControllerUnknown {
			disk.Transport = ptr(d.StorageController.String())
		} else {
			inv.unread(p+".transport", "storage controller type unknown")
		}
		if disk.Model == nil {
			inv.unread(p+".model", "no model in udev data or sysfs")
		}
		if disk.Serial == nil {
			inv.unread(p+".serial", "no serial in udev data")
		}
		inv.Storage.Disks = append(inv.Storage.Disks, disk)
	}
}

var pciAddrRe = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

func (r *rootReader) network(ctx context.Context, inv *Inventory, pciByAddr map[string]PCIDevice) {
	const classNet = "sys/class/net"
	if !r.exists(classNet) {
		inv.unread("network", "%s absent: the source does not record network interfaces", classNet)
		return
	}
	info, err := ghw.Network(r.ghwOpts()...)
	if err != nil {
		inv.unread("network", "ghw net: %v", err)
		return
	}
	inv.Network = &Network{NICs: []NIC{}}
	for _, n := range info.NICs {
		if n.IsVirtual {
			continue
		}
		// The class entry links to .../<device>/net/<name>; ghw's
		// snapshots keep that link but not the "device" link below it.
		netDir, err := filepath.EvalSymlinks(r.path(filepath.Join(classNet, n.Name)))
		if err != nil {
			inv.unread("network.nics["+n.Name+"]", "%s/%s: %v", classNet, n.Name, err)
			continue
		}
		devDir := filepath.Dir(filepath.Dir(netDir))
		nic := NIC{Name: ptr(n.Name)}
		// Walk up to the PCI function: virtio and USB NICs hang below it.
		for d := devDir; strings.HasPrefix(d, r.root) && d != r.root; d = filepath.Dir(d) {
			if base := filepath.Base(d); pciAddrRe.MatchString(base) {
				nic.PCIAddress = ptr(base)
				break
			}
		}
		nic.Slot = n.Name
		p := "network.nics[" + n.Name + "]"
		if nic.PCIAddress != nil {
			nic.Slot = *nic.PCIAddress
			p = "network.nics[" + nic.Slot + "]"
			if d, ok := pciByAddr[*nic.PCIAddress]; ok {
				nic.VendorID, nic.DeviceID = d.VendorID, d.DeviceID
				nic.SubsystemVendorID, nic.SubsystemDeviceID = d.SubsystemVendorID, d.SubsystemDeviceID
				nic.Driver = d.Driver
			}
		}
		if nic.VendorID == nil {
			nic.VendorID = r.hexFile(filepath.Join(devDir, "vendor"))
			nic.DeviceID = r.hexFile(filepath.Join(devDir, "device"))
			if nic.VendorID == nil {
				inv.unread(p+".vendor_id", "no PCI IDs for the device behind %s", n.Name)
			}
		}
		if nic.Driver == nil {
			if link, err := os.Readlink(filepath.Join(devDir, "driver")); err == nil {
				nic.Driver = ptr(filepath.Base(link))
			} else if r.driversKnown() {
				nic.Driver = ptr("")
			} else {
				inv.unread(p+".driver", "snapshot does not record driver bindings")
			}
		}
		r.nicSysfs(ctx, inv, &nic, n.SupportedLinkModes, p)
		inv.Network.NICs = append(inv.Network.NICs, nic)
	}
}

// nicSysfs fills MAC, link state, maximum speed and firmware version from
// sysfs, ethtool (live) or the ftvs snapshot manifest.
func (r *rootReader) nicSysfs(ctx context.Context, inv *Inventory, nic *NIC, modes []string, p string) {
	name := *nic.Name
	dir := filepath.Join("sys/class/net", name)
	if b, err := r.readFile(filepath.Join(dir, "address")); err == nil {
		nic.MAC = ptr(strings.TrimSpace(string(b)))
	} else {
		inv.unread(p+".mac", "%v", err)
	}
	if b, err := r.readFile(filepath.Join(dir, "operstate")); err == nil {
		nic.LinkState = ptr(strings.TrimSpace(string(b)))
	} else {
		inv.unread(p+".link_state", "%v", err)
	}
	var mn *ManifestNIC
	if r.manifest != nil {
		if m, ok := r.manifest.NICs[name]; ok {
			mn = &m
			if modes == nil {
				modes = m.SupportedLinkModes
			}
		}
	}
	if s := maxLinkSpeed(modes); s > 0 {
		nic.MaxSpeedMbps = ptr(s)
	} else {
		inv.unread(p+".max_speed_mbps", "no supported link modes (ethtool reports none for this device, or the source lacks them)")
	}
	switch {
	case r.live:
		nic.Firmware = ethtoolFirmware(ctx, name)
	case mn != nil && mn.Firmware != nil:
		nic.Firmware = mn.Firmware
	}
	if nic.Firmware == nil {
		inv.unread(p+".firmware_version", "ethtool -i gives no firmware version")
	}
}

// maxLinkSpeed returns the highest speed in Mb/s named by ethtool link
// modes such as "10000baseT/Full".
func maxLinkSpeed(modes []string) int {
	best := 0
	for _, m := range modes {
		i := strings.Index(m, "base")
		if i <= 0 {
			continue
		}
		if n, err := strconv.Atoi(m[:i]); err == nil && n > best {
			best = n
		}
	}
	return best
}

// ethtoolFirmware runs `ethtool -i` for the firmware version; nil when
// ethtool is absent or the driver reports none.
func ethtoolFirmware(ctx context.Context, name string) *string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ethtool", "-i", name).Output()
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "firmware-version:"); ok {
			v = strings.TrimSpace(v)
			if v == "" || v == "N/A" {
				return nil
			}
			return &v
		}
	}
	return nil
}

// driversKnown reports whether a missing driver link means "no driver".
func (r *rootReader) driversKnown() bool { return r.live || r.manifest != nil }

func (r *rootReader) hexFile(abs string) *string {
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil
	}
	return knownHex(string(b))
}

// ManifestName is the file an ftvs snapshot adds at the tarball's root for
// what the filesystem cannot carry (boot mode, ethtool output).
const ManifestName = "ftvs-hwcheck.json"

// Manifest is what `ftvs hwcheck snapshot` records beside the files.
type Manifest struct {
	Version  int                    `json:"version"`
	BootMode string                 `json:"boot_mode"`
	NICs     map[string]ManifestNIC `json:"nics"`
}

// ManifestNIC is the ethtool output for one NIC.
type ManifestNIC struct {
	Firmware           *string  `json:"firmware_version"`
	SupportedLinkModes []string `json:"supported_link_modes"`
}

func readManifest(path string) (*Manifest, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestName, err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, this ftvs reads version 1", ManifestName, m.Version)
	}
	return &m, nil
}

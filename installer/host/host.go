// Package host reads what the installer needs to know about this machine:
// its NICs (name, MAC, PCI slot) and its disks (size, model), from sysfs.
package host

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// NIC is one network interface of this machine.
type NIC struct {
	Name     string
	Index    int
	MAC      net.HardwareAddr
	Slot     string // PCI address (0000:03:00.0); "" for virtual NICs
	Physical bool   // backed by a device (PCI, USB...), not veth/bridge/tun
}

// SlotKey is the position of a NIC that must match between the two
// servers: its PCI slot, or for a virtual NIC (tests) its name.
func (n NIC) SlotKey() string {
	if n.Slot != "" {
		return n.Slot
	}
	return "virtual:" + n.Name
}

// Machine is the live machine, read through sysfs (root is "/" normally).
type Machine struct {
	Root string
}

// Live is this machine.
func Live() Machine { return Machine{Root: "/"} }

// NICs lists every Ethernet interface except loopback, sorted by slot key.
// With all=false only physical NICs are returned.
func (m Machine) NICs(all bool) ([]NIC, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list NICs: %w", err)
	}
	var out []NIC
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || len(i.HardwareAddr) != 6 {
			continue
		}
		n := NIC{Name: i.Name, Index: i.Index, MAC: i.HardwareAddr}
		sys := filepath.Join(m.Root, "sys/class/net", i.Name)
		// sysfs shows the namespace it was mounted in; a thread switched into
		// another namespace must not take the root's eth0 for its own.
		if readTrim(filepath.Join(sys, "ifindex")) != strconv.Itoa(i.Index) {
			sys = ""
		}
		if dev, err := filepath.EvalSymlinks(filepath.Join(sys, "device")); sys != "" && err == nil {
			n.Physical = true
			n.Slot = pciSlotOf(dev)
		}
		if !n.Physical && !all {
			continue
		}
		if sys != "" && isBridgeOrBond(sys) && !n.Physical {
			continue
		}
		out = append(out, n)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].SlotKey() < out[b].SlotKey() })
	return out, nil
}

var pciAddrRE = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// pciSlotOf finds the PCI function a device hangs off (a virtio NIC is a
// child of its PCI function), walking up the sysfs device path.
func pciSlotOf(dev string) string {
	for d := dev; d != "/" && d != "."; d = filepath.Dir(d) {
		if pciAddrRE.MatchString(filepath.Base(d)) {
			return filepath.Base(d)
		}
	}
	return ""
}

func isBridgeOrBond(sys string) bool {
	for _, d := range []string{"bridge", "bonding"} {
		if _, err := os.Stat(filepath.Join(sys, d)); err == nil {
			return true
		}
	}
	return false
}

// Disk is a block device or, in tests, a disk image file.
type Disk struct {
	Path  string // as named by the user
	Real  string // after following symlinks (/dev/disk/by-id/...)
	Size  uint64
	Model string
	Block bool // a block device, not a regular file
}

// DiskAt opens path read-only to learn its size and, for block devices, the
// model from sysfs. It never writes.
func (m Machine) DiskAt(path string) (Disk, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Disk{}, fmt.Errorf("disk %s: %w", path, err)
	}
	st, err := os.Stat(real)
	if err != nil {
		return Disk{}, fmt.Errorf("disk %s: %w", path, err)
	}
	d := Disk{Path: path, Real: real}
	switch {
	case st.Mode().IsRegular():
		d.Size = uint64(st.Size())
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		d.Block = true
		sys := filepath.Join(m.Root, "sys/class/block", filepath.Base(real))
		d.Model = readTrim(filepath.Join(sys, "device/model"))
		// sysfs gives the size without opening the device.
		if sectors, err := strconv.ParseUint(readTrim(filepath.Join(sys, "size")), 10, 64); err == nil {
			d.Size = sectors * 512
			break
		}
		f, err := os.Open(real)
		if err != nil {
			return Disk{}, fmt.Errorf("disk %s: %w", path, err)
		}
		end, err := f.Seek(0, 2)
		f.Close()
		if err != nil {
			return Disk{}, fmt.Errorf("disk %s: size: %w", path, err)
		}
		d.Size = uint64(end)
	default:
		return Disk{}, fmt.Errorf("disk %s: not a block device or disk image file", path)
	}
	return d, nil
}

// Disks lists the whole disks of the machine (no partitions, loop, ram,
// zram or device-mapper devices), sorted by name.
func (m Machine) Disks() ([]Disk, error) {
	dir := filepath.Join(m.Root, "sys/block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list disks: %w", err)
	}
	var out []Disk
	for _, e := range ents {
		name := e.Name()
		for _, skip := range []string{"loop", "ram", "zram", "dm-", "sr", "md", "nbd"} {
			if strings.HasPrefix(name, skip) {
				name = ""
			}
		}
		if name == "" {
			continue
		}
		sectors, err := strconv.ParseUint(readTrim(filepath.Join(dir, name, "size")), 10, 64)
		if err != nil || sectors == 0 {
			continue
		}
		out = append(out, Disk{
			Path:  "/dev/" + name,
			Real:  "/dev/" + name,
			Size:  sectors * 512,
			Model: readTrim(filepath.Join(dir, name, "device/model")),
			Block: true,
		})
	}
	return out, nil
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// InUse lists why a block device must not be written even when wiping is
// allowed: it or one of its partitions is mounted, or is held by another
// device (LVM, RAID, dm-crypt). Regular files (disk images) are never in use.
func (m Machine) InUse(d Disk) ([]string, error) {
	if !d.Block {
		return nil, nil
	}
	name := filepath.Base(d.Real)
	blk := filepath.Join(m.Root, "sys/class/block", name)
	devs := map[string]string{} // major:minor -> device name
	if v := readTrim(filepath.Join(blk, "dev")); v != "" {
		devs[v] = name
	}
	ents, _ := os.ReadDir(blk)
	var why []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(blk, e.Name(), "partition")); err != nil {
			continue
		}
		if v := readTrim(filepath.Join(blk, e.Name(), "dev")); v != "" {
			devs[v] = e.Name()
		}
		if h, _ := os.ReadDir(filepath.Join(blk, e.Name(), "holders")); len(h) > 0 {
			why = append(why, fmt.Sprintf("%s is held by %s", e.Name(), h[0].Name()))
		}
	}
	if h, _ := os.ReadDir(filepath.Join(blk, "holders")); len(h) > 0 {
		why = append(why, fmt.Sprintf("%s is held by %s", name, h[0].Name()))
	}
	mi, err := os.ReadFile(filepath.Join(m.Root, "proc/self/mountinfo"))
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		if dev, ok := devs[f[2]]; ok {
			why = append(why, fmt.Sprintf("%s is mounted on %s", dev, f[4]))
		}
	}
	sort.Strings(why)
	return why, nil
}

package inventory

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	dualXeon  = "../../testdata/hwcheck/linux-amd64-8581cf3a529e5d8b97ea876eade2f60d.tar.gz"
	ryzen     = "../../testdata/hwcheck/linux-amd64-61797caf7c0b6bca1725ad7975ed4773.tar.gz"
	dellDMI   = "../../testdata/hwcheck/Dell-PowerEdge-R630-Dual-Xeon.dmi"
	superDMI  = "../../testdata/hwcheck/SuperMicro-Dual-Xeon.dmi"
	gib       = int64(1) << 30
	noDMIText = "no DMI tables"
)

func collect(t *testing.T, src Sources) *Inventory {
	t.Helper()
	inv, err := Collect(context.Background(), src)
	if err != nil {
		t.Fatalf("Collect(%+v): %v", src, err)
	}
	return inv
}

func unreadableReason(inv *Inventory, path string) string {
	for _, u := range inv.Unreadable {
		if u.Path == path {
			return u.Reason
		}
	}
	return ""
}

func TestDualXeonSnapshot(t *testing.T) {
	inv := collect(t, Sources{Snapshot: dualXeon})
	if got := len(inv.CPU.Sockets); got != 2 {
		t.Fatalf("sockets = %d, want 2", got)
	}
	threads := 0
	for _, s := range inv.CPU.Sockets {
		if *s.Vendor != "GenuineIntel" || !strings.Contains(*s.ModelName, "L5640") {
			t.Errorf("socket %d: %s %s, want a GenuineIntel Xeon L5640", s.ID, *s.Vendor, *s.ModelName)
		}
		if *s.Family != 6 || *s.Model != 44 || *s.Stepping != 2 {
			t.Errorf("socket %d: signature %d/%d/%d, want 6/44/2", s.ID, *s.Family, *s.Model, *s.Stepping)
		}
		if *s.Cores != 6 || *s.Threads != 12 {
			t.Errorf("socket %d: %d cores %d threads, want 6 and 12", s.ID, *s.Cores, *s.Threads)
		}
		if s.Microcode == nil || len(s.Flags) < 50 {
			t.Errorf("socket %d: microcode %v, %d flags: want both read", s.ID, s.Microcode, len(s.Flags))
		}
		threads += *s.Threads
	}
	if threads != 24 {
		t.Errorf("threads = %d, want 24", threads)
	}
	// 33 online 2 GiB memory blocks; MemTotal 65921280 kB: a 64 GiB server.
	if got := *inv.Memory.TotalBytes; got != 66*gib {
		t.Errorf("memory total = %d, want 66 GiB of memory blocks", got)
	}
	if got := *inv.Memory.UsableBytes; got != 65921280*1024 {
		t.Errorf("usable memory = %d, want MemTotal 65921280 kB", got)
	}
	if got := len(inv.PCI.Devices); got != 82 {
		t.Errorf("PCI devices = %d, want 82", got)
	}
	// ghw's snapshot has no DMI and no /sys/class/net: unknown, never invented.
	if inv.BIOS.Version != nil || inv.System.Vendor != nil || inv.Memory.DIMMs != nil {
		t.Errorf("DMI values invented from a snapshot without DMI: bios %v system %v dimms %v", inv.BIOS.Version, inv.System.Vendor, inv.Memory.DIMMs)
	}
	if r := unreadableReason(inv, "bios.version"); !strings.Contains(r, noDMIText) {
		t.Errorf("bios.version unreadable reason = %q, want it to say %q", r, noDMIText)
	}
	if inv.Network != nil {
		t.Errorf("network = %+v, want not collected", inv.Network)
	}
	if r := unreadableReason(inv, "network"); !strings.Contains(r, "sys/class/net absent") {
		t.Errorf("network unreadable reason = %q", r)
	}
}

func TestRyzenSnapshotNICs(t *testing.T) {
	inv := collect(t, Sources{Snapshot: ryzen})
	want := map[string]string{ // slot -> vendor:device
		"0000:03:00.0": "10ec:8168",
		"0000:06:00.0": "8086:1521",
		"0000:06:00.1": "8086:1521",
		"0000:08:00.0": "10ec:8168",
	}
	if len(inv.Network.NICs) != len(want) {
		t.Fatalf("NICs = %+v, want 4", inv.Network.NICs)
	}
	for _, n := range inv.Network.NICs {
		if got := *n.VendorID + ":" + *n.DeviceID; want[n.Slot] != got {
			t.Errorf("NIC %s: %s, want %s", n.Slot, got, want[n.Slot])
		}
		if n.MAC != nil || n.MaxSpeedMbps != nil {
			t.Errorf("NIC %s: MAC %v speed %v invented (the snapshot has neither)", n.Slot, n.MAC, n.MaxSpeedMbps)
		}
	}
	if s := inv.CPU.Sockets; len(s) != 1 || *s[0].Cores != 6 || *s[0].Threads != 12 || *s[0].Family != 23 {
		t.Errorf("CPU = %+v, want one Ryzen socket with 6 cores, 12 threads, family 23", s)
	}
	if len(inv.Storage.Disks) != 3 || len(inv.Storage.Controllers) != 2 {
		t.Errorf("storage = %+v, want 3 disks and 2 SATA controllers", inv.Storage)
	}
}

// goSMBIOS is the part of the go-smbios decode (the .json beside each
// table) the inventory is checked against.
type goSMBIOS struct {
	BIOSInformation   struct{ Vendor, Version, ReleaseDate string }
	SystemInformation struct {
		Manufacturer, ProductName, Version, SerialNumber, UUID, SKUNumber string
	}
	BaseboardInformation struct{ Manufacturer, Product, Version, SerialNumber string }
	ProcessorInformation []struct {
		ProcessorManufacturer, ProcessorVersion string
		Status                                  int
		CoreCount, ThreadCount                  int
	}
	MemoryDevices []struct {
		Size, ExtendedSize, Speed, ConfiguredMemorySpeed, TotalWidth       int
		DeviceLocator, BankLocator, Manufacturer, PartNumber, SerialNumber string
	}
}

func TestSMBIOSTablesAgainstGoSMBIOS(t *testing.T) {
	for _, file := range []string{dellDMI, superDMI} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			raw, err := os.ReadFile(strings.TrimSuffix(file, ".dmi") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			var want goSMBIOS
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			inv := collect(t, Sources{SMBIOS: file})
			eq := func(what string, got *string, want string) {
				t.Helper()
				if got == nil || *got != want {
					t.Errorf("%s = %v, want %q", what, got, want)
				}
			}
			eq("bios.vendor", inv.BIOS.Vendor, want.BIOSInformation.Vendor)
			eq("bios.version", inv.BIOS.Version, want.BIOSInformation.Version)
			eq("bios.release_date", inv.BIOS.ReleaseDate, want.BIOSInformation.ReleaseDate)
			eq("system.vendor", inv.System.Vendor, want.SystemInformation.Manufacturer)
			eq("system.product", inv.System.Product, want.SystemInformation.ProductName)
			eq("system.version", inv.System.Version, want.SystemInformation.Version)
			eq("system.serial", inv.System.Serial, want.SystemInformation.SerialNumber)
			eq("system.uuid", inv.System.UUID, want.SystemInformation.UUID)
			eq("baseboard.vendor", inv.Baseboard.Vendor, want.BaseboardInformation.Manufacturer)
			eq("baseboard.product", inv.Baseboard.Product, want.BaseboardInformation.Product)
			eq("baseboard.version", inv.Baseboard.Version, want.BaseboardInformation.Version)
			eq("baseboard.serial", inv.Baseboard.Serial, want.BaseboardInformation.SerialNumber)

			var sockets []int
			for i, p := range want.ProcessorInformation {
				if p.Status&0x40 != 0 {
					sockets = append(sockets, i)
				}
			}
			if len(inv.CPU.Sockets) != len(sockets) {
				t.Fatalf("populated sockets = %d, want %d", len(inv.CPU.Sockets), len(sockets))
			}
			for i, s := range inv.CPU.Sockets {
				p := want.ProcessorInformation[sockets[i]]
				eq("socket model", s.ModelName, p.ProcessorVersion)
				if *s.Cores != p.CoreCount || *s.Threads != p.ThreadCount {
					t.Errorf("socket %d: %d cores %d threads, want %d and %d", i, *s.Cores, *s.Threads, p.CoreCount, p.ThreadCount)
				}
			}

			if len(inv.Memory.DIMMs) != len(want.MemoryDevices) {
				t.Fatalf("DIMM slots = %d, want %d", len(inv.Memory.DIMMs), len(want.MemoryDevices))
			}
			byLoc := map[string]DIMM{}
			for _, d := range inv.Memory.DIMMs {
				byLoc[d.Locator] = d
			}
			for _, w := range want.MemoryDevices {
				d, ok := byLoc[w.DeviceLocator]
				if !ok {
					t.Errorf("DIMM %s missing", w.DeviceLocator)
					continue
				}
				if populated := w.Size != 0; d.Populated != populated {
					t.Errorf("DIMM %s populated = %v, want %v", w.DeviceLocator, d.Populated, populated)
				}
				if !d.Populated {
					continue
				}
				mib := int64(w.Size)
				if w.Size == 0x7fff {
					mib = int64(w.ExtendedSize)
				}
				if d.SizeBytes == nil || *d.SizeBytes != mib<<20 {
					t.Errorf("DIMM %s size = %v, want %d MiB", w.DeviceLocator, d.SizeBytes, mib)
				}
				if d.SpeedMTs == nil || *d.SpeedMTs != w.Speed {
					t.Errorf("DIMM %s speed = %v, want %d", w.DeviceLocator, d.SpeedMTs, w.Speed)
				}
				if d.ConfiguredMTs == nil || *d.ConfiguredMTs != w.ConfiguredMemorySpeed {
					t.Errorf("DIMM %s configured speed = %v, want %d", w.DeviceLocator, d.ConfiguredMTs, w.ConfiguredMemorySpeed)
				}
				if d.TotalWidthBits == nil || *d.TotalWidthBits != w.TotalWidth {
					t.Errorf("DIMM %s width = %v, want %d", w.DeviceLocator, d.TotalWidthBits, w.TotalWidth)
				}
				eq("DIMM "+w.DeviceLocator+" manufacturer", d.Manufacturer, w.Manufacturer)
				eq("DIMM "+w.DeviceLocator+" part number", d.PartNumber, w.PartNumber)
				eq("DIMM "+w.DeviceLocator+" serial", d.Serial, w.SerialNumber)
				eq("DIMM "+w.DeviceLocator+" bank", &d.Bank, w.BankLocator)
			}
		})
	}
}

func TestSMBIOSFacts(t *testing.T) {
	dell := collect(t, Sources{SMBIOS: dellDMI})
	var total int64
	for _, d := range dell.Memory.DIMMs {
		if d.Populated {
			total += *d.SizeBytes
		}
	}
	if total != 32*gib || len(dell.Memory.DIMMs) != 24 {
		t.Errorf("Dell: %d bytes in %d slots, want 32 GiB in 24", total, len(dell.Memory.DIMMs))
	}
	if s := dell.CPU.Sockets; len(s) != 1 || *s[0].Family != 6 || *s[0].Model != 63 || *s[0].Stepping != 2 {
		t.Errorf("Dell CPU = %+v, want one Haswell-EP (6/63/2) socket", s)
	}
	super := collect(t, Sources{SMBIOS: superDMI})
	if s := super.CPU.Sockets; len(s) != 2 || *s[0].Family != 6 || *s[0].Model != 62 {
		t.Errorf("Supermicro CPU = %+v, want two Ivy Bridge-EP (6/62) sockets", s)
	}
	// A lone SMBIOS table covers no NICs, disks or PCI: not collected, and
	// nothing read from the machine the test runs on.
	for _, inv := range []*Inventory{dell, super} {
		if inv.Network != nil || inv.Storage != nil || inv.PCI != nil || inv.Memory.TotalBytes != nil || inv.BIOS.BootMode != nil {
			t.Errorf("%s: domains filled from outside the SMBIOS table", inv.Source)
		}
		if r := unreadableReason(inv, "network"); !strings.Contains(r, "not collected") {
			t.Errorf("%s: network reason %q, want not collected", inv.Source, r)
		}
	}
}

func TestSnapshotWithSMBIOS(t *testing.T) {
	inv := collect(t, Sources{Snapshot: dualXeon, SMBIOS: superDMI})
	if *inv.BIOS.Version != "3.0c" || len(inv.Memory.DIMMs) != 16 {
		t.Errorf("BIOS %v, %d DIMMs: want the Supermicro table's 3.0c and 16", inv.BIOS.Version, len(inv.Memory.DIMMs))
	}
	if len(inv.CPU.Sockets) != 2 || !strings.Contains(*inv.CPU.Sockets[0].ModelName, "L5640") {
		t.Errorf("CPU from the snapshot expected, got %+v", inv.CPU.Sockets)
	}
	if inv.Network != nil {
		t.Error("network filled although the snapshot has none")
	}
}

func TestLiveInventory(t *testing.T) {
	inv := collect(t, Sources{})
	if len(inv.CPU.Sockets) == 0 || inv.CPU.Sockets[0].Vendor == nil {
		t.Fatalf("live CPU = %+v", inv.CPU)
	}
	if inv.BIOS.BootMode == nil {
		t.Error("live boot mode unknown")
	}
	if _, err := os.Stat("/sys/firmware/dmi/tables/DMI"); err != nil {
		// This machine has no DMI: the inventory must say so, not invent.
		if inv.BIOS.Version != nil || inv.System.Vendor != nil || inv.Baseboard.Product != nil || inv.Memory.DIMMs != nil {
			t.Errorf("DMI values invented: bios %v system %v board %v", inv.BIOS.Version, inv.System.Vendor, inv.Baseboard.Product)
		}
		for _, p := range []string{"bios.version", "bios.vendor", "system.product", "memory.dimms"} {
			if r := unreadableReason(inv, p); !strings.Contains(r, noDMIText) {
				t.Errorf("%s: reason %q, want %q", p, r, noDMIText)
			}
		}
	} else if inv.BIOS.Version == nil {
		t.Error("DMI present but BIOS version unread")
	}
}

func TestCaptureRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "snap.tar.gz")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := Capture(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	live := collect(t, Sources{})
	snap := collect(t, Sources{Snapshot: file})
	live.Source, snap.Source = "", ""
	a, _ := live.Encode()
	b, _ := snap.Encode()
	if !bytes.Equal(a, b) {
		t.Errorf("snapshot inventory differs from the live one:\nlive: %s\nsnapshot: %s", a, b)
	}
}

func TestJSONRoundTrip(t *testing.T) {
	inv := collect(t, Sources{Snapshot: ryzen, SMBIOS: superDMI})
	a, err := inv.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode("x.json", a)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := back.Encode()
	if !bytes.Equal(a, b) {
		t.Error("inventory changes through JSON")
	}
	if _, err := Decode("v9.json", []byte(`{"version": 9}`)); err == nil || !strings.Contains(err.Error(), "v9.json") {
		t.Errorf("unknown version: %v", err)
	}
}

// tarball writes a gzip-compressed tar of files (name -> content; a name
// ending in "/" is a directory).
func tarball(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			hdr = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

const arm64CPUInfo = `processor	: 0
BogoMIPS	: 50.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x3
CPU part	: 0xd0c
CPU revision	: 1
`

func TestBadSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, err := os.ReadFile(dualXeon)
	if err != nil {
		t.Fatal(err)
	}
	dell, err := os.ReadFile(dellDMI)
	if err != nil {
		t.Fatal(err)
	}
	corrupt := append([]byte(nil), good...)
	for i := len(corrupt) / 2; i < len(corrupt)/2+64; i++ {
		corrupt[i] ^= 0x5a
	}
	badLen := append([]byte(nil), dell...)
	badLen[1] = 2 // first structure's length below its 4-byte header
	cases := []struct {
		name string
		src  Sources
		want []string // substrings of the error
	}{
		{"truncated tarball", Sources{Snapshot: write("trunc.tar.gz", good[:len(good)/2])}, []string{"trunc.tar.gz", "truncated"}},
		{"corrupt tarball", Sources{Snapshot: write("corrupt.tar.gz", corrupt)}, []string{"corrupt.tar.gz"}},
		{"not gzip", Sources{Snapshot: write("plain.tar.gz", []byte("hello"))}, []string{"plain.tar.gz", "not a gzip"}},
		{"empty tarball", Sources{Snapshot: write("empty.tar.gz", tarball(t, nil))}, []string{"empty.tar.gz", "empty tarball"}},
		{"empty root", Sources{Snapshot: write("root.tar.gz", tarball(t, map[string]string{"sys/": ""}))}, []string{"root.tar.gz", "no proc/cpuinfo"}},
		{"non-x86", Sources{Snapshot: write("arm.tar.gz", tarball(t, map[string]string{"proc/cpuinfo": arm64CPUInfo}))}, []string{"arm.tar.gz", "proc/cpuinfo", "not an x86 cpuinfo"}},
		{"bad cpuinfo", Sources{Snapshot: write("badcpu.tar.gz", tarball(t, map[string]string{"proc/cpuinfo": "processor : 0\nvendor_id : X\ncpu family : six\n"}))}, []string{"badcpu.tar.gz", "line 3", "cpu family"}},
		{"truncated smbios", Sources{SMBIOS: write("trunc.dmi", dell[:100])}, []string{"trunc.dmi", "SMBIOS structure"}},
		{"corrupt smbios length", Sources{SMBIOS: write("len.dmi", badLen)}, []string{"len.dmi", "shorter than its header"}},
		{"empty smbios", Sources{SMBIOS: write("empty.dmi", nil)}, []string{"empty.dmi", "empty SMBIOS table"}},
		{"missing smbios", Sources{SMBIOS: filepath.Join(dir, "nope.dmi")}, []string{"nope.dmi"}},
		{"corrupt DMI inside snapshot", Sources{Snapshot: write("dmi.tar.gz", tarball(t, map[string]string{
			"proc/cpuinfo":                "processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 85\n",
			"sys/firmware/dmi/tables/DMI": string(dell[:60]),
		}))}, []string{"dmi.tar.gz", "sys/firmware/dmi/tables/DMI"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv, err := Collect(context.Background(), c.src)
			if err == nil {
				t.Fatalf("no error; inventory %+v", inv)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadSniffsFormat(t *testing.T) {
	dir := t.TempDir()
	inv := collect(t, Sources{SMBIOS: dellDMI})
	b, _ := inv.Encode()
	js := filepath.Join(dir, "inv.json")
	os.WriteFile(js, b, 0o644)
	got, err := Load(context.Background(), js, nil)
	if err != nil || *got.BIOS.Version != "2.3.4" {
		t.Errorf("Load JSON: %v %v", got, err)
	}
	got, err = Load(context.Background(), ryzen, nil)
	if err != nil || len(got.Network.NICs) != 4 {
		t.Errorf("Load tarball: %v", err)
	}
	junk := filepath.Join(dir, "junk.bin")
	os.WriteFile(junk, []byte("\x00\x01junk"), 0o644)
	if _, err := Load(context.Background(), junk, nil); err == nil || !strings.Contains(err.Error(), "junk.bin") {
		t.Errorf("Load junk: %v", err)
	}
}

func TestEveryUnknownIsListed(t *testing.T) {
	inv := &Inventory{
		System: &System{Vendor: ptr("v")},
		Memory: &Memory{DIMMs: []DIMM{{Locator: "A1"}, {Locator: "A2", Populated: true, SizeBytes: ptr(int64(1))}}},
		CPU:    &CPU{Sockets: []Socket{{ID: 0}}},
	}
	inv.unread("memory.total_bytes", "given reason")
	inv.listUnknowns()
	got := map[string]string{}
	for _, u := range inv.Unreadable {
		got[u.Path] = u.Reason
	}
	for _, p := range []string{"system.product", "system.uuid", "memory.usable_bytes", "memory.dimms[A2].part_number", "cpu.sockets[0].flags", "network", "pci"} {
		if got[p] == "" {
			t.Errorf("%s not listed", p)
		}
	}
	if got["memory.total_bytes"] != "given reason" || got["system.vendor"] != "" || got["memory.dimms[A1].size_bytes"] != "" {
		t.Errorf("listed wrongly: %v", got)
	}
	// Every nil leaf of a real inventory has a reason.
	real := collect(t, Sources{Snapshot: ryzen})
	n := len(real.Unreadable)
	real.listUnknowns()
	if len(real.Unreadable) != n {
		t.Errorf("Collect left %d unknowns unlisted", len(real.Unreadable)-n)
	}
}

func TestPCIIDsDoNotDependOnPCIIDs(t *testing.T) {
	// ghw looks subsystems up in pci.ids by subdevice alone; the
	// inventory must give the same IDs with and without a database.
	db := LoadPCIDB()
	if db == nil {
		t.Skip("no pci.ids installed (Debian package pci.ids)")
	}
	with := collect(t, Sources{Snapshot: ryzen, PCIDB: db})
	without := collect(t, Sources{Snapshot: ryzen})
	a, _ := with.Encode()
	b, _ := without.Encode()
	if !bytes.Equal(a, b) {
		t.Error("inventory depends on the pci.ids database")
	}
	for _, n := range with.Network.NICs {
		if n.Slot == "0000:06:00.0" && (*n.SubsystemVendorID != "ffff" || *n.SubsystemDeviceID != "0000") {
			t.Errorf("I350 subsystem %s:%s, want the modalias's ffff:0000", *n.SubsystemVendorID, *n.SubsystemDeviceID)
		}
	}
}

func TestSnapshotWithDMITable(t *testing.T) {
	dell, err := os.ReadFile(dellDMI)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dmi.tar.gz")
	os.WriteFile(file, tarball(t, map[string]string{
		"proc/cpuinfo":                "processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 63\nstepping : 2\nphysical id : 0\n",
		"sys/firmware/dmi/tables/DMI": string(dell),
	}), 0o644)
	inv := collect(t, Sources{Snapshot: file})
	if inv.BIOS.Version == nil || *inv.BIOS.Version != "2.3.4" || len(inv.Memory.DIMMs) != 24 {
		t.Errorf("DMI in a snapshot not read: bios %v, %d DIMMs", inv.BIOS.Version, len(inv.Memory.DIMMs))
	}
	// --smbios overrides the snapshot's own table.
	inv = collect(t, Sources{Snapshot: file, SMBIOS: superDMI})
	if *inv.BIOS.Version != "3.0c" {
		t.Errorf("--smbios did not override: %s", *inv.BIOS.Version)
	}
}

func TestDMIFromSysClassDMI(t *testing.T) {
	// No raw table (a non-root capture): the kernel's decoded strings in
	// /sys/class/dmi/id, through ghw, give firmware and board, no DIMMs.
	file := filepath.Join(t.TempDir(), "classdmi.tar.gz")
	os.WriteFile(file, tarball(t, map[string]string{
		"proc/cpuinfo":                  "processor : 0\nvendor_id : GenuineIntel\ncpu family : 6\nmodel : 85\nstepping : 4\nphysical id : 0\n",
		"sys/class/dmi/id/bios_vendor":  "SeaBIOS\n",
		"sys/class/dmi/id/bios_version": "1.16.2-debian-1.16.2-1\n",
		"sys/class/dmi/id/bios_date":    "04/01/2014\n",
		"sys/class/dmi/id/sys_vendor":   "QEMU\n",
		"sys/class/dmi/id/product_name": "Standard PC (i440FX + PIIX, 1996)\n",
		"sys/class/dmi/id/board_vendor": "unknown\n",
	}), 0o644)
	inv := collect(t, Sources{Snapshot: file})
	if inv.BIOS.Version == nil || *inv.BIOS.Version != "1.16.2-debian-1.16.2-1" || *inv.BIOS.Vendor != "SeaBIOS" || *inv.BIOS.ReleaseDate != "04/01/2014" {
		t.Errorf("BIOS from /sys/class/dmi/id: %+v", inv.BIOS)
	}
	if inv.System.Vendor == nil || *inv.System.Vendor != "QEMU" {
		t.Errorf("system vendor %v", inv.System.Vendor)
	}
	if inv.Baseboard.Vendor != nil || unreadableReason(inv, "baseboard.vendor") == "" {
		t.Errorf("ghw's \"unknown\" taken as a value: %v", inv.Baseboard.Vendor)
	}
	if inv.Memory.DIMMs != nil || !strings.Contains(unreadableReason(inv, "memory.dimms"), "no raw SMBIOS table") {
		t.Errorf("DIMMs %v, reason %q", inv.Memory.DIMMs, unreadableReason(inv, "memory.dimms"))
	}
}

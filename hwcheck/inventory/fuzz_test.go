package inventory

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseSMBIOS feeds arbitrary bytes to the SMBIOS reader: it must
// return a DMI or an error, never panic or loop.
func FuzzParseSMBIOS(f *testing.F) {
	for _, file := range []string{dellDMI, superDMI} {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/3])
	}
	f.Add([]byte("_SM_"))
	f.Add([]byte{127, 4, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		dmi, err := ParseSMBIOS(data)
		if err == nil && dmi == nil {
			t.Fatal("nil DMI without an error")
		}
		if err != nil && dmi != nil {
			t.Fatal("DMI and an error")
		}
	})
}

// FuzzParseCPUInfo feeds arbitrary text to the cpuinfo parser and checks
// what it accepts is a consistent x86 description.
func FuzzParseCPUInfo(f *testing.F) {
	f.Add([]byte("processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 44\nstepping\t: 2\nmicrocode\t: 0x1f\nphysical id\t: 0\nsiblings\t: 12\ncpu cores\t: 6\nflags\t\t: fpu vme de\n\n"))
	f.Add([]byte(arm64CPUInfo))
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		procs, err := ParseCPUInfo(data)
		if err != nil {
			return
		}
		if len(procs) == 0 {
			t.Fatal("no processors and no error")
		}
		for _, p := range procs {
			if p.VendorID == "" {
				t.Fatalf("processor %d accepted without vendor_id", p.Processor)
			}
		}
		sockets := cpuinfoSockets(procs)
		if len(sockets) == 0 || len(sockets) > len(procs) {
			t.Fatalf("%d sockets from %d processors", len(sockets), len(procs))
		}
		for _, s := range sockets {
			if s.Microcode != nil && strings.Contains(*s.Microcode, ",,") {
				t.Fatalf("bad microcode list %q", *s.Microcode)
			}
		}
	})
}

// FuzzDecode: a saved inventory is a file the user names; any bytes give
// an inventory of the known version or an error.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"version":1,"cpu":{"sockets":[{"id":0,"flags":["fpu"]}]},"memory":{"dimms":[{"locator":"A1","populated":true}]}}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Decode("f.json", data)
		if err != nil {
			return
		}
		if inv.Version != SchemaVersion {
			t.Fatalf("version %d accepted", inv.Version)
		}
		if _, err := inv.Encode(); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzParsePCIModalias: sysfs modalias content from a snapshot file.
func FuzzParsePCIModalias(f *testing.F) {
	f.Add("pci:v00008086d00001521sv0000FFFFsd00000000bc02sc00i00\n")
	f.Add("pci:v00001AF4d00001041sv00001AF4sd00001041bc02sc00i00")
	f.Add("usb:v1D6Bp0002")
	f.Fuzz(func(t *testing.T, s string) {
		ids, ok := ParsePCIModalias(s)
		if !ok {
			return
		}
		for _, id := range []string{ids.Vendor, ids.Device, ids.SubVendor, ids.SubDevice} {
			if len(id) != 4 || strings.ToLower(id) != id {
				t.Fatalf("bad ID %q from %q", id, s)
			}
		}
		if len(ids.Class) != 6 {
			t.Fatalf("bad class %q", ids.Class)
		}
	})
}

// FuzzUnpack: a snapshot tarball is a file the user names. Any bytes
// unpack or fail with an error; nothing is ever created outside the
// target directory.
func FuzzUnpack(f *testing.F) {
	// Small seeds: a whole ghw snapshot makes each run too slow to mutate.
	for _, entries := range [][]tar.Header{
		{{Name: "sys/", Typeflag: tar.TypeDir, Mode: 0o755}, {Name: "proc/cpuinfo", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3}},
		{{Name: "sys/class/net/eth0", Typeflag: tar.TypeSymlink, Linkname: "../../devices/pci0000:00/0000:00:03.0/net/eth0"}},
		{{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "../../etc"}, {Name: "a/passwd", Typeflag: tar.TypeReg, Size: 3}},
		{{Name: "../escape", Typeflag: tar.TypeReg, Size: 3}},
	} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, h := range entries {
			tw.WriteHeader(&h)
			if h.Size > 0 {
				tw.Write([]byte("abc"))
			}
		}
		tw.Close()
		zw.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, err := scratchDir("ftvs-fuzz-unpack-*")
		if err != nil {
			t.Skip(err)
		}
		defer os.RemoveAll(parent)
		file := filepath.Join(parent, "in.tar.gz")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		root := filepath.Join(parent, "root")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = Unpack(file, root)
		entries, _ := os.ReadDir(parent)
		if len(entries) != 2 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("unpack wrote outside its root: %v", names)
		}
	})
}

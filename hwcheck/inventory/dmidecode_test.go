package inventory

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// dumpBin wraps a raw table the way `dmidecode --dump-bin` writes it: an
// SMBIOS 3.0 entry point at offset 0 naming the table at offset 0x20.
func dumpBin(table []byte) []byte {
	ep := make([]byte, 0x18)
	copy(ep, "_SM3_")
	ep[6] = 0x18 // entry point length
	ep[7], ep[8] = 3, 0
	ep[10] = 1 // entry point revision
	binary.LittleEndian.PutUint32(ep[12:], uint32(len(table)))
	binary.LittleEndian.PutUint64(ep[16:], 0x20)
	var sum byte
	for _, b := range ep {
		sum += b
	}
	ep[5] = -sum
	out := make([]byte, 0x20, 0x20+len(table))
	copy(out, ep)
	return append(out, table...)
}

func TestDumpBinFormat(t *testing.T) {
	for _, file := range []string{dellDMI, superDMI} {
		table, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		fromTable, err := ParseSMBIOS(table)
		if err != nil {
			t.Fatal(err)
		}
		fromDump, err := ParseSMBIOS(dumpBin(table))
		if err != nil {
			t.Fatalf("%s as dump-bin: %v", file, err)
		}
		if *fromDump.BIOS.Version != *fromTable.BIOS.Version || len(fromDump.DIMMs) != len(fromTable.DIMMs) {
			t.Errorf("%s: dump-bin decode differs from the table's", file)
		}
		bad := dumpBin(table)
		bad[16] = 0xff // table offset beyond the file
		if _, err := ParseSMBIOS(bad); err == nil {
			t.Errorf("%s: entry point with a bad table offset accepted", file)
		}
	}
}

func atoiOr(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// TestAgainstDmidecode decodes both fixture tables with dmidecode (the
// reference decoder) and checks firmware and every populated DIMM.
func TestAgainstDmidecode(t *testing.T) {
	if _, err := exec.LookPath("dmidecode"); err != nil {
		t.Skip("dmidecode not installed (Debian package dmidecode)")
	}
	for _, file := range []string{dellDMI, superDMI} {
		t.Run(filepath.Base(file), func(t *testing.T) {
			table, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			dump := filepath.Join(t.TempDir(), "dump.bin")
			if err := os.WriteFile(dump, dumpBin(table), 0o644); err != nil {
				t.Fatal(err)
			}
			// records runs dmidecode for one type: one field map per structure.
			records := func(typ string) []map[string]string {
				out, err := exec.Command("dmidecode", "--from-dump", dump, "-t", typ).Output()
				if err != nil {
					t.Fatalf("dmidecode -t %s: %v", typ, err)
				}
				var recs []map[string]string
				for _, line := range strings.Split(string(out), "\n") {
					if strings.HasPrefix(line, "Handle ") {
						recs = append(recs, map[string]string{})
						continue
					}
					if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok && len(recs) > 0 {
						recs[len(recs)-1][k] = v
					}
				}
				return recs
			}
			dmi, err := ParseSMBIOS(table)
			if err != nil {
				t.Fatal(err)
			}
			if r := records("0"); len(r) != 1 || r[0]["Version"] != *dmi.BIOS.Version || r[0]["Vendor"] != *dmi.BIOS.Vendor {
				t.Errorf("BIOS: dmidecode %v, inventory %s %s", r, *dmi.BIOS.Vendor, *dmi.BIOS.Version)
			}
			if r := records("1"); len(r) != 1 || strings.ToLower(r[0]["UUID"]) != *dmi.System.UUID || r[0]["Product Name"] != *dmi.System.Product {
				t.Errorf("system: dmidecode %v, inventory %s %s", r, *dmi.System.Product, *dmi.System.UUID)
			}
			mems := records("17")
			if len(mems) != len(dmi.DIMMs) {
				t.Fatalf("dmidecode: %d memory devices, inventory %d", len(mems), len(dmi.DIMMs))
			}
			for i, d := range dmi.DIMMs {
				r := mems[i]
				if d.Locator != r["Locator"] {
					t.Errorf("DIMM %d: locator %s, dmidecode %s", i, d.Locator, r["Locator"])
				}
				if empty := r["Size"] == "No Module Installed"; empty == d.Populated {
					t.Errorf("DIMM %s: populated %v, dmidecode size %q", d.Locator, d.Populated, r["Size"])
					continue
				}
				if !d.Populated {
					continue
				}
				if want := strings.TrimSuffix(r["Size"], " GB"); *d.SizeBytes>>30 != atoiOr(want) {
					t.Errorf("DIMM %s: %d GiB, dmidecode %s", d.Locator, *d.SizeBytes>>30, r["Size"])
				}
				for name, got := range map[string]string{"Part Number": *d.PartNumber, "Serial Number": *d.Serial, "Manufacturer": *d.Manufacturer, "Type": *d.Type} {
					if got != r[name] {
						t.Errorf("DIMM %s: %s %q, dmidecode %q", d.Locator, name, got, r[name])
					}
				}
			}
		})
	}
}

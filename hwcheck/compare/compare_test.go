package compare

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/hwcheck/inventory"
	"github.com/ftvs/ftvs/hwcheck/policy"
)

const (
	dualXeon = "../../testdata/hwcheck/linux-amd64-8581cf3a529e5d8b97ea876eade2f60d.tar.gz"
	ryzen    = "../../testdata/hwcheck/linux-amd64-61797caf7c0b6bca1725ad7975ed4773.tar.gz"
	superDMI = "../../testdata/hwcheck/SuperMicro-Dual-Xeon.dmi"
)

// known returns a real inventory (the Ryzen snapshot with the Supermicro
// SMBIOS table) with every unknown leaf filled in, so that a copy of it
// matches with no difference at all.
func known(t *testing.T) *inventory.Inventory {
	t.Helper()
	inv, err := inventory.Collect(context.Background(), inventory.Sources{Snapshot: ryzen, SMBIOS: superDMI})
	if err != nil {
		t.Fatal(err)
	}
	fill(reflect.ValueOf(inv).Elem())
	inv.Unreadable = nil
	return inv
}

func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
			switch e := v.Elem(); e.Kind() {
			case reflect.String:
				e.SetString("filled")
			case reflect.Int, reflect.Int64:
				e.SetInt(1000)
			case reflect.Bool:
				e.SetBool(true)
			}
		}
		fill(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i))
		}
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
		}
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i))
		}
	}
}

func clone(t *testing.T, inv *inventory.Inventory) *inventory.Inventory {
	t.Helper()
	b, err := json.Marshal(inv)
	if err != nil {
		t.Fatal(err)
	}
	var c inventory.Inventory
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

func ptr[T any](v T) *T { return &v }

func TestIdenticalMatch(t *testing.T) {
	a := known(t)
	b := clone(t, a)
	rep := Compare(a, b, nil)
	if len(rep.Differences) != 0 || rep.Verdict() != Match {
		t.Fatalf("identical inventories: %s, %+v", rep.Verdict(), rep.Differences)
	}
	// Enumeration order never matters: reverse every list of B.
	rev := func(s reflect.Value) {
		for i, j := 0, s.Len()-1; i < j; i, j = i+1, j-1 {
			x, y := s.Index(i).Interface(), s.Index(j).Interface()
			s.Index(i).Set(reflect.ValueOf(y))
			s.Index(j).Set(reflect.ValueOf(x))
		}
	}
	rev(reflect.ValueOf(b.Memory.DIMMs))
	rev(reflect.ValueOf(b.Network.NICs))
	rev(reflect.ValueOf(b.PCI.Devices))
	rev(reflect.ValueOf(b.Storage.Disks))
	rev(reflect.ValueOf(b.CPU.Sockets[0].Flags))
	if rep := Compare(a, b, nil); len(rep.Differences) != 0 {
		t.Fatalf("reordered lists: %+v", rep.Differences)
	}
}

func TestOneChange(t *testing.T) {
	base := known(t)
	dimm := func(inv *inventory.Inventory, loc string) *inventory.DIMM {
		for i := range inv.Memory.DIMMs {
			if inv.Memory.DIMMs[i].Locator == loc {
				return &inv.Memory.DIMMs[i]
			}
		}
		t.Fatalf("no DIMM %s", loc)
		return nil
	}
	nic := func(inv *inventory.Inventory, slot string) *inventory.NIC {
		for i := range inv.Network.NICs {
			if inv.Network.NICs[i].Slot == slot {
				return &inv.Network.NICs[i]
			}
		}
		t.Fatalf("no NIC %s", slot)
		return nil
	}
	flag := base.CPU.Sockets[0].Flags[3]
	cases := []struct {
		name     string
		change   func(b *inventory.Inventory)
		path     string
		severity Severity
		a, b     string
	}{
		{"BIOS version", func(b *inventory.Inventory) { b.BIOS.Version = ptr("3.2") },
			"bios.version", Fatal, `"3.0c"`, `"3.2"`},
		{"DIMM removed", func(b *inventory.Inventory) { dimm(b, "P2-DIMMH2").Populated = false },
			"memory.dimms[P2-DIMMH2]", Fatal, "4096 MiB DDR3 Kingston HP647647-071-HYE", "empty"},
		{"DIMM part number", func(b *inventory.Inventory) { dimm(b, "P1-DIMMA1").PartNumber = ptr("18KSF51272PZ-1G6K") },
			"memory.dimms[P1-DIMMA1].part_number", Fatal, `"18KSF51272PZ-1G4K"`, `"18KSF51272PZ-1G6K"`},
		{"NIC model", func(b *inventory.Inventory) { nic(b, "0000:06:00.0").DeviceID = ptr("1533") },
			"network.nics[0000:06:00.0].device_id", Fatal, `"1521"`, `"1533"`},
		{"NIC removed", func(b *inventory.Inventory) { b.Network.NICs = b.Network.NICs[:len(b.Network.NICs)-1] },
			"network.nics[0000:08:00.0]", Fatal, "10ec:8168 enp8s0", "absent"},
		{"microcode", func(b *inventory.Inventory) { b.CPU.Sockets[0].Microcode = ptr("0x8001139") },
			"cpu.sockets[0].microcode", Fatal, `"0x8001138"`, `"0x8001139"`},
		{"CPU flag", func(b *inventory.Inventory) {
			b.CPU.Sockets[0].Flags = append(b.CPU.Sockets[0].Flags[:3:3], b.CPU.Sockets[0].Flags[4:]...)
		},
			"cpu.sockets[0].flags[" + flag + "]", Fatal, "present", "absent"},
		{"disk size", func(b *inventory.Inventory) { b.Storage.Disks[0].SizeBytes = ptr(int64(250059350016)) },
			"storage.disks[sda].size_bytes", Fatal, "256060514304", "250059350016"},
		{"BIOS date", func(b *inventory.Inventory) { b.BIOS.ReleaseDate = ptr("04/01/2014") },
			"bios.release_date", Warning, `"03/24/2014"`, `"04/01/2014"`},
		{"MAC", func(b *inventory.Inventory) { nic(b, "0000:03:00.0").MAC = ptr("52:54:00:00:00:02") },
			"network.nics[0000:03:00.0].mac", Info, `"filled"`, `"52:54:00:00:00:02"`},
		{"system serial", func(b *inventory.Inventory) { b.System.Serial = ptr("OTHER") },
			"system.serial", Info, `"E09626824801435"`, `"OTHER"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := clone(t, base)
			c.change(b)
			rep := Compare(base, b, nil)
			if len(rep.Differences) != 1 {
				t.Fatalf("want exactly one difference, got %+v", rep.Differences)
			}
			d := rep.Differences[0]
			if d.Path != c.path || d.Severity != c.severity || d.A != c.a || d.B != c.b {
				t.Errorf("got %s %s: %s vs %s; want %s %s: %s vs %s", d.Severity, d.Path, d.A, d.B, c.severity, c.path, c.a, c.b)
			}
			wantVerdict := Match
			if c.severity == Fatal {
				wantVerdict = Mismatch
			}
			if rep.Verdict() != wantVerdict || d.Blocking != (c.severity == Fatal) {
				t.Errorf("verdict %s blocking %v, want %s", rep.Verdict(), d.Blocking, wantVerdict)
			}
		})
	}
}

func TestUnknownIsNeverEqual(t *testing.T) {
	base := known(t)
	a, b := clone(t, base), clone(t, base)
	a.BIOS.Version, b.BIOS.Version = nil, nil
	a.Unreadable = []inventory.Unreadable{{Path: "bios.version", Reason: "no DMI tables"}}
	b.Unreadable = a.Unreadable
	rep := Compare(a, b, nil)
	if len(rep.Differences) != 1 {
		t.Fatalf("unknown vs unknown: %+v", rep.Differences)
	}
	d := rep.Differences[0]
	if d.Path != "bios.version" || d.Severity != Unverified || !d.Blocking || d.A != "unknown" || d.B != "unknown" ||
		!strings.Contains(d.Reason, "no DMI tables") || rep.Verdict() != Mismatch {
		t.Errorf("unknown vs unknown: %+v, verdict %s", d, rep.Verdict())
	}

	// Known against unknown is unverified too.
	rep = Compare(base, b, nil)
	if len(rep.Differences) != 1 || rep.Differences[0].Severity != Unverified || rep.Differences[0].A != `"3.0c"` {
		t.Errorf("known vs unknown: %+v", rep.Differences)
	}

	// A policy may tolerate the path.
	pol, err := policy.Parse("p.yaml", []byte("version: 1\ntolerate_unverified: [bios.version]\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep = Compare(a, b, pol)
	if len(rep.Differences) != 1 || rep.Differences[0].Blocking || rep.Verdict() != Match {
		t.Errorf("tolerated: %+v, %s", rep.Differences, rep.Verdict())
	}

	// Unknown at an info path is reported but does not block.
	a, b = clone(t, base), clone(t, base)
	a.System.Serial, b.System.Serial = nil, nil
	rep = Compare(a, b, nil)
	if len(rep.Differences) != 1 || rep.Differences[0].Severity != Unverified || rep.Differences[0].Blocking || rep.Verdict() != Match {
		t.Errorf("unknown serial: %+v, %s", rep.Differences, rep.Verdict())
	}

	// Unknown lists and uncollected domains.
	a, b = clone(t, base), clone(t, base)
	a.Memory.DIMMs, b.Memory.DIMMs = nil, nil
	a.Network, b.Network = nil, nil
	rep = Compare(a, b, nil)
	got := map[string]Difference{}
	for _, d := range rep.Differences {
		got[d.Path] = d
	}
	if len(got) != 2 || got["memory.dimms"].Severity != Unverified || got["network"].Severity != Unverified ||
		!got["network"].Blocking || got["network"].Reason != "both: not collected" {
		t.Errorf("unknown lists/domains: %+v", rep.Differences)
	}
}

func TestPolicyDowngrade(t *testing.T) {
	a := known(t)
	b := clone(t, a)
	b.BIOS.Version = ptr("3.2")
	pol, err := policy.Parse("p.yaml", []byte("version: 1\ndowngrade:\n  - path: bios.version\n    to: warning\n"))
	if err != nil {
		t.Fatal(err)
	}
	rep := Compare(a, b, pol)
	if len(rep.Differences) != 1 || rep.Differences[0].Severity != Warning || rep.Verdict() != Match {
		t.Errorf("downgraded: %+v, %s", rep.Differences, rep.Verdict())
	}
}

func TestRealSnapshots(t *testing.T) {
	load := func(f string) *inventory.Inventory {
		inv, err := inventory.Collect(context.Background(), inventory.Sources{Snapshot: f})
		if err != nil {
			t.Fatal(err)
		}
		return inv
	}
	x1, x2, r := load(dualXeon), load(dualXeon), load(ryzen)
	// The same ghw snapshot twice: nothing fatal, but its unknown DMI
	// fields keep the pair unverified.
	rep := Compare(x1, x2, nil)
	if f, _ := rep.Count(Fatal); f != 0 || rep.Verdict() != Mismatch {
		t.Errorf("same snapshot: %d fatal, verdict %s", f, rep.Verdict())
	}
	for _, d := range rep.Differences {
		if d.Severity != Unverified {
			t.Errorf("same snapshot: %+v", d)
		}
	}
	all, _ := policy.Parse("p.yaml", []byte("version: 1\ntolerate_unverified: ['**']\n"))
	if rep := Compare(x1, x2, all); rep.Verdict() != Match {
		t.Errorf("same snapshot, everything tolerated: %s", rep.VerdictLine())
	}
	// Xeon server against Ryzen workstation: the CPU differs, fatally.
	rep = Compare(x1, r, all)
	got := map[string]Difference{}
	for _, d := range rep.Differences {
		got[d.Path] = d
	}
	if rep.Verdict() != Mismatch || got["cpu.sockets[1]"].B != "absent" || got["cpu.sockets[0].model_name"].Severity != Fatal {
		t.Errorf("Xeon vs Ryzen: %s %+v", rep.VerdictLine(), got["cpu.sockets[1]"])
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(text.String()), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "verdict: MISMATCH") {
		t.Errorf("last line %q", last)
	}
	if !strings.Contains(text.String(), "\ncpu:\n") {
		t.Errorf("no cpu group in:\n%s", text.String())
	}
}

func TestDigest(t *testing.T) {
	a := known(t)
	da, err := Digest(a)
	if err != nil {
		t.Fatal(err)
	}
	b := clone(t, a)
	b.Source = "elsewhere"
	b.Network.NICs[0].MAC = ptr("52:54:00:12:34:56")
	b.System.Serial = ptr("OTHER")
	b.Memory.DIMMs[0].Serial = ptr("OTHER")
	b.Memory.DIMMs[0], b.Memory.DIMMs[1] = b.Memory.DIMMs[1], b.Memory.DIMMs[0]
	if db, _ := Digest(b); db != da {
		t.Errorf("digest changed with identities and order: %s vs %s", da, db)
	}
	b.BIOS.Version = ptr("3.2")
	if db, _ := Digest(b); db == da {
		t.Error("digest did not change with the BIOS version")
	}
	if !strings.HasPrefix(da, "sha256:") || len(da) != len("sha256:")+64 {
		t.Errorf("digest %q", da)
	}
	if d2, _ := Digest(a); d2 != da {
		t.Error("digest not stable")
	}
}

func TestDefaultSeverities(t *testing.T) {
	for path, want := range map[string]Severity{
		"cpu.sockets[0].microcode":            Fatal,
		"cpu.sockets[1].flags[avx512f]":       Fatal,
		"memory.dimms[A3]":                    Fatal,
		"memory.dimms[A3].serial":             Info,
		"bios.version":                        Fatal,
		"bios.release_date":                   Warning,
		"network.nics[0000:03:00.0].mac":      Info,
		"network.nics[0000:03:00.0].model":    Fatal,
		"network.nics[0000:03:00.0].driver":   Warning,
		"storage.disks[sda].size_bytes":       Fatal,
		"storage.controllers[0000:00:1f.2]":   Fatal,
		"pci.devices[0000:00:1f.2].device_id": Fatal,
		"system.uuid":                         Info,
	} {
		if got := DefaultSeverity(path); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}
}

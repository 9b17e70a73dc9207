package policy

import (
	"strings"
	"testing"
)

func TestParseAndApply(t *testing.T) {
	p, err := Parse("ok.yaml", []byte(`version: 1
tolerate_unverified:
  - bios.boot_mode
  - "memory.dimms[*].serial"
  - "network.**"
downgrade:
  - path: "network.nics[*].firmware_version"
    to: info
  - path: bios.version
    to: warning
`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"bios.boot_mode":                       true,
		"bios.version":                         false,
		"memory.dimms[P1-DIMMA1].serial":       true,
		"memory.dimms[P1-DIMMA1].part_number":  false,
		"network":                              true,
		"network.nics[0000:03:00.0].mac":       true,
		"storage.disks[sda].serial":            false,
		"memory.dimms[P1-DIMMA1].serial.extra": false,
	} {
		if got := p.Tolerates(path); got != want {
			t.Errorf("Tolerates(%s) = %v, want %v", path, got, want)
		}
	}
	if got := p.Severity("network.nics[0000:03:00.0].firmware_version", Warning); got != Info {
		t.Errorf("firmware severity %s", got)
	}
	if got := p.Severity("bios.version", Fatal); got != Warning {
		t.Errorf("bios.version severity %s", got)
	}
	if got := p.Severity("bios.vendor", Fatal); got != Fatal {
		t.Errorf("bios.vendor severity %s", got)
	}
	var nilPolicy *Policy
	if nilPolicy.Tolerates("bios.version") || nilPolicy.Severity("x", Fatal) != Fatal {
		t.Error("nil policy relaxes something")
	}
}

func TestPatterns(t *testing.T) {
	for _, c := range []struct {
		pattern, path string
		want          bool
	}{
		{"*.serial", "system.serial", true},
		{"*.serial", "memory.dimms[A1].serial", false}, // * stays in one segment
		{"**.serial", "memory.dimms[A1].serial", true},
		{"network.nics[*].driver", "network.nics[0000:03:00.0].driver", true}, // dots inside brackets
		{"network.nics[0000:03:*].driver", "network.nics[0000:03:00.0].driver", true},
		{"network.nics[0000:04:*].driver", "network.nics[0000:03:00.0].driver", false},
		{"pci.**", "pci", true},
		{"bios", "bios.version", false},
		{"cpu.sockets[0].flags[*]", "cpu.sockets[0].flags[avx2]", true},
	} {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		if got := p.Match(c.path); got != c.want {
			t.Errorf("%s matches %s = %v, want %v", c.pattern, c.path, got, c.want)
		}
	}
}

func TestErrorsNameLineAndField(t *testing.T) {
	for _, c := range []struct {
		name, doc string
		want      []string
	}{
		{"bad severity", "version: 1\ndowngrade:\n  - path: bios.version\n    to: fatl\n", []string{"bad.yaml:4:", "downgrade[0].to", `"fatl"`}},
		{"upgrade", "version: 1\ndowngrade:\n  - path: bios.version\n    to: fatal\n", []string{"bad.yaml:4:", "downgrade[0].to"}},
		{"unknown top field", "version: 1\ntolerate: [bios.version]\n", []string{"bad.yaml:2:", "tolerate", "unknown field"}},
		{"unknown entry field", "version: 1\ndowngrade:\n  - path: bios.version\n    to: info\n    why: x\n", []string{"bad.yaml:5:", "downgrade[0].why"}},
		{"missing to", "version: 1\ndowngrade:\n  - path: bios.version\n", []string{"bad.yaml:3:", "downgrade[0].to", "missing"}},
		{"bad pattern", "version: 1\ntolerate_unverified:\n  - bios.version\n  - \"memory.dimms[A1\"\n", []string{"bad.yaml:4:", "tolerate_unverified[1]", "unbalanced"}},
		{"typo in category", "version: 1\ntolerate_unverified:\n  - bois.version\n", []string{"bad.yaml:3:", "tolerate_unverified[0]", `unknown category "bois"`}},
		{"empty pattern", "version: 1\ntolerate_unverified: ['']\n", []string{"bad.yaml:2:", "tolerate_unverified[0]", "empty"}},
		{"not a list", "version: 1\ntolerate_unverified: bios.version\n", []string{"bad.yaml:2:", "tolerate_unverified", "list"}},
		{"missing version", "tolerate_unverified: [bios]\n", []string{"bad.yaml:1:", "version", "missing"}},
		{"wrong version", "version: 2\n", []string{"bad.yaml:1:", "version", `"2"`}},
		{"empty", "", []string{"bad.yaml", "empty"}},
		{"not yaml", "version: [1\n", []string{"bad.yaml"}},
		{"scalar", "just text\n", []string{"bad.yaml:1:", "mapping"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.doc))
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

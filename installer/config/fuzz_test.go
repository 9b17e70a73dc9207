package config

import (
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the loader: it must return a config or
// an error, never panic, and a parsed config must be self-consistent.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	if b, err := os.ReadFile("../../testdata/installer/install.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\nnode: auto\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte(minimal + "runtime: {timeouts: {heartbeat: 100ms, peer_dead: 1500ms, management: 1s}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(c.VirtualDisks) == 0 || c.VS.MAC == nil || c.Disk.ESPSize < MinFAT32Size {
			t.Fatalf("accepted an incomplete config: %+v", c)
		}
		_ = c.RequiredDiskBytes()
	})
}

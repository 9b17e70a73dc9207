package vdisk

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteSeedCorpus regenerates the checked-in fuzz seeds when
// FTVS_WRITE_SEEDS=1 (go test -run TestWriteSeedCorpus).
func TestWriteSeedCorpus(t *testing.T) {
	if os.Getenv("FTVS_WRITE_SEEDS") != "1" {
		t.Skip("set FTVS_WRITE_SEEDS=1 to regenerate testdata/fuzz seeds")
	}
	m := sampleMD(t)
	seeds := map[string][]byte{"valid_outdated": m.Encode()}
	m.State, m.Flags, m.Node, m.Gens = Inconsistent, 0, 1, Gens{Current: JustCreated}
	seeds["valid_new"] = m.Encode()
	torn := m.Encode()
	clear(torn[2048:])
	seeds["torn"] = torn
	bad := m.Encode()
	bad[40] = 7
	reseal(bad)
	seeds["bad_node"] = bad
	for _, dir := range []string{"FuzzDecode", "FuzzDecodeResealed"} {
		for name, b := range seeds {
			p := filepath.Join("testdata", "fuzz", dir, name)
			if err := os.WriteFile(p, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

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
	wire := map[string]string{
		"FuzzParseSumsRequest/valid":        fmt.Sprintf("[]byte(%q)\n", SumsRequest{Off: 4096, Len: 1 << 20, Region: 4096}.Marshal()),
		"FuzzParseSumsRequest/too_many":     fmt.Sprintf("[]byte(%q)\n", SumsRequest{Off: 0, Len: 1 << 40, Region: 4096}.Marshal()),
		"FuzzParseSumsReply/valid":          fmt.Sprintf("[]byte(%q)\nint64(2)\n", marshalSums([]Sum{{1}, {2}})),
		"FuzzParseSumsReply/error":          fmt.Sprintf("[]byte(%q)\nint64(1)\n", marshalSumsError(fmt.Errorf("read error"))),
		"FuzzParseSumsReply/count_mismatch": fmt.Sprintf("[]byte(%q)\nint64(3)\n", marshalSums([]Sum{{1}})),
	}
	for name, body := range wire {
		p := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("go test fuzz v1\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, dir := range []string{"FuzzDecode", "FuzzDecodeResealed"} {
		for name, b := range seeds {
			p := filepath.Join("testdata", "fuzz", dir, name)
			if err := os.WriteFile(p, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

package layout

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzInspect feeds arbitrary disk heads to the in-use check: it reads,
// reports or not, and never panics.
func FuzzInspect(f *testing.F) {
	gpt := make([]byte, 1024)
	copy(gpt[512:], "EFI PART")
	f.Add(gpt)
	mbr := make([]byte, 512)
	mbr[510], mbr[511], mbr[446+4], mbr[446+12] = 0x55, 0xaa, 0x83, 1
	f.Add(mbr)
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, head []byte) {
		p := filepath.Join(dir, "d.img")
		if err := os.WriteFile(p, head, 0o600); err != nil {
			t.Skip()
		}
		sigs, err := Inspect(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sigs {
			if s.What == "" || s.Offset < 0 {
				t.Fatalf("bad signature %+v", s)
			}
		}
	})
}

func TestInspectFindsSignatures(t *testing.T) {
	dir := t.TempDir()
	for name, head := range map[string][]byte{
		"GPT partition table": func() []byte { b := make([]byte, 1024); copy(b[512:], "EFI PART"); return b }(),
		"DOS (MBR) partition table": func() []byte {
			b := make([]byte, 512)
			b[510], b[511], b[446+4], b[446+12] = 0x55, 0xaa, 0x83, 1
			return b
		}(),
		"ext2/3/4 filesystem": func() []byte { b := make([]byte, 2048); b[1080], b[1081] = 0x53, 0xef; return b }(),
		"swap space":          func() []byte { b := make([]byte, 4096); copy(b[4086:], "SWAPSPACE2"); return b }(),
		"LVM physical volume": func() []byte { b := make([]byte, 1024); copy(b[536:], "LVM2 001"); return b }(),
	} {
		p := filepath.Join(dir, "x")
		os.WriteFile(p, head, 0o600)
		sigs, err := Inspect(p)
		if err != nil || len(sigs) != 1 || sigs[0].What != name {
			t.Errorf("%s: %v %v", name, sigs, err)
		}
	}
	p := filepath.Join(dir, "zero")
	os.WriteFile(p, make([]byte, 1<<20), 0o600)
	if sigs, _ := Inspect(p); len(sigs) != 0 {
		t.Errorf("zeroes: %v", sigs)
	}
}

package vbootdisk

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ftvs/ftvs/ftvs/blockdev"
)

// tinyImage builds a small FAT32 volume by hand (512-byte sectors and
// clusters, one FAT sector, 126 clusters: 80 KiB) with a few files and
// directories written by the store, as a fuzzing seed.
func tinyImage(t testing.TB) []byte {
	const total = 32 + 2 + 126
	m, err := blockdev.NewMem(total*512, 512)
	if err != nil {
		t.Fatal(err)
	}
	b := m.Bytes()
	copy(b[0:], []byte{0xeb, 0x58, 0x90})
	copy(b[3:], "mkfs.fat")
	binary.LittleEndian.PutUint16(b[11:], 512)
	b[13] = 1
	binary.LittleEndian.PutUint16(b[14:], 32)
	b[16] = 2
	b[21] = 0xf8
	binary.LittleEndian.PutUint32(b[32:], total)
	binary.LittleEndian.PutUint32(b[36:], 1)
	binary.LittleEndian.PutUint32(b[44:], 2)
	binary.LittleEndian.PutUint16(b[48:], 1)
	binary.LittleEndian.PutUint16(b[50:], 6)
	b[66] = 0x29
	copy(b[71:], "TINY       FAT32   ")
	b[510], b[511] = 0x55, 0xaa
	copy(b[6*512:], b[:512])
	for _, s := range []int{1, 7} {
		fi := b[s*512:]
		copy(fi, "RRaA")
		copy(fi[484:], "rrAa")
		fi[510], fi[511] = 0x55, 0xaa
	}
	for _, fat := range []int{32, 33} {
		f := b[fat*512:]
		binary.LittleEndian.PutUint32(f[0:], 0x0ffffff8)
		binary.LittleEndian.PutUint32(f[4:], 0x0fffffff)
		binary.LittleEndian.PutUint32(f[8:], 0x0fffffff)
	}
	s, err := Open(m)
	if err != nil {
		t.Fatal(err)
	}
	steps := []error{
		s.Mkdir("Docs", t0),
		s.Create("Docs/a long name.html", t0),
		s.Create("README.TXT", t0),
		s.Mkdir("docs/sub", t0),
	}
	_, err = s.WriteAt("Docs/a long name.html", pattern(1500, 1), 0, t0)
	steps = append(steps, err)
	_, err = s.WriteAt("README.TXT", []byte("hello"), 0, t0)
	steps = append(steps, err, s.Rename("README.TXT", "docs/sub/readme.txt", t0))
	for _, err := range steps {
		if err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// FuzzOpen feeds arbitrary disk contents to Open and then walks the tree:
// errors are fine, panics and hangs are not. The seed is an 80 KiB volume:
// run with -fuzzminimizetime=0, or the engine spends its time minimizing.
func FuzzOpen(f *testing.F) {
	img := tinyImage(f)
	f.Add(img)
	f.Add(img[:512])
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		m, err := blockdev.NewMem(256<<10, 512)
		if err != nil {
			t.Fatal(err)
		}
		copy(m.Bytes(), data)
		s, err := Open(m)
		if err != nil {
			return
		}
		budget := 200
		walk(s, "", &budget)
		// Changes on whatever was accepted must not panic either.
		_ = s.Create("new file.txt", t0)
		_, _ = s.WriteAt("new file.txt", []byte("data"), 600, t0)
		_ = s.Mkdir("NEWDIR", t0)
		_ = s.Rename("new file.txt", "NEWDIR/x", t0)
		budget = 200
		walk(s, "", &budget)
	})
}

// walk visits the tree within a budget of calls (a corrupt directory may
// contain itself).
func walk(s *Store, dir string, budget *int) {
	*budget--
	list, err := s.ReadDir(dir)
	if err != nil {
		return
	}
	buf := make([]byte, 4096)
	for _, fi := range list {
		if *budget--; *budget <= 0 {
			return
		}
		p := dir + "/" + fi.Name
		if fi.Dir {
			walk(s, p, budget)
		} else {
			_, _ = s.ReadAt(p, buf, 0)
		}
	}
}

// FuzzDirSlots decodes arbitrary directory bytes: every decoded entry's
// name is valid and its short entry re-encodes to the bytes it came from.
func FuzzDirSlots(f *testing.F) {
	img := tinyImage(f)
	root := img[(32+2)*512 : (32+3)*512]
	f.Add(root)
	f.Add(img[(32+3)*512 : (32+5)*512])
	f.Fuzz(func(t *testing.T, data []byte) {
		var st lfnState
		for i := 0; i+slotSize <= len(data); i += slotSize {
			var e entry
			raw := data[i : i+slotSize]
			if decodeSlot(&st, raw, uint32(i/slotSize), &e) != slotEntry {
				continue
			}
			if e.name == "" {
				t.Fatalf("slot %d: empty name", i/slotSize)
			}
			var out [slotSize]byte
			e.encodeShort(out[:])
			if !bytes.Equal(out[:], raw) {
				t.Fatalf("slot %d: re-encoded %x, read %x", i/slotSize, out, raw)
			}
			if e.slot > uint32(i/slotSize) || e.slot+e.slots-1 != uint32(i/slotSize) {
				t.Fatalf("slot %d: entry claims slots %d+%d", i/slotSize, e.slot, e.slots)
			}
		}
	})
}

// FuzzNames creates a file under any name the store accepts: it must be
// listed under exactly that name and found by it, and its short name must
// not clash with another entry's.
func FuzzNames(f *testing.F) {
	img := tinyImage(f)
	for _, n := range []string{"index.html", "README", "Mixed.Case", "a b c.tar.gz", ".hidden", "ünï", "x~1", "DOCS", "a..b", "CON", "日本語のファイル名.txt", "abcdefghi.jklm"} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if checkName(name) != nil {
			return
		}
		m, err := blockdev.NewMem(int64(len(img)), 512)
		if err != nil {
			t.Fatal(err)
		}
		copy(m.Bytes(), img)
		s, err := Open(m)
		if err != nil {
			t.Fatal(err)
		}
		existed := false
		if _, err := s.Stat(name); err == nil {
			existed = true // matches a seed entry (long or short name)
		}
		if err := s.Create(name, t0); err != nil {
			if existed {
				return // e.g. the seed directory "Docs"
			}
			t.Fatalf("Create(%q): %v", name, err)
		}
		fi, err := s.Stat(name)
		if err != nil {
			t.Fatalf("Stat(%q) after Create: %v", name, err)
		}
		if !existed && fi.Name != name {
			t.Fatalf("created %q, Stat names it %q", name, fi.Name)
		}
		list, err := s.ReadDir("")
		if err != nil {
			t.Fatal(err)
		}
		shorts := map[[11]byte]bool{}
		err = s.scanDir(s.g.rootCluster, func(e *entry) bool {
			if shorts[e.short] {
				t.Errorf("short name %q used twice", e.short)
			}
			shorts[e.short] = true
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, fi := range list {
			found = found || sameName(fi.Name, name)
		}
		if !found {
			t.Fatalf("%q not listed: %+v", name, list)
		}
	})
}

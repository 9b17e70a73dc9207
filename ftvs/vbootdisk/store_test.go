package vbootdisk

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/ftvs/ftvs/ftvs/fsapi"
)

const t0 = 1_764_000_000 // 2025-11-24, the virtual clock's start in these tests

// workload is one fixed sequence of changes; every step takes its time
// from the step number, like the machine's virtual time.
func workload(t *testing.T, s *Store, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		now := int64(t0 + 7*i)
		var err error
		switch i % 10 {
		case 0:
			err = s.Mkdir(fmt.Sprintf("dir%d", i), now)
		case 1:
			err = s.Create(fmt.Sprintf("dir%d/A long file name %d.data", i-1, i), now)
		case 2:
			_, err = s.WriteAt(fmt.Sprintf("dir%d/A long file name %d.data", i-2, i-1), pattern(70_000+i*113, byte(i)), 0, now)
		case 3:
			err = s.Create(fmt.Sprintf("f%d.txt", i), now)
		case 4:
			_, err = s.WriteAt(fmt.Sprintf("f%d.txt", i-1), pattern(5000, byte(i)), 12345, now)
		case 5:
			err = s.Rename(fmt.Sprintf("f%d.txt", i-2), fmt.Sprintf("dir%d/moved-%d.TXT", i-5, i), now)
		case 6:
			err = s.Truncate(fmt.Sprintf("dir%d/A long file name %d.data", i-6, i-5), 3000, now)
		case 7:
			if i >= 17 {
				err = s.Remove(fmt.Sprintf("dir%d/moved-%d.TXT", i-17, i-12), now)
			}
		case 8:
			err = s.Create(fmt.Sprintf("dir%d/sub~%d.tar.gz", i-8, i), now)
		case 9:
			if i >= 29 {
				err = s.Rename(fmt.Sprintf("dir%d", i-29), fmt.Sprintf("dir%d/old-%d", i-9, i), now)
			}
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
}

func TestDeterministicAcrossDisksAndGOMAXPROCS(t *testing.T) {
	base := mkfsDisk(t, 48)
	var images [][]byte
	for _, procs := range []int{1, 4} {
		old := runtime.GOMAXPROCS(procs)
		for copyN := 0; copyN < 2; copyN++ {
			d := cloneDisk(t, base)
			workload(t, open(t, d), 0, 60)
			images = append(images, d.Bytes())
		}
		runtime.GOMAXPROCS(old)
	}
	for i := 1; i < len(images); i++ {
		if !bytes.Equal(images[0], images[i]) {
			t.Fatalf("run %d left different disk bytes than run 0", i)
		}
	}
	if bytes.Equal(images[0], base.Bytes()) {
		t.Fatal("workload changed nothing")
	}
}

// A store opened afresh mid-sequence (as after a snapshot restore or on a
// reintegrated CoServer) continues exactly like the one that ran through.
func TestReopenMidSequence(t *testing.T) {
	base := mkfsDisk(t, 48)
	a, b := cloneDisk(t, base), cloneDisk(t, base)
	sa := open(t, a)
	workload(t, sa, 0, 60)
	sb := open(t, b)
	workload(t, sb, 0, 23)
	workload(t, open(t, b), 23, 41) // rebuilt from the disk
	mid := cloneDisk(t, b)          // a copy handed over mid-sequence
	// A store whose disk is overwritten under it (resync) and reloaded.
	other := cloneDisk(t, base)
	so := open(t, other)
	workload(t, so, 0, 5)
	copy(other.Bytes(), mid.Bytes())
	if err := so.Reload(); err != nil {
		t.Fatal(err)
	}
	workload(t, so, 41, 60)
	workload(t, open(t, b), 41, 60)
	workload(t, open(t, mid), 41, 60)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("reopened store left different bytes")
	}
	if !bytes.Equal(a.Bytes(), other.Bytes()) {
		t.Fatal("reloaded store left different bytes")
	}
	if !bytes.Equal(a.Bytes(), mid.Bytes()) {
		t.Fatal("store on a disk copied mid-sequence left different bytes")
	}
	fsck(t, a)
	checkFSInfo(t, a)
}

func TestReadBackByGoDiskfsAndMtools(t *testing.T) {
	d := mkfsDisk(t, 48)
	s := open(t, d)
	want := map[string][]byte{
		"/INDEX.HTM":                 []byte("<h1>hi</h1>"),
		"/readme.txt":                []byte("lower case 8.3"),
		"/www/Mixed Case Name.html":  pattern(100_000, 1),
		"/www/deep/ünïcode-name.bin": pattern(4097, 2),
		"/www/deep/empty":            nil,
		"/cfg/a very long name that needs several long-name slots to hold it.conf": pattern(777, 3),
	}
	for _, dir := range []string{"www", "www/deep", "cfg"} {
		if err := s.Mkdir(dir, t0); err != nil {
			t.Fatal(err)
		}
	}
	for name, data := range want {
		if err := s.Create(name, t0+60); err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(data); off += 8192 {
			end := min(off+8192, len(data))
			if _, err := s.WriteAt(name, data[off:end], int64(off), t0+120); err != nil {
				t.Fatal(err)
			}
		}
	}
	fsck(t, d)
	img := saveDisk(t, d)

	st, err := file.OpenFromPath(img, true)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := fat32.Read(st, d.Size(), 0, 512)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range want {
		if len(data) == 0 {
			// go-diskfs v1.9.4 cannot open a file without clusters
			// (first cluster 0, as the FAT spec, mtools and Linux write
			// empty files); mtools reads it below.
			continue
		}
		f, err := fs.OpenFile(name, os.O_RDONLY)
		if err != nil {
			t.Fatalf("go-diskfs open %s: %v", name, err)
		}
		// One read of the exact size: go-diskfs v1.9.4 reads past the end
		// when a read starts inside a cluster (io.ReadAll's chunks).
		got := make([]byte, len(data))
		n, err := f.Read(got)
		got = got[:n]
		if err != nil && err != io.EOF {
			t.Fatalf("go-diskfs read %s: %v", name, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("go-diskfs reads %s as %d bytes, want %d", name, len(got), len(data))
		}
		fi, err := f.Stat()
		if err == nil && fi.ModTime().Unix() != t0+120 {
			t.Errorf("go-diskfs: %s mtime %v, want %d", name, fi.ModTime(), t0+120)
		}
	}
	mcopy := need(t, "mcopy")
	for name, data := range want {
		out, err := exec.Command(mcopy, "-n", "-i", img, "::"+name, "-").Output()
		if err != nil {
			t.Fatalf("mcopy %s: %v", name, err)
		}
		if !bytes.Equal(out, data) {
			t.Errorf("mtools reads %s as %d bytes, want %d", name, len(out), len(data))
		}
	}
	list, err := s.ReadDir("/www")
	if err != nil || len(list) != 2 || list[0].Name != "Mixed Case Name.html" || !list[1].Dir {
		t.Fatalf("ReadDir /www = %+v, %v", list, err)
	}
	fi, err := s.Stat("www/Mixed Case Name.html")
	if err != nil || fi.Size != 100_000 || fi.ModTime != t0+120 {
		t.Fatalf("Stat = %+v, %v", fi, err)
	}
}

func TestReadsWhatMtoolsWrote(t *testing.T) {
	d := mkfsDisk(t, 48)
	img := saveDisk(t, d)
	dir := t.TempDir()
	files := map[string][]byte{
		"hello.txt":                       []byte("hello\n"),
		"Some Long Mixed Name.dat":        pattern(300_000, 9),
		"sub/nested file with spaces.bin": pattern(513, 4),
	}
	run := func(args ...string) {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	run(need(t, "mmd"), "-i", img, "::/sub")
	for name, data := range files {
		local := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
		if err := os.WriteFile(local, data, 0o600); err != nil {
			t.Fatal(err)
		}
		run(need(t, "mcopy"), "-i", img, local, "::/"+name)
	}
	s := open(t, loadDisk(t, img))
	for name, data := range files {
		got := make([]byte, len(data)+10)
		n, err := s.ReadAt(name, got, 0)
		if err != io.EOF || !bytes.Equal(got[:n], data) {
			t.Errorf("%s: read %d bytes (%v), want %d", name, n, err, len(data))
		}
	}
	if _, err := s.Stat("HELLO.TXT"); err != nil {
		t.Errorf("case-insensitive lookup: %v", err)
	}
}

func TestBigFileStreamed(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	d := mkfsDisk(t, 160)
	s := open(t, d)
	const size = 110 << 20
	const chunk = 256 << 10
	if err := s.Create("big.bin", t0); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, chunk)
	for off := 0; off < size; off += chunk {
		for i := range buf {
			buf[i] = byte(off/chunk + i)
		}
		if _, err := s.WriteAt("big.bin", buf, int64(off), t0); err != nil {
			t.Fatal(err)
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	got := make([]byte, chunk)
	for off := 0; off < size; off += chunk {
		n, err := s.ReadAt("big.bin", got, int64(off))
		if n != chunk || (err != nil && err != io.EOF) {
			t.Fatalf("read at %d: %d, %v", off, n, err)
		}
		if got[0] != byte(off/chunk) || got[chunk-1] != byte(off/chunk+chunk-1) {
			t.Fatalf("wrong data at %d", off)
		}
	}
	runtime.ReadMemStats(&ms)
	if alloc := ms.TotalAlloc - before; alloc > 16<<20 {
		t.Errorf("streaming %d MiB allocated %d bytes: not bounded", size>>20, alloc)
	}
	fsck(t, d)
}

func TestErrors(t *testing.T) {
	d := mkfsDisk(t, 40)
	s := open(t, d)
	for _, c := range []struct {
		name string
		err  error
		do   func() error
	}{
		{"missing", fsapi.ErrNotExist, func() error { _, err := s.Stat("nope"); return err }},
		{"escape", fsapi.ErrInvalid, func() error { _, err := s.Stat("../x"); return err }},
		{"bad char", fsapi.ErrInvalid, func() error { return s.Create("a:b", t0) }},
		{"trailing dot", fsapi.ErrInvalid, func() error { return s.Create("a.", t0) }},
		{"too long", fsapi.ErrInvalid, func() error { return s.Create(strings.Repeat("x", 256), t0) }},
		{"root", fsapi.ErrInvalid, func() error { return s.Mkdir("/", t0) }},
		{"write dir", fsapi.ErrIsDir, func() error { _, err := s.WriteAt("", []byte("x"), 0, t0); return err }},
		{"not dir", fsapi.ErrNotDir, func() error {
			if err := s.Create("plain", t0); err != nil {
				return err
			}
			return s.Create("plain/x", t0)
		}},
		{"exists", fsapi.ErrExist, func() error { return s.Mkdir("plain", t0) }},
		{"not empty", fsapi.ErrNotEmpty, func() error {
			if err := s.Mkdir("d", t0); err != nil {
				return err
			}
			if err := s.Create("d/f", t0); err != nil {
				return err
			}
			return s.Rmdir("d", t0)
		}},
		{"into itself", fsapi.ErrInvalid, func() error { return s.Rename("d", "d/e", t0) }},
		{"too large", ErrTooLarge, func() error { _, err := s.WriteAt("plain", []byte("x"), 1<<32, t0); return err }},
	} {
		if err := c.do(); !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.err)
		}
	}

	// Disk full: a refused write changes nothing.
	if err := s.Create("fill", t0); err != nil {
		t.Fatal(err)
	}
	free := s.FreeBytes()
	before := append([]byte(nil), d.Bytes()...)
	if _, err := s.WriteAt("fill", []byte("x"), free+s.ClusterSize(), t0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write past free space: %v", err)
	}
	if !bytes.Equal(before, d.Bytes()) {
		t.Fatal("refused write changed the disk")
	}
	if _, err := s.WriteAt("fill", []byte("x"), free-1, t0); err != nil {
		t.Fatalf("write filling the disk: %v", err)
	}
	if err := s.Create("one-more-long-name.txt", t0); err != nil {
		t.Fatalf("create on a full disk (no cluster needed): %v", err)
	}
	if err := s.Mkdir("nospace", t0); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("mkdir on a full disk: %v", err)
	}
	fsck(t, d)
}

func TestCorruptDisks(t *testing.T) {
	base := mkfsDisk(t, 40)
	s := open(t, base)
	if err := s.Create("f", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteAt("f", pattern(10_000, 1), 0, t0); err != nil {
		t.Fatal(err)
	}
	g := s.g
	for _, c := range []struct {
		name, want string
		mut        func(b []byte)
		readFile   bool
	}{
		{"no signature", "signature", func(b []byte) { b[510] = 0 }, false},
		{"zero sector size", "bytes per sector", func(b []byte) { b[11], b[12] = 0, 0 }, false},
		{"cluster size", "sectors per cluster 3", func(b []byte) { b[13] = 3 }, false},
		{"FAT16", "root entry count", func(b []byte) { b[17] = 0x00; b[18] = 2 }, false},
		{"too big", "larger than", func(b []byte) { b[35] = 0x7f }, false},
		{"small FAT", "FAT is too small", func(b []byte) { b[36], b[37], b[38], b[39] = 1, 0, 0, 0 }, false},
		{"root loop", "loops", func(b []byte) {
			o := g.fatStart + int64(g.rootCluster)*4
			b[o], b[o+1], b[o+2], b[o+3] = byte(g.rootCluster), byte(g.rootCluster>>8), 0, 0
		}, false},
		{"file chain out of range", "outside", func(b []byte) {
			// f's first cluster is the lowest allocated after the root.
			o := g.fatStart + int64(g.rootCluster+1)*4
			b[o], b[o+1], b[o+2], b[o+3] = 0xfe, 0xff, 0xff, 0x0e
		}, true},
	} {
		d := cloneDisk(t, base)
		c.mut(d.Bytes())
		st, err := Open(d)
		if err == nil && c.readFile {
			_, err = st.ReadAt("f", make([]byte, 10_000), 0)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want ErrCorrupt mentioning %q", c.name, err, c.want)
		}
	}
}

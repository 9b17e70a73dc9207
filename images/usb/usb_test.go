package usb

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/partition/gpt"

	"github.com/ftvs/ftvs/images/esp"
)

func TestLayoutReadBack(t *testing.T) {
	dir := t.TempDir()
	ukiData := make([]byte, 5<<20+123)
	rand.Read(ukiData)
	ukiPath := filepath.Join(dir, "ftvs.efi")
	conf := filepath.Join(dir, "install.conf")
	os.WriteFile(ukiPath, ukiData, 0o644)
	os.WriteFile(conf, []byte("mode: unattended\n"), 0o644)
	img := filepath.Join(dir, "usb.img")
	if err := Build(Options{UKI: ukiPath, Config: conf, Out: img}); err != nil {
		t.Fatal(err)
	}

	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		t.Fatal(err)
	}
	table, ok := pt.(*gpt.Table)
	if !ok {
		t.Fatalf("partition table is %T, want GPT", pt)
	}
	if !table.ProtectiveMBR {
		t.Error("no protective MBR")
	}
	var parts []*gpt.Partition
	for _, p := range table.Partitions {
		if p != nil && p.Type != gpt.Unused {
			parts = append(parts, p)
		}
	}
	if len(parts) != 1 || parts[0].Type != gpt.EFISystemPartition || parts[0].Start != firstLBA {
		t.Fatalf("partitions = %+v, want one ESP at LBA %d", parts, firstLBA)
	}
	espMiB := int64(parts[0].End-parts[0].Start+1) / sectorsMiB
	if espMiB < esp.MinMiB || espMiB == 64 || espMiB == 129 || espMiB == 259 {
		t.Errorf("ESP is %d MiB", espMiB)
	}
	fs, err := d.GetFilesystem(1)
	if err != nil {
		t.Fatal(err)
	}
	if fs.Type() != filesystem.TypeFat32 || strings.TrimSpace(fs.Label()) != Label {
		t.Errorf("ESP is type %v label %q, want FAT32 %q", fs.Type(), fs.Label(), Label)
	}
	for path, want := range map[string][]byte{esp.BootPath: ukiData, esp.ConfigPath: []byte("mode: unattended\n")} {
		f, err := fs.OpenFile(path, os.O_RDONLY)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes read back, want %d identical bytes", path, len(got), len(want))
		}
	}

	if sgdisk, err := exec.LookPath("sgdisk"); err == nil {
		out, err := exec.Command(sgdisk, "-v", img).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "No problems found") {
			t.Errorf("sgdisk -v: %v\n%s", err, out)
		}
	} else {
		t.Log("sgdisk not installed (Debian package gdisk): GPT not cross-checked")
	}
	if fsck, err := exec.LookPath("fsck.fat"); err == nil {
		part := filepath.Join(dir, "esp.img")
		extract(t, img, part, int64(parts[0].Start)*sector, espMiB<<20)
		if out, err := exec.Command(fsck, "-n", part).CombinedOutput(); err != nil {
			t.Errorf("fsck.fat -n on the ESP: %v\n%s", err, out)
		}
	} else {
		t.Log("fsck.fat not installed (Debian package dosfstools): FAT not cross-checked")
	}
}

func extract(t *testing.T, img, out string, off, n int64) {
	t.Helper()
	in, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	o, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(o, io.NewSectionReader(in, off, n)); err != nil {
		t.Fatal(err)
	}
	o.Close()
}

func TestBadInputsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	uki := filepath.Join(dir, "ftvs.efi")
	os.WriteFile(uki, []byte("x"), 0o644)
	cases := []struct {
		o    Options
		want string
	}{
		{Options{UKI: filepath.Join(dir, "missing.efi"), Out: filepath.Join(dir, "a.img")}, "missing.efi"},
		{Options{UKI: uki, Config: filepath.Join(dir, "nope.conf"), Out: filepath.Join(dir, "b.img")}, "nope.conf"},
	}
	for _, c := range cases {
		err := Build(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Build(%+v) = %v, want error naming %s", c.o, err, c.want)
		}
		if _, err := os.Stat(c.o.Out); err == nil {
			t.Errorf("%s written despite the error", c.o.Out)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("leftovers in %s: %v", dir, ents)
	}
}

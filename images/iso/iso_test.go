package iso

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/ftvs/ftvs/images/esp"
)

func inputs(t *testing.T) (Options, map[string][]byte) {
	t.Helper()
	for _, p := range []string{DefaultIsolinux, DefaultLdlinux} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s missing (Debian packages isolinux, syslinux-common)", p)
		}
	}
	dir := t.TempDir()
	data := map[string][]byte{}
	mk := func(name string, n int) string {
		b := make([]byte, n)
		rand.Read(b)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		data[name] = b
		return p
	}
	o := Options{
		UKI:     mk("ftvs.efi", 3<<20),
		Vmlinuz: mk("vmlinuz", 2<<20),
		Initrd:  mk("initrd", 4<<20+7),
		Cmdline: "console=ttyS0 quiet",
		Config:  mk("install.conf", 100),
		Out:     filepath.Join(dir, "ftvs.iso"),
	}
	return o, data
}

func TestStructureReadBack(t *testing.T) {
	o, data := inputs(t)
	if err := Build(o); err != nil {
		t.Fatal(err)
	}
	d, err := diskfs.Open(o.Out, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.LogicalBlocksize = 2048
	fs, err := d.GetFilesystem(0)
	if err != nil {
		t.Fatal(err)
	}
	isolinux, _ := os.ReadFile(DefaultIsolinux)
	for path, want := range map[string][]byte{
		Vmlinuz:     data["vmlinuz"],
		Initrd:      data["initrd"],
		ConfigPath:  data["install.conf"],
		IsolinuxCfg: []byte(IsolinuxConfig(o.Cmdline)),
	} {
		f, err := fs.OpenFile(path, os.O_RDONLY)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, _ := io.ReadAll(f)
		if !bytes.Equal(got, want) {
			t.Errorf("%s: read back %d bytes, want %d identical", path, len(got), len(want))
		}
	}
	if !strings.Contains(IsolinuxConfig(o.Cmdline), "APPEND initrd=/boot/initrd.img console=ttyS0 quiet") {
		t.Errorf("isolinux.cfg: %s", IsolinuxConfig(o.Cmdline))
	}

	raw, err := os.ReadFile(o.Out)
	if err != nil {
		t.Fatal(err)
	}
	sector := func(lba uint32) []byte { return raw[int(lba)*2048 : int(lba+1)*2048] }
	// Boot record volume descriptor at sector 17.
	brvd := sector(17)
	if brvd[0] != 0 || string(brvd[1:6]) != "CD001" || !strings.HasPrefix(string(brvd[7:]), "EL TORITO SPECIFICATION") {
		t.Fatal("no El Torito boot record at sector 17")
	}
	cat := sector(binary.LittleEndian.Uint32(brvd[0x47:]))
	// Validation entry, default (BIOS) entry, section header (EFI), entry.
	if cat[0] != 1 || cat[1] != 0 || cat[0x1e] != 0x55 || cat[0x1f] != 0xaa {
		t.Fatalf("bad validation entry % x", cat[:32])
	}
	def := cat[32:64]
	if def[0] != 0x88 || def[1] != 0 {
		t.Fatalf("default entry not bootable no-emulation: % x", def)
	}
	if n := binary.LittleEndian.Uint16(def[6:]); n != 4 {
		t.Errorf("BIOS load size %d sectors, want 4", n)
	}
	biosLBA := binary.LittleEndian.Uint32(def[8:])
	bin := raw[int(biosLBA)*2048 : int(biosLBA)*2048+len(isolinux)]
	// isolinux.bin with a boot info table (bytes 8..63) patched in.
	if !bytes.Equal(bin[:8], isolinux[:8]) || !bytes.Equal(bin[64:], isolinux[64:]) {
		t.Error("BIOS entry does not point at isolinux.bin")
	}
	if pvd := binary.LittleEndian.Uint32(bin[8:]); pvd != 16 {
		t.Errorf("boot info table: PVD at %d, want 16", pvd)
	}
	if loc := binary.LittleEndian.Uint32(bin[12:]); loc != biosLBA {
		t.Errorf("boot info table: file at %d, entry says %d", loc, biosLBA)
	}
	sec := cat[64:96]
	if (sec[0] != 0x90 && sec[0] != 0x91) || sec[1] != 0xef {
		t.Fatalf("no EFI section header: % x", sec)
	}
	efiEnt := cat[96:128]
	if efiEnt[0] != 0x88 || efiEnt[1] != 0 {
		t.Fatalf("EFI entry not bootable no-emulation: % x", efiEnt)
	}
	efiLBA := binary.LittleEndian.Uint32(efiEnt[8:])
	bootSector := raw[int(efiLBA)*2048 : int(efiLBA)*2048+512]
	if string(bootSector[82:87]) != "FAT32" {
		t.Fatalf("EFI entry does not point at a FAT32 image")
	}

	// isohybrid: MBR boot code, isolinux.bin's LBA in 512-byte sectors, an
	// active partition over the whole (cylinder-padded) image and an ESP
	// over the EFI image.
	mbr := raw[:512]
	code, _ := os.ReadFile(DefaultHybridMBR)
	if !bytes.Equal(mbr[:432], code[:432]) || mbr[510] != 0x55 || mbr[511] != 0xaa {
		t.Fatal("no isohybrid MBR in sector 0")
	}
	if got := binary.LittleEndian.Uint32(mbr[432:]); got != biosLBA*4 {
		t.Errorf("MBR points at sector %d, isolinux.bin is at %d", got, biosLBA*4)
	}
	if len(raw)%(1<<20) != 0 {
		t.Errorf("image is %d bytes, not whole 1 MiB cylinders", len(raw))
	}
	p1, p2 := mbr[446:462], mbr[462:478]
	if p1[0] != 0x80 || p1[4] != 0x17 || binary.LittleEndian.Uint32(p1[8:]) != 0 || int(binary.LittleEndian.Uint32(p1[12:]))*512 != len(raw) {
		t.Errorf("partition 1 is not the active whole image: % x", p1)
	}
	if p2[4] != 0xef || binary.LittleEndian.Uint32(p2[8:]) != efiLBA*4 || binary.LittleEndian.Uint32(p2[12:]) == 0 {
		t.Errorf("partition 2 is not an ESP over the EFI image at %d: % x", efiLBA*4, p2)
	}
	if sfdisk, err := exec.LookPath("sfdisk"); err == nil {
		out, err := exec.Command(sfdisk, "--dump", o.Out).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "type=ef") || !strings.Contains(string(out), "bootable") {
			t.Errorf("sfdisk --dump does not see the hybrid partitions: %v\n%s", err, out)
		}
	}

	// The EFI image holds the UKI at the removable-media path and passes fsck.
	f, err := fs.OpenFile(EFIImage, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	efiImg, _ := io.ReadAll(f)
	efiPath := filepath.Join(t.TempDir(), "efi.img")
	os.WriteFile(efiPath, efiImg, 0o644)
	ed, err := diskfs.Open(efiPath, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer ed.Close()
	efs, err := ed.GetFilesystem(0)
	if err != nil {
		t.Fatal(err)
	}
	uf, err := efs.OpenFile(esp.BootPath, os.O_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(uf); !bytes.Equal(got, data["ftvs.efi"]) {
		t.Errorf("UKI in the EFI image: %d bytes, want %d identical", len(got), len(data["ftvs.efi"]))
	}
	if fsck, err := exec.LookPath("fsck.fat"); err == nil {
		if out, err := exec.Command(fsck, "-n", efiPath).CombinedOutput(); err != nil {
			t.Errorf("fsck.fat -n on the EFI image: %v\n%s", err, out)
		}
	}
}

func TestBadInputsWriteNothing(t *testing.T) {
	o, _ := inputs(t)
	dir := filepath.Dir(o.Out)
	bad := o
	bad.Vmlinuz = filepath.Join(dir, "no-kernel")
	if err := Build(bad); err == nil || !strings.Contains(err.Error(), "kernel") || !strings.Contains(err.Error(), "no-kernel") {
		t.Errorf("missing kernel: %v", err)
	}
	bad = o
	bad.Config = filepath.Join(dir, "no.conf")
	if err := Build(bad); err == nil || !strings.Contains(err.Error(), "no.conf") {
		t.Errorf("missing config: %v", err)
	}
	bad = o
	bad.Isolinux = filepath.Join(dir, "isolinux.bin")
	if err := Build(bad); err == nil || !strings.Contains(err.Error(), "isolinux") {
		t.Errorf("missing isolinux: %v", err)
	}
	if _, err := os.Stat(o.Out); err == nil {
		t.Error("ISO written despite errors")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".iso-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

// TestHybridRefusesNonISO: the isohybrid step reads the boot catalog before
// it changes anything, so a file that is not our ISO is left as it was.
func TestHybridRefusesNonISO(t *testing.T) {
	if _, err := os.Stat(DefaultHybridMBR); err != nil {
		t.Skipf("%s missing (Debian package isolinux)", DefaultHybridMBR)
	}
	p := filepath.Join(t.TempDir(), "not.iso")
	junk := bytes.Repeat([]byte{0xA5}, 40*2048)
	if err := os.WriteFile(p, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	err := makeHybrid(p, DefaultHybridMBR, 1<<20)
	if err == nil || !strings.Contains(err.Error(), "El Torito") {
		t.Fatalf("makeHybrid on junk: %v, want an El Torito error", err)
	}
	if got, _ := os.ReadFile(p); !bytes.Equal(got, junk) {
		t.Error("the refused file was changed")
	}
}

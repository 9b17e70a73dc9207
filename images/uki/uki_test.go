package uki

import (
	"bytes"
	"context"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSectionsAdded(t *testing.T) {
	if _, err := os.Stat(DefaultStub); err != nil {
		t.Skip("systemd EFI stub missing (Debian package systemd-boot-efi)")
	}
	if _, err := exec.LookPath("objcopy"); err != nil {
		t.Skip("objcopy missing (Debian package binutils)")
	}
	dir := t.TempDir()
	kernel := bytes.Repeat([]byte("K"), 3<<20+5)
	initrd := bytes.Repeat([]byte("I"), 5<<20+3)
	os.WriteFile(filepath.Join(dir, "vmlinuz"), kernel, 0o644)
	os.WriteFile(filepath.Join(dir, "initrd"), initrd, 0o644)
	out := filepath.Join(dir, "ftvs.efi")
	cmdline := "console=ttyS0 ftvs.config=tftp://10.0.2.2/x"
	if err := Build(context.Background(), Options{Vmlinuz: filepath.Join(dir, "vmlinuz"), Initrd: filepath.Join(dir, "initrd"), Cmdline: cmdline, Out: out}); err != nil {
		t.Fatal(err)
	}
	f, err := pe.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want := map[string][]byte{".cmdline": []byte(cmdline + "\x00"), ".linux": kernel, ".initrd": initrd}
	var prevEnd uint32
	for _, s := range f.Sections {
		// Sections must not overlap in memory.
		if s.VirtualAddress < prevEnd {
			t.Errorf("section %s at 0x%x overlaps the previous one ending 0x%x", s.Name, s.VirtualAddress, prevEnd)
		}
		prevEnd = s.VirtualAddress + s.VirtualSize
		w, ok := want[s.Name]
		if !ok {
			continue
		}
		data, err := s.Data()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, w) {
			t.Errorf("section %s does not hold the input (%d bytes)", s.Name, len(data))
		}
		delete(want, s.Name)
	}
	for name := range want {
		t.Errorf("section %s missing", name)
	}
	if names, _ := Sections(out); !strings.Contains(strings.Join(names, " "), ".osrel") {
		t.Errorf("sections %v lack .osrel", names)
	}
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	if oh.SizeOfImage < prevEnd {
		t.Errorf("SizeOfImage 0x%x < end of sections 0x%x", oh.SizeOfImage, prevEnd)
	}
}

func TestBadInputs(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "ftvs.efi")
	err := Build(context.Background(), Options{Stub: filepath.Join(dir, "nostub"), Vmlinuz: "x", Initrd: "y", Out: out})
	if err == nil || !strings.Contains(err.Error(), "nostub") {
		t.Errorf("missing stub: %v", err)
	}
	if _, err := os.Stat(DefaultStub); err == nil {
		err = Build(context.Background(), Options{Vmlinuz: filepath.Join(dir, "nokernel"), Initrd: "y", Out: out})
		if err == nil || !strings.Contains(err.Error(), "nokernel") {
			t.Errorf("missing kernel: %v", err)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("output written despite errors")
	}
}

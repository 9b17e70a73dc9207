// Package uki builds a unified kernel image: systemd's EFI Linux stub
// with the kernel, initramfs, command line and os-release added as PE
// sections. One signed-able file boots the installer from a USB stick's
// ESP, an ISO's El Torito EFI image and UEFI PXE alike, with no boot
// loader configuration to get wrong.
package uki

import (
	"bytes"
	"context"
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// DefaultStub is systemd's Linux EFI stub from Debian's systemd-boot-efi.
const DefaultStub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub"

// Options says what goes into the image.
type Options struct {
	Stub    string // "" means DefaultStub
	Vmlinuz string // bzImage with EFI stub support
	Initrd  string
	Cmdline string
	Out     string
}

// Build writes the UKI to o.Out with objcopy (binutils), placing each new
// section after the stub's last one at the stub's section alignment.
func Build(ctx context.Context, o Options) error {
	stub := o.Stub
	if stub == "" {
		stub = DefaultStub
	}
	if _, err := exec.LookPath("objcopy"); err != nil {
		return fmt.Errorf("uki: objcopy not found (Debian package binutils): %w", err)
	}
	f, err := pe.Open(stub)
	if err != nil {
		return fmt.Errorf("uki: EFI stub %s (Debian package systemd-boot-efi): %w", stub, err)
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		f.Close()
		return fmt.Errorf("uki: EFI stub %s is not a PE32+ image", stub)
	}
	var end uint64
	for _, s := range f.Sections {
		if e := uint64(s.VirtualAddress) + uint64(s.VirtualSize); e > end {
			end = e
		}
	}
	f.Close()
	align := uint64(oh.SectionAlignment)
	if align == 0 {
		align = 4096
	}

	for _, p := range []string{o.Vmlinuz, o.Initrd} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("uki: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(o.Out), ".uki-")
	if err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	defer os.RemoveAll(tmp)
	osrel := filepath.Join(tmp, "os-release")
	cmdline := filepath.Join(tmp, "cmdline")
	if err := os.WriteFile(osrel, []byte("NAME=\"ftvs installer\"\nID=ftvs\nPRETTY_NAME=\"ftvs installer\"\n"), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cmdline, []byte(o.Cmdline+"\x00"), 0o644); err != nil {
		return err
	}
	args := []string{}
	next := alignUp(end, align)
	for _, s := range []struct{ name, path string }{
		{".osrel", osrel}, {".cmdline", cmdline}, {".linux", o.Vmlinuz}, {".initrd", o.Initrd},
	} {
		st, err := os.Stat(s.path)
		if err != nil {
			return fmt.Errorf("uki: %w", err)
		}
		args = append(args,
			"--add-section", s.name+"="+s.path,
			"--change-section-vma", fmt.Sprintf("%s=0x%x", s.name, oh.ImageBase+next))
		next = alignUp(next+uint64(st.Size()), align)
	}
	out := filepath.Join(tmp, "uki.efi")
	args = append(args, stub, out)
	var stderr bytes.Buffer
	c := exec.CommandContext(ctx, "objcopy", args...)
	c.Stderr = &stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("uki: objcopy: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	if err := os.Rename(out, o.Out); err != nil {
		return fmt.Errorf("uki: %w", err)
	}
	return nil
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) / a * a }

// Sections lists the PE section names of a file (for checks and tests).
func Sections(path string) ([]string, error) {
	f, err := pe.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var names []string
	for _, s := range f.Sections {
		names = append(names, s.Name)
	}
	return names, nil
}

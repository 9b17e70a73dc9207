// Package pxe writes a directory to serve over TFTP or HTTP for network
// installs: the kernel and initramfs with an iPXE script (BIOS and UEFI
// iPXE), pxelinux with its config (plain BIOS PXE ROMs), and the unified
// kernel image as the UEFI PXE boot file (UEFI firmware's own PXE).
package pxe

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Debian's pxelinux (package pxelinux) and its core module (syslinux-common).
const (
	DefaultPxelinux = "/usr/lib/PXELINUX/pxelinux.0"
	DefaultLdlinux  = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
)

// Names of the files in the tree.
const (
	Vmlinuz     = "vmlinuz"
	Initrd      = "initrd.img"
	IPXEScript  = "boot.ipxe"
	UKI         = "ftvs.efi"
	Pxelinux    = "pxelinux.0"
	Ldlinux     = "ldlinux.c32"
	PxelinuxCfg = "pxelinux.cfg/default"
)

// Options says what goes into the tree.
type Options struct {
	UKI      string
	Vmlinuz  string
	Initrd   string
	Cmdline  string
	Pxelinux string // "" means DefaultPxelinux
	Ldlinux  string // "" means DefaultLdlinux
	OutDir   string // created; must not exist or be empty
}

// IPXEScriptText is the iPXE script; iPXE resolves the relative names
// against the script's own URL, so the tree works from TFTP and HTTP alike.
func IPXEScriptText(cmdline string) string {
	return "#!ipxe\necho ftvs installer: loading kernel and initramfs\nkernel " + Vmlinuz +
		" initrd=" + Initrd + " " + strings.TrimSpace(cmdline) + "\ninitrd " + Initrd + "\nboot\n"
}

// PxelinuxConfig is pxelinux.cfg/default: one entry, no prompt.
func PxelinuxConfig(cmdline string) string {
	return "DEFAULT ftvs\nPROMPT 0\nTIMEOUT 0\nLABEL ftvs\n  KERNEL " + Vmlinuz +
		"\n  APPEND initrd=" + Initrd + " " + strings.TrimSpace(cmdline) + "\n"
}

// Build writes the tree into a temporary directory next to OutDir and
// renames it into place.
func Build(o Options) error {
	pxelinux, ldlinux := o.Pxelinux, o.Ldlinux
	if pxelinux == "" {
		pxelinux = DefaultPxelinux
	}
	if ldlinux == "" {
		ldlinux = DefaultLdlinux
	}
	copies := []struct{ what, src, dst string }{
		{"kernel", o.Vmlinuz, Vmlinuz},
		{"initramfs", o.Initrd, Initrd},
		{"unified kernel image", o.UKI, UKI},
		{"pxelinux.0 (Debian package pxelinux)", pxelinux, Pxelinux},
		{"ldlinux.c32 (Debian package syslinux-common)", ldlinux, Ldlinux},
	}
	for _, c := range copies {
		if _, err := os.Stat(c.src); err != nil {
			return fmt.Errorf("pxe: %s: %w", c.what, err)
		}
	}
	if ents, err := os.ReadDir(o.OutDir); err == nil && len(ents) > 0 {
		return fmt.Errorf("pxe: output directory %s exists and is not empty", o.OutDir)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(o.OutDir)), ".pxe-")
	if err != nil {
		return fmt.Errorf("pxe: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	for _, c := range copies {
		if err := copyFile(c.src, filepath.Join(tmp, c.dst)); err != nil {
			return fmt.Errorf("pxe: %s: %w", c.what, err)
		}
	}
	if err := os.MkdirAll(filepath.Join(tmp, filepath.Dir(PxelinuxCfg)), 0o755); err != nil {
		return err
	}
	for name, text := range map[string]string{
		IPXEScript:  IPXEScriptText(o.Cmdline),
		PxelinuxCfg: PxelinuxConfig(o.Cmdline),
	} {
		if err := os.WriteFile(filepath.Join(tmp, name), []byte(text), 0o644); err != nil {
			return fmt.Errorf("pxe: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	os.Remove(o.OutDir) // empty or absent (checked above)
	if err := os.Rename(tmp, o.OutDir); err != nil {
		return fmt.Errorf("pxe: %w", err)
	}
	ok = true
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

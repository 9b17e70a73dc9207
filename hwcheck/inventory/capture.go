package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/jaypipes/ghw"
	"github.com/jaypipes/ghw/pkg/snapshot"
)

// Capture writes a snapshot tarball of the machine it runs on to w: ghw's
// snapshot (proc and sys files for CPU, memory, block, PCI, net) plus what
// ghw leaves out and the inventory reads: the raw DMI tables and
// /sys/class/dmi/id, NIC addresses, speeds and link states, PCI driver
// bindings, udev block data, and a manifest with the boot mode and ethtool
// output. Collect reads it back with Sources{Snapshot: file}.
func Capture(ctx context.Context, w io.Writer) error {
	scratch, err := scratchDir("ftvs-hwcheck-capture-*")
	if err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	defer os.RemoveAll(scratch)
	// ghw's clone routines take their configuration from the context.
	gctx := ghw.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))(ghw.ContextFromEnv())
	if err := snapshot.CloneTreeInto(gctx, scratch); err != nil {
		return fmt.Errorf("capture: ghw snapshot: %w", err)
	}
	if err := addExtras(ctx, scratch); err != nil {
		return fmt.Errorf("capture: %w", err)
	}
	if err := snapshot.PackWithWriter(gctx, w, scratch); err != nil {
		return fmt.Errorf("capture: write tarball: %w", err)
	}
	return nil
}

func addExtras(ctx context.Context, scratch string) error {
	for _, glob := range []string{
		"/sys/firmware/dmi/tables/DMI",
		"/sys/firmware/dmi/tables/smbios_entry_point",
		"/sys/class/dmi/id/*",
		"/run/udev/data/b*",
	} {
		if err := copyGlob(glob, scratch); err != nil {
			return err
		}
	}
	// NIC attributes: written through scratch/sys/class/net/<name>, which
	// ghw recreated as a link into the cloned device tree.
	nets, _ := os.ReadDir("/sys/class/net")
	for _, n := range nets {
		dst := filepath.Join(scratch, "sys/class/net", n.Name())
		if st, err := os.Stat(dst); err != nil || !st.IsDir() {
			continue // virtual: ghw does not clone those
		}
		for _, attr := range []string{"address", "speed", "operstate", "addr_assign_type"} {
			if b, err := os.ReadFile(filepath.Join("/sys/class/net", n.Name(), attr)); err == nil {
				if err := os.WriteFile(filepath.Join(dst, attr), b, 0o644); err != nil {
					return err
				}
			}
		}
	}
	// PCI driver bindings: ghw skips the drivers tree; recreate each
	// binding link and an empty driver directory for it to resolve to.
	devs, _ := os.ReadDir("/sys/bus/pci/devices")
	for _, d := range devs {
		link, err := os.Readlink(filepath.Join("/sys/bus/pci/devices", d.Name(), "driver"))
		if err != nil {
			continue
		}
		devDir := filepath.Join(scratch, "sys/bus/pci/devices", d.Name())
		if _, err := os.Stat(devDir); err != nil {
			continue
		}
		if err := os.MkdirAll(filepath.Join(scratch, "sys/bus/pci/drivers", filepath.Base(link)), 0o755); err != nil {
			return err
		}
		if err := os.Symlink(link, filepath.Join(devDir, "driver")); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	return writeManifest(ctx, scratch)
}

// copyGlob copies the readable regular files matching glob (absolute) to
// the same path under scratch; unreadable ones (root-only DMI serials when
// not root) are skipped and show up as unknown when read back.
func copyGlob(glob, scratch string) error {
	matches, _ := filepath.Glob(glob)
	for _, m := range matches {
		st, err := os.Stat(m)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		dst := filepath.Join(scratch, m)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeManifest(ctx context.Context, scratch string) error {
	m := Manifest{Version: 1, BootMode: "legacy", NICs: map[string]ManifestNIC{}}
	if _, err := os.Stat("/sys/firmware/efi"); err == nil {
		m.BootMode = "uefi"
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if info, err := ghw.Network(ghw.WithDisableWarnings(), ghw.WithLogger(quiet)); err == nil {
		for _, n := range info.NICs {
			if n.IsVirtual || strings.HasPrefix(n.Name, "lo") {
				continue
			}
			m.NICs[n.Name] = ManifestNIC{Firmware: ethtoolFirmware(ctx, n.Name), SupportedLinkModes: n.SupportedLinkModes}
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(scratch, ManifestName), b, 0o644)
}

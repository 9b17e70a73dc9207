package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ftvs/ftvs/images/bootcfg"
)

// BootBanner is what the installer prints first on every console; the boot
// tests wait for it.
const BootBanner = "ftvs installer: started"

// fetchedConfigPath is where the config found at boot is written for
// `ftvs install --config`.
const fetchedConfigPath = "/tmp/ftvs-install.conf"

func newBootCmd() *cobra.Command {
	var cmdlinePath, embedded string
	cmd := &cobra.Command{
		Use:   "boot",
		Short: "Run by the installer initramfs at boot: find the install config, start the installer",
		Long: `boot is what u-root's init runs in the installer initramfs. It reads the
kernel command line; ftvs.config= names the unattended config: an http:// or
tftp:// URL (fetched after DHCP), media:/path (a file on the boot medium) or
/path (a file in the initramfs). Without it the config embedded by
'ftvs image --config' is used. It then runs 'ftvs install --config FILE'
when this build has the installer, and otherwise returns to u-root's shell.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBoot(cmd, cmdlinePath, embedded)
		},
	}
	cmd.Flags().StringVar(&cmdlinePath, "cmdline", "/proc/cmdline", "kernel command line file")
	cmd.Flags().StringVar(&embedded, "embedded", bootcfg.EmbeddedPath, "config embedded in the initramfs")
	return cmd
}

func runBoot(cmd *cobra.Command, cmdlinePath, embedded string) error {
	out := cmd.OutOrStdout()
	defer drainConsole(out)
	fmt.Fprintf(out, "\n%s (ftvs %s)\n", BootBanner, version)
	fmt.Fprintf(out, "ftvs installer: network interfaces: %s\n", deviceList("/sys/class/net", "lo"))
	fmt.Fprintf(out, "ftvs installer: disks: %s\n", deviceList("/sys/block", "loop", "ram"))

	cfg, src, err := findBootConfig(cmd.Context(), out, cmdlinePath, embedded)
	switch {
	case err != nil:
		fmt.Fprintf(out, "ftvs installer: config error: %v\n", err)
	case src.Kind == bootcfg.None:
		fmt.Fprintln(out, "ftvs installer: no install config (no ftvs.config= on the kernel command line, none embedded)")
	default:
		fmt.Fprintf(out, "ftvs installer: config %s from %s: %d bytes, sha256 %s\n",
			filepath.Base(src.String()), src, len(cfg), bootcfg.Digest(cfg))
	}

	install := findSubcommand(cmd.Root(), "install")
	if install == nil {
		fmt.Fprintln(out, "ftvs installer: this build has no 'ftvs install'; dropping to the u-root shell")
		return nil
	}
	if err != nil || src.Kind == bootcfg.None {
		fmt.Fprintln(out, "ftvs installer: no usable config; dropping to the u-root shell (run 'ftvs install' by hand)")
		return nil
	}
	if err := os.WriteFile(fetchedConfigPath, cfg, 0o600); err != nil {
		fmt.Fprintf(out, "ftvs installer: writing %s: %v; dropping to the u-root shell\n", fetchedConfigPath, err)
		return nil
	}
	fmt.Fprintf(out, "ftvs installer: running ftvs install --config %s\n", fetchedConfigPath)
	root := cmd.Root()
	root.SetArgs([]string{"install", "--config", fetchedConfigPath})
	if err := root.Execute(); err != nil {
		fmt.Fprintf(out, "ftvs installer: install failed: %v; dropping to the u-root shell\n", err)
	}
	return nil
}

// drainConsole waits until the console has transmitted what we wrote. When
// the installer (u-root's uinit, a session leader on the console) exits,
// the kernel hangs the terminal up and discards output still queued in the
// serial driver: under a slow emulated UART that was the last line, the
// one saying why the install stopped.
func drainConsole(w io.Writer) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	// TCSBRK with a non-zero argument is tcdrain(3); not a terminal: ENOTTY.
	_ = unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1)
}

// findBootConfig resolves and loads the config named on the command line,
// or the embedded one.
func findBootConfig(ctx context.Context, w io.Writer, cmdlinePath, embedded string) ([]byte, bootcfg.Source, error) {
	cl, err := os.ReadFile(cmdlinePath)
	if err != nil {
		return nil, bootcfg.Source{}, fmt.Errorf("reading kernel command line: %w", err)
	}
	src, ok, err := bootcfg.FromCmdline(string(cl))
	if err != nil {
		return nil, src, err
	}
	if !ok {
		if _, err := os.Stat(embedded); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, bootcfg.Source{}, nil
			}
			return nil, bootcfg.Source{}, fmt.Errorf("embedded config %s: %w", embedded, err)
		}
		src = bootcfg.Source{Kind: bootcfg.Embedded, Path: embedded}
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cfg, err := bootcfg.Load(ctx, src, embedded, w)
	return cfg, src, err
}

// deviceList names each device under a sysfs class directory with the
// driver bound to it ("eth0 (virtio_net)"), so the operator sees at once
// whether the initramfs had the modules this server needs.
func deviceList(dir string, skipPrefixes ...string) string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	var parts []string
next:
	for _, e := range ents {
		for _, p := range skipPrefixes {
			if strings.HasPrefix(e.Name(), p) {
				continue next
			}
		}
		drv := "no driver"
		if l, err := os.Readlink(filepath.Join(dir, e.Name(), "device", "driver")); err == nil {
			drv = filepath.Base(l)
		} else if l, err := os.Readlink(filepath.Join(dir, e.Name(), "device", "device", "driver")); err == nil {
			drv = filepath.Base(l)
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", e.Name(), drv))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func findSubcommand(root *cobra.Command, name string) *cobra.Command {
	for _, c := range root.Commands() {
		if c.Name() == name {
			return c
		}
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftvs/ftvs/images/initramfs"
	"github.com/ftvs/ftvs/images/iso"
	"github.com/ftvs/ftvs/images/kernel"
	"github.com/ftvs/ftvs/images/pxe"
	"github.com/ftvs/ftvs/images/uki"
	"github.com/ftvs/ftvs/images/usb"
)

// DefaultBootCmdline is the installer kernel's command line: every console
// (a server's VGA and its serial port), USB sticks without the 1 s settle
// delay, and a quiet kernel so the installer's own lines stand out.
const DefaultBootCmdline = "console=tty0 console=ttyS0,115200 usb-storage.delay_use=0 quiet"

type imageFlags struct {
	out, kernel, modules, config, cmdline, initramfs, cache string
}

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build the installer's boot media: initramfs, USB image, ISO, PXE tree",
		Long: `image builds the installer from this source tree: u-root plus the ftvs
command (run at boot as 'ftvs boot') and the kernel's NIC and storage
modules. Without --kernel it uses Debian's linux-image package from the
cache ($FTVS_CACHE or .cache in the source tree), fetching it with apt-get
download when absent. --config embeds an unattended install config.`,
	}
	for _, m := range []struct{ name, short string }{
		{"initramfs", "gzip-compressed cpio initramfs"},
		{"usb", "GPT disk image with an EFI System Partition holding a unified kernel image (UEFI)"},
		{"iso", "ISO 9660 image, El Torito for UEFI (UKI) and BIOS (isolinux)"},
		{"pxe", "directory for a TFTP/HTTP server: kernel, initramfs, iPXE script, pxelinux config, UKI"},
	} {
		f := &imageFlags{}
		medium := m.name
		c := &cobra.Command{
			Use:   m.name + " --out PATH",
			Short: "Build a " + m.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runImage(cmd.Context(), cmd.ErrOrStderr(), medium, f)
			},
		}
		c.Flags().StringVar(&f.out, "out", "", "output file (directory for pxe)")
		c.Flags().StringVar(&f.kernel, "kernel", "", "vmlinuz to use instead of Debian's (needs --modules)")
		c.Flags().StringVar(&f.modules, "modules", "", "lib/modules/<release> directory matching --kernel")
		c.Flags().StringVar(&f.config, "config", "", "unattended install config to embed")
		c.Flags().StringVar(&f.cmdline, "cmdline", DefaultBootCmdline, "kernel command line (add ftvs.config=URL to fetch a config at boot)")
		c.Flags().StringVar(&f.initramfs, "initramfs", "", "use this prebuilt initramfs instead of building one")
		c.Flags().StringVar(&f.cache, "cache", "", "kernel cache directory (default $FTVS_CACHE or .cache in the source tree)")
		cmd.AddCommand(c)
	}
	return cmd
}

func runImage(ctx context.Context, w io.Writer, medium string, f *imageFlags) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.out == "" {
		return fmt.Errorf("--out is required")
	}
	if f.config != "" {
		// Fail before any slow step or any write.
		if _, err := os.ReadFile(f.config); err != nil {
			return fmt.Errorf("--config: %w", err)
		}
	}
	if f.initramfs != "" {
		if _, err := os.Stat(f.initramfs); err != nil {
			return fmt.Errorf("--initramfs: %w", err)
		}
	}
	if st, err := os.Stat(filepath.Dir(f.out)); err != nil || !st.IsDir() {
		return fmt.Errorf("--out %s: parent directory does not exist", f.out)
	}
	start := time.Now()
	step := func(format string, a ...any) {
		fmt.Fprintf(w, "[%5.1fs] "+format+"\n", append([]any{time.Since(start).Seconds()}, a...)...)
	}

	var k *kernel.Kernel
	var err error
	if f.kernel != "" || f.modules != "" {
		if f.kernel == "" {
			return fmt.Errorf("--modules given without --kernel")
		}
		k, err = kernel.FromFiles(f.kernel, f.modules)
	} else {
		cache := f.cache
		if cache == "" {
			if cache, err = kernel.DefaultCacheDir(); err != nil {
				return err
			}
		}
		step("kernel: cache %s", cache)
		k, err = kernel.Fetch(ctx, cache, "", w)
	}
	if err != nil {
		return err
	}
	step("kernel %s (%s)", k.Release, k.Vmlinuz)

	tmp, err := os.MkdirTemp(filepath.Dir(f.out), ".ftvs-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	initrd := f.initramfs
	if initrd == "" {
		initrd = filepath.Join(tmp, "initramfs.cpio.gz")
		if medium == "initramfs" {
			initrd = f.out
		}
		step("building initramfs")
		if err := initramfs.Build(ctx, initramfs.Options{
			Kernel: k, ConfigFile: f.config, Out: initrd, Progress: w,
		}); err != nil {
			return err
		}
		step("initramfs done")
	} else if f.config != "" {
		return fmt.Errorf("--config cannot be embedded into a prebuilt --initramfs; drop one of them")
	}
	if medium == "initramfs" {
		if f.initramfs != "" {
			return fmt.Errorf("image initramfs with --initramfs has nothing to build")
		}
		step("wrote %s", f.out)
		return nil
	}

	ukiPath := filepath.Join(tmp, "ftvs.efi")
	step("building unified kernel image")
	if err := uki.Build(ctx, uki.Options{Vmlinuz: k.Vmlinuz, Initrd: initrd, Cmdline: f.cmdline, Out: ukiPath}); err != nil {
		return err
	}
	switch medium {
	case "usb":
		step("writing USB disk image")
		err = usb.Build(usb.Options{UKI: ukiPath, Config: f.config, Out: f.out})
	case "iso":
		step("writing ISO image")
		err = iso.Build(iso.Options{UKI: ukiPath, Vmlinuz: k.Vmlinuz, Initrd: initrd, Cmdline: f.cmdline, Config: f.config, Out: f.out})
	case "pxe":
		step("writing PXE tree")
		err = pxe.Build(pxe.Options{UKI: ukiPath, Vmlinuz: k.Vmlinuz, Initrd: initrd, Cmdline: f.cmdline, OutDir: f.out})
	default:
		err = fmt.Errorf("unknown medium %q", medium)
	}
	if err != nil {
		return err
	}
	step("wrote %s", f.out)
	return nil
}

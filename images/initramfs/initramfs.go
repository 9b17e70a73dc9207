// Package initramfs builds the installer's initramfs: u-root's init and
// core commands plus this repository's ftvs command in one busybox (built
// with mkuimage from the ftvs source tree), the kernel modules for common
// server NICs and storage with a generated modules.dep, a modules-load.d
// list that u-root's init loads at boot, and optionally an embedded
// unattended install config. u-root's init runs `ftvs boot` as uinit.
package initramfs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/gobusybox/src/pkg/golang"
	"github.com/u-root/mkuimage/uimage"
	"github.com/u-root/uio/llog"

	"github.com/ftvs/ftvs/images/bootcfg"
	"github.com/ftvs/ftvs/images/kernel"
)

// PayloadPackage is the command built into the busybox and run at boot.
const PayloadPackage = "github.com/ftvs/ftvs/cmd/ftvs"

// EmbeddedConfigPath is where --config lands inside the initramfs.
const EmbeddedConfigPath = bootcfg.EmbeddedPath

// ModulesLoadConf is the list u-root's init loads (kmodule.Probe, with
// dependencies from modules.dep).
const ModulesLoadConf = "lib/modules-load.d/ftvs.conf"

// CoreCommands are the u-root commands shipped for an operator's console.
// images/tools.go lists the same packages so go.sum has their dependencies.
var CoreCommands = []string{
	"blkid", "cat", "chmod", "cp", "date", "dd", "df", "dhclient", "dmesg",
	"echo", "find", "free", "gosh", "gpt", "grep", "head", "hexdump", "init",
	"insmod", "ip", "kill", "ln", "ls", "lsdrivers", "lsmod", "md5sum",
	"mkdir", "more", "mount", "mv", "netcat", "pci", "ping", "poweroff", "ps",
	"rm", "rmmod", "shasum", "shutdown", "sleep", "sync", "tail", "uname",
	"umount", "wc", "wget",
}

// DefaultModules are loaded at boot: virtual and common server NICs and
// storage controllers, USB sticks, and the file systems of the boot media
// (for ftvs.config= files on them). Dependencies are added automatically.
var DefaultModules = []string{
	// QEMU / virtual machines
	"virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi",
	// server NICs
	"e1000", "e1000e", "igb", "ixgbe", "i40e", "ice", "bnxt_en", "tg3", "mlx5_core",
	// storage
	"ahci", "ata_piix", "nvme", "megaraid_sas", "mpt3sas", "sd_mod", "sr_mod",
	// USB sticks
	"xhci_pci", "ehci_pci", "usb_storage", "uas",
	// boot media file systems
	"vfat", "nls_cp437", "nls_ascii", "isofs",
	// entropy: DHCP and TFTP clients block in getrandom until the kernel's
	// RNG is seeded; without RDRAND (QEMU's default CPU) a virtio-rng
	// device or a TPM seeds it
	"virtio_rng", "tpm_tis", "tpm_crb",
}

// Options says what to build.
type Options struct {
	Kernel     *kernel.Kernel // module tree source (required)
	Modules    []string       // modules to load at boot; nil means DefaultModules
	ConfigFile string         // unattended config to embed; "" for none
	SourceDir  string         // ftvs source tree; "" means kernel.FindModuleRoot
	Out        string         // output path (gzip-compressed newc cpio)
	Progress   io.Writer      // progress lines; nil discards
}

// Build writes the initramfs to o.Out. Inputs are checked before anything
// is written; the output appears atomically (temp file + rename).
func Build(ctx context.Context, o Options) error {
	var progress io.Writer = io.Discard
	if o.Progress != nil {
		// The ticker and mkuimage's logger write from different goroutines.
		progress = &lockedWriter{w: o.Progress}
	}
	if o.Out == "" {
		return fmt.Errorf("initramfs: no output path")
	}
	if o.Kernel == nil {
		return fmt.Errorf("initramfs: no kernel given")
	}
	var config []byte
	if o.ConfigFile != "" {
		var err error
		if config, err = os.ReadFile(o.ConfigFile); err != nil {
			return fmt.Errorf("install config: %w", err)
		}
	}
	src := o.SourceDir
	if src == "" {
		var err error
		if src, err = kernel.FindModuleRoot(); err != nil {
			return fmt.Errorf("initramfs: the ftvs payload is compiled from source: %w", err)
		}
	}
	names := o.Modules
	if names == nil {
		names = DefaultModules
	}
	fmt.Fprintf(progress, "initramfs: reading module tree %s\n", o.Kernel.ModulesDir)
	tree, err := kernel.ScanTree(o.Kernel.ModulesDir)
	if err != nil {
		return err
	}
	mods, err := tree.Closure(names)
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}

	outDir := filepath.Dir(o.Out)
	tmp, err := os.MkdirTemp(outDir, ".initramfs-")
	if err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	defer os.RemoveAll(tmp)

	stage := filepath.Join(tmp, "stage")
	if err := stageModules(stage, o.Kernel, tree, mods, names); err != nil {
		return err
	}
	files := []string{filepath.Join(stage, "lib") + ":lib"}
	if config != nil {
		p := filepath.Join(stage, strings.TrimPrefix(EmbeddedConfigPath, "/"))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, config, 0o644); err != nil {
			return err
		}
		files = append(files, filepath.Dir(p)+":"+strings.TrimPrefix(filepath.Dir(EmbeddedConfigPath), "/"))
	}
	fmt.Fprintf(progress, "initramfs: %d modules staged; compiling u-root and ftvs (mkuimage, ~30 s)\n", len(mods))

	// TCG's default CPU is x86-64-v1; go build reads GOAMD64 from the
	// environment (mkuimage passes it through).
	if os.Getenv("GOAMD64") != "v1" {
		os.Setenv("GOAMD64", "v1")
	}
	goroot, err := findGOROOT(ctx)
	if err != nil {
		return err
	}
	cmds := []string{PayloadPackage}
	for _, c := range CoreCommands {
		cmds = append(cmds, "github.com/u-root/u-root/cmds/core/"+c)
	}
	cpioPath := filepath.Join(tmp, "initramfs.cpio")
	buildTmp := filepath.Join(tmp, "build")
	if err := os.Mkdir(buildTmp, 0o755); err != nil {
		return err
	}
	logger := llog.New(slog.LevelWarn, func(format string, v ...any) {
		fmt.Fprintf(progress, "mkuimage: "+format+"\n", v...)
	})
	stop := ticker(progress, "initramfs: still compiling")
	err = uimage.Create(logger,
		uimage.WithEnv(golang.WithWorkingDir(src), golang.DisableCGO(), golang.WithGOROOT(goroot),
			golang.WithGOOS("linux"), golang.WithGOARCH("amd64")),
		uimage.WithTempDir(buildTmp),
		uimage.WithBusyboxCommands(cmds...),
		uimage.WithInit("init"),
		uimage.WithUinit("ftvs", "boot"),
		uimage.WithShell("gosh"),
		uimage.WithFiles(files...),
		uimage.WithSkipLDD(),
		uimage.WithCPIOOutput(cpioPath),
	)
	stop()
	if err != nil {
		return fmt.Errorf("initramfs: mkuimage: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	fmt.Fprintln(progress, "initramfs: compressing")
	gzPath := filepath.Join(tmp, "initramfs.cpio.gz")
	if err := gzipFile(cpioPath, gzPath); err != nil {
		return err
	}
	if err := os.Rename(gzPath, o.Out); err != nil {
		return fmt.Errorf("initramfs: %w", err)
	}
	if st, err := os.Stat(o.Out); err == nil {
		fmt.Fprintf(progress, "initramfs: wrote %s (%.1f MB)\n", o.Out, float64(st.Size())/1e6)
	}
	return nil
}

// findGOROOT asks the go command on PATH: a -trimpath binary (make build)
// has no GOROOT of its own, and mkuimage would then run "bin/go".
func findGOROOT(ctx context.Context) (string, error) {
	if g := os.Getenv("GOROOT"); g != "" {
		return g, nil
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("initramfs: u-root and ftvs are compiled from source and the go command is not on PATH (install Go 1.26, e.g. /usr/local/go/bin): %w", err)
	}
	out, err := exec.CommandContext(ctx, gobin, "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("initramfs: go env GOROOT: %w", err)
	}
	g := strings.TrimSpace(string(out))
	if g == "" {
		return "", fmt.Errorf("initramfs: go env GOROOT printed nothing")
	}
	return g, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// ticker prints msg with the elapsed time every 15 s until stopped, so a
// long compile on a busy machine does not look hung.
func ticker(w io.Writer, msg string) (stop func()) {
	done := make(chan struct{})
	t0 := time.Now()
	go func() {
		tk := time.NewTicker(15 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				fmt.Fprintf(w, "%s (%v)\n", msg, time.Since(t0).Round(time.Second))
			}
		}
	}()
	return func() { close(done) }
}

// stageModules copies the module closure into stage/lib/modules/<release>
// with its modules.dep, modules.builtin and the modules-load.d list.
func stageModules(stage string, k *kernel.Kernel, tree *kernel.Tree, mods []*kernel.Module, load []string) error {
	relDir := filepath.Join(stage, "lib", "modules", k.Release)
	for _, m := range mods {
		dst := filepath.Join(relDir, filepath.FromSlash(m.Path))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := copyFile(filepath.Join(k.ModulesDir, filepath.FromSlash(m.Path)), dst); err != nil {
			return fmt.Errorf("initramfs: module %s: %w", m.Name, err)
		}
	}
	dep, err := tree.ModulesDep(mods)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(relDir, "modules.dep"), dep, 0o644); err != nil {
		return err
	}
	if b, err := os.ReadFile(filepath.Join(k.ModulesDir, "modules.builtin")); err == nil {
		if err := os.WriteFile(filepath.Join(relDir, "modules.builtin"), b, 0o644); err != nil {
			return err
		}
	}
	// Load in closure order: soft dependencies (crc32c for ...) first.
	var list strings.Builder
	list.WriteString("# written by ftvs image: loaded by u-root's init at boot\n")
	for _, m := range mods {
		list.WriteString(m.Name + "\n")
	}
	conf := filepath.Join(stage, filepath.FromSlash(ModulesLoadConf))
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		return err
	}
	return os.WriteFile(conf, []byte(list.String()), 0o644)
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

func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(out, gzip.BestSpeed)
	if err != nil {
		out.Close()
		return err
	}
	if _, err := io.Copy(zw, in); err != nil {
		out.Close()
		return fmt.Errorf("initramfs: compressing: %w", err)
	}
	if err := zw.Close(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

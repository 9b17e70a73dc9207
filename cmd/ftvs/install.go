package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/host"
	"github.com/ftvs/ftvs/installer/install"
	"github.com/ftvs/ftvs/installer/wizard"
)

type installFlags struct {
	config, inventory, stateDir, bootFiles, vsFiles, save string
	dryRun, allNICs, wizard                               bool
}

func newInstallCmd() *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   "install [--config FILE] [--dry-run]",
		Short: "Install a CoServer: NIC roles, pairing and hardware match, disk layout, runtime",
		Long: `Installs this server as one CoServer of a pair. Run it on both servers at
the same time. Steps, each logged: inventory (hwcheck); NICs (beacons on every
NIC find the crossover links; roles are proposed and compared with the peer's);
pairing (an authenticated session over the first CoServer link exchanges the
inventories and runs the hardware compare: a mismatch stops both servers with
the same report); disk layout (GPT: ESP, system partition, one partition per
virtual disk); runtime config; launch of ftvs coserver.

With --config it runs unattended (see the README for every field). Without
one, on a terminal, a wizard asks what it cannot detect. --dry-run prints the
plan (roles, addresses, disk layout) and writes nothing; it still brings the
NICs up and sends beacons, which finding the roles needs.

Exit status: 0 installed (and launched), 1 hardware mismatch, 2 could not run
(bad config, missing NIC or disk, disk in use without wipe), 3 installed but
the runtime is not part of this build.`,
		Example: `  ftvs install --config /ftvs/install.yaml
  ftvs install --config install.yaml --dry-run
  ftvs install                      # wizard`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInstall(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "unattended install config (YAML)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan and change nothing on disk")
	fl.BoolVar(&f.wizard, "wizard", false, "run the wizard even if stdin is not a terminal")
	fl.StringVar(&f.save, "save", "", "wizard: also write the answers as a config file")
	fl.StringVar(&f.inventory, "inventory", "", "use this inventory (snapshot tarball or JSON) instead of the live one")
	fl.StringVar(&f.stateDir, "state-dir", "/var/lib/ftvs", "where the runtime config is written for launch")
	fl.StringVar(&f.bootFiles, "boot-files", "", "directory copied into the ESP (the CoServer's kernel and loader)")
	fl.StringVar(&f.vsFiles, "vs-files", "", "directory copied into the VS boot disk's www/ (default: STATE-DIR/vs-content when it exists)")
	fl.BoolVar(&f.allNICs, "all-nics", false, "consider virtual NICs (veth...) too: labs and tests")
	return cmd
}

func runInstall(cmd *cobra.Command, f installFlags) error {
	out := cmd.OutOrStdout()
	var cfg *config.Config
	var raw []byte
	var err error
	var confirm func(string) bool
	switch {
	case f.config != "":
		if raw, err = os.ReadFile(f.config); err != nil {
			return &exitError{2, fmt.Errorf("install: %w", err)}
		}
		if cfg, err = config.Parse(f.config, raw); err != nil {
			return &exitError{2, err}
		}
	case f.wizard || isTerminal(os.Stdin):
		wo := wizard.Options{In: os.Stdin, Out: nopWriteCloser{out}, Machine: host.Live(), AllNICs: f.allNICs}
		res, err := wizard.Run(wo)
		if err != nil {
			return &exitError{2, err}
		}
		confirm = func(plan string) bool { return wizard.Confirm(wo, plan) }
		cfg, raw = res.Config, res.YAML
		if f.save != "" {
			if err := os.WriteFile(f.save, raw, 0o600); err != nil {
				return &exitError{2, fmt.Errorf("install: save config: %w", err)}
			}
			fmt.Fprintf(out, "config saved to %s\n", f.save)
		}
	default:
		return &exitError{2, errors.New("install: no --config and stdin is not a terminal (the wizard needs one)")}
	}
	if f.allNICs {
		cfg.NICs.Scan = "all"
	}
	o := install.Options{
		Config: cfg, ConfigRaw: raw, Inventory: f.inventory, DryRun: f.dryRun,
		StateDir: f.stateDir, BootFiles: f.bootFiles, VSFiles: f.vsFiles, Out: out, ConfirmPlan: confirm,
	}
	if runtime, _, err := cmd.Root().Find([]string{"coserver"}); err == nil && runtime != cmd.Root() {
		o.Launch = func(path string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			// argv[0] stays the name we were run as: in the installer
			// initramfs exe is u-root's multi-call /bbin/bb, which picks
			// the command by argv[0] ("ftvs"), not by the path.
			return syscall.Exec(exe, []string{os.Args[0], "coserver", "--config", path}, os.Environ())
		}
	}
	_, err = install.Run(cmd.Context(), o)
	var ce config.Errors
	var fe *config.FieldError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, install.ErrMismatch):
		return &exitError{1, err}
	case errors.Is(err, install.ErrRuntimeMissing):
		return &exitError{3, err}
	case errors.Is(err, install.ErrDeclined):
		return &exitError{2, err}
	case errors.As(err, &ce), errors.As(err, &fe):
		return &exitError{2, err}
	}
	return &exitError{2, err}
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/ftvs/ftvs/hwcheck/compare"
	"github.com/ftvs/ftvs/hwcheck/inventory"
	"github.com/ftvs/ftvs/hwcheck/policy"
	"github.com/jaypipes/pcidb"
	"github.com/spf13/cobra"
)

// hwcheck exit statuses: 0 match (or success), 1 mismatch, 2 could not run.
const (
	exitMismatch = 1
	exitCannot   = 2
)

func newHwcheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "hwcheck",
		Short: "Inventory a server's hardware and refuse a mismatched pair",
		Long: `hwcheck reads a server's hardware inventory (CPU, memory and DIMMs, NICs,
storage, PCI devices, BIOS and board) and compares two of them: CoServers
must be identical down to CPU microcode, DIMM population and BIOS version.

Exit status: 0 success or match, 1 mismatch (compare), 2 could not run.`,
	}
	cmd.AddCommand(newHwcheckInventoryCmd(), newHwcheckCompareCmd(), newHwcheckSnapshotCmd())
	return cmd
}

func newHwcheckInventoryCmd() *cobra.Command {
	var src inventory.Sources
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inventory [--snapshot FILE] [--smbios FILE] [--json]",
		Short: "Print the hardware inventory of this machine, a snapshot or an SMBIOS table",
		Long: `inventory prints the hardware inventory of the machine it runs on or, with
--snapshot and/or --smbios, of those files only: a domain they do not cover is
reported "not collected", never read from this machine. Every field that could
not be read is listed with the reason.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// pci.ids only names devices in the text output; the
			// inventory itself holds IDs.
			var db *pcidb.PCIDB
			if !asJSON {
				db = inventory.LoadPCIDB()
				src.PCIDB = db
			}
			inv, err := inventory.Collect(cmd.Context(), src)
			if err != nil {
				return &exitError{exitCannot, err}
			}
			if asJSON {
				b, err := inv.Encode()
				if err != nil {
					return &exitError{exitCannot, err}
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			return inv.WriteText(cmd.OutOrStdout(), db)
		},
	}
	cmd.Flags().StringVar(&src.Snapshot, "snapshot", "", "read a snapshot tarball (ftvs hwcheck snapshot, or ghw's)")
	cmd.Flags().StringVar(&src.SMBIOS, "smbios", "", "read a raw SMBIOS table (/sys/firmware/dmi/tables/DMI or dmidecode --dump-bin)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the inventory as JSON (the format compare reads)")
	return cmd
}

func newHwcheckCompareCmd() *cobra.Command {
	var policyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "compare A B [--policy FILE] [--json]",
		Short: "Compare two inventories; exit 0 match, 1 mismatch, 2 could not run",
		Long: `compare diffs two servers. A and B are snapshot tarballs or inventory JSON
files (ftvs hwcheck inventory --json). Each difference has a path such as
memory.dimms[DIMM_A2].part_number, both values and a severity: fatal, warning,
info, or unverified when a value is unknown on either side (unknown never
equals anything; it blocks the pair unless the policy tolerates that path).

The policy file (YAML):
  version: 1
  tolerate_unverified: [bios.boot_mode, "memory.dimms[*].serial"]
  downgrade:
    - path: "network.nics[*].firmware_version"
      to: info

Exit status: 0 match, 1 mismatch, 2 could not run (bad input, unreadable file).`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return fmt.Errorf("compare wants two files, A and B; got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var pol *policy.Policy
			if policyFile != "" {
				p, err := policy.Load(policyFile)
				if err != nil {
					return &exitError{exitCannot, err}
				}
				pol = p
			}
			var invs [2]*inventory.Inventory
			for i, f := range args {
				inv, err := inventory.Load(cmd.Context(), f, nil)
				if err != nil {
					return &exitError{exitCannot, err}
				}
				inv.Source = f
				invs[i] = inv
			}
			rep := compare.Compare(invs[0], invs[1], pol)
			out := cmd.OutOrStdout()
			if asJSON {
				b, err := json.MarshalIndent(struct {
					Verdict compare.Verdict `json:"verdict"`
					compare.Report
				}{rep.Verdict(), rep}, "", "  ")
				if err != nil {
					return &exitError{exitCannot, err}
				}
				if _, err := out.Write(append(b, '\n')); err != nil {
					return err
				}
			} else if err := rep.WriteText(out); err != nil {
				return err
			}
			if rep.Verdict() != compare.Match {
				return &exitError{exitMismatch, nil}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&policyFile, "policy", "", "YAML policy: paths whose unverified values are tolerated, paths downgraded")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func newHwcheckSnapshotCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "snapshot --out FILE",
		Short: "Capture this machine's hardware files into one tarball for offline comparison",
		Long: `snapshot writes one tarball (gzip-compressed tar) with everything the
inventory reads: ghw's snapshot of /proc and /sys plus the DMI tables, NIC
addresses, speeds and link states, PCI driver bindings, udev block data, the
boot mode and ethtool output. Read it back with "inventory --snapshot FILE" or
"compare FILE OTHER". FILE must not exist yet.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return &exitError{exitCannot, errors.New("snapshot: --out FILE is required")}
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return &exitError{exitCannot, fmt.Errorf("snapshot: %w", err)}
			}
			err = inventory.Capture(cmd.Context(), f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				os.Remove(out) // only the file this command created
				return &exitError{exitCannot, err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "tarball to create (must not exist)")
	return cmd
}

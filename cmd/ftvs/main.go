// Command ftvs is the one binary of the toolkit: the hardware check, the
// installer, the boot-media builder, the CoServer runtime and its tools.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit status out of a subcommand (hwcheck
// compare: 1 mismatch, 2 could not run).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ftvs",
		Short:         "Turn two identical x86 servers into one fault-tolerant virtual server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCmd(),
		newHwcheckCmd(),
		newImageCmd(),
		newBootCmd(),
		newVSCmd(),
		newVdiskCmd(),
		newInstallCmd(),
		newCoserverCmd(),
		newStatusCmd(),
		newWitnessCmd(),
		newCtlCmd(),
		newUpgradeCmd(),
	)
	return root
}

func main() {
	err := newRootCmd().Execute()
	if err == nil {
		return
	}
	code := 2
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			os.Exit(code)
		}
	}
	fmt.Fprintln(os.Stderr, "ftvs:", err)
	os.Exit(code)
}

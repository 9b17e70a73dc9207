package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftvs/ftvs/ftvs/manager/api"
	"github.com/ftvs/ftvs/ftvs/manager/state"
)

func newUpgradeCmd() *cobra.Command {
	var binary, tokenFile string
	var addrs, cas, exes []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "upgrade --binary FILE --addr A1 --exe P1 --addr A2 --exe P2 [--ca C1 --ca C2] --token-file F",
		Short: "Rolling upgrade: replace each CoServer's runtime in turn while the VS keeps serving",
		Long: `For each CoServer in turn (the secondary first): waits until the pair is in
sync, takes the CoServer out of service through its manager API (the peer
carries on alone), renames FILE over the executable the daemon runs from
(--exe, the same order as --addr; the path must be reachable from here, e.g.
run on a CoServer with the other's path mounted, or one path per node on a
test machine), brings it back into service (the daemon re-executes the new
binary and rejoins from a snapshot of the running VS), and waits until it
reports the new version and the pair is in sync again.
Exit status: 1 failed (the pair is left as it was at the failing step), 2 bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if binary == "" || len(addrs) != 2 || len(exes) != 2 || (len(cas) != 0 && len(cas) != 2) {
				return &exitError{2, errors.New("give --binary, and --addr and --exe twice (one per CoServer), --ca twice or not at all")}
			}
			want, err := binaryVersion(binary)
			if err != nil {
				return &exitError{2, err}
			}
			var nodes [2]*upgradeNode
			for i := range addrs {
				f := &ctlFlags{addr: addrs[i], tokenFile: tokenFile}
				if len(cas) == 2 {
					f.ca = cas[i]
				}
				c, err := f.client()
				if err != nil {
					return err
				}
				nodes[i] = &upgradeNode{c: c, addr: addrs[i], exe: exes[i]}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			// Learn which node each address is, and do the secondary first.
			for _, n := range nodes {
				s, err := n.wait(ctx, "answer", func(s *state.Snapshot) bool { return true })
				if err != nil {
					return &exitError{1, err}
				}
				n.node = s.LocalNode
			}
			if s, err := nodes[0].wait(ctx, "answer", func(*state.Snapshot) bool { return true }); err == nil && s.VS.PrimaryNode == nodes[0].node {
				nodes[0], nodes[1] = nodes[1], nodes[0]
			}
			for _, n := range nodes {
				if err := n.upgrade(ctx, out, binary, want); err != nil {
					return &exitError{1, fmt.Errorf("upgrade CoServer %d (%s): %w", n.node, n.addr, err)}
				}
			}
			fmt.Fprintf(out, "both CoServers run %s\n", want)
			return nil
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "", "the new ftvs executable")
	cmd.Flags().StringArrayVar(&addrs, "addr", nil, "a CoServer's manager API address (give twice)")
	cmd.Flags().StringArrayVar(&exes, "exe", nil, "the executable path that CoServer's daemon runs from (give twice)")
	cmd.Flags().StringArrayVar(&cas, "ca", nil, "the server certificate to trust for that CoServer (give twice)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the API bearer token")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up after this long")
	return cmd
}

// binaryVersion runs FILE version: the version the daemon reports once it
// runs FILE.
func binaryVersion(file string) (string, error) {
	out, err := exec.Command(file, "version").Output()
	if err != nil {
		return "", fmt.Errorf("--binary %s: does not run `version`: %w", file, err)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || f[0] != "ftvs" {
		return "", fmt.Errorf("--binary %s: not an ftvs executable (version said %q)", file, strings.TrimSpace(string(out)))
	}
	return f[1], nil
}

type upgradeNode struct {
	c    *api.Client
	addr string
	exe  string
	node int
}

// wait polls the node's API (which is down while the daemon re-executes)
// until ok holds.
func (n *upgradeNode) wait(ctx context.Context, what string, ok func(*state.Snapshot) bool) (*state.Snapshot, error) {
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s, err := n.c.Status(cctx)
		cancel()
		if err == nil && ok(s) {
			return s, nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("state: %s", describe(s))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %s to %s: %w (last: %v)", n.addr, what, ctx.Err(), last)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

func describe(s *state.Snapshot) string {
	var b strings.Builder
	for _, c := range s.CoServers {
		fmt.Fprintf(&b, "coserver%d %s %s in_service=%v; ", c.Node, c.Role, c.Version, c.InService)
	}
	return b.String()
}

// inSync: this node and its peer run the VS in lockstep.
func inSync(s *state.Snapshot) bool {
	roles := map[string]int{}
	for _, c := range s.CoServers {
		roles[c.Role]++
	}
	return roles["primary"] == 1 && roles["secondary"] == 1
}

func (n *upgradeNode) upgrade(ctx context.Context, out io.Writer, binary, want string) error {
	if _, err := n.wait(ctx, "be in sync with its peer", inSync); err != nil {
		return err
	}
	t0 := time.Now()
	fmt.Fprintf(out, "CoServer %d: taking out of service\n", n.node)
	if err := n.c.SetInService(ctx, n.node, false); err != nil {
		return fmt.Errorf("take out of service: %w", err)
	}
	if _, err := n.wait(ctx, "be out of service", func(s *state.Snapshot) bool {
		c := s.CoServer(n.node)
		return c != nil && !c.InService
	}); err != nil {
		return err
	}
	if err := replaceExecutable(binary, n.exe); err != nil {
		return err
	}
	fmt.Fprintf(out, "CoServer %d: runtime replaced (%s), bringing back\n", n.node, n.exe)
	if err := n.c.SetInService(ctx, n.node, true); err != nil {
		return fmt.Errorf("bring back into service: %w", err)
	}
	if _, err := n.wait(ctx, "rejoin on "+want, func(s *state.Snapshot) bool {
		c := s.CoServer(n.node)
		return c != nil && c.Version == want && inSync(s)
	}); err != nil {
		return err
	}
	fmt.Fprintf(out, "CoServer %d: back in sync on %s (%s out of the pair)\n", n.node, want, time.Since(t0).Round(time.Millisecond))
	return nil
}

// replaceExecutable copies src next to dst and renames it over dst, so the
// path always holds a whole executable (the old one keeps running until the
// daemon re-executes).
func replaceExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("--binary: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".ftvs-upgrade-*")
	if err != nil {
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("replace %s: %w", dst, err)
	}
	return nil
}

// apiStatus is `ftvs status --api`: the pair as the manager API sees it.
func apiStatus(cmd *cobra.Command, f *ctlFlags) error {
	c, err := f.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	s, err := c.Status(ctx)
	if err != nil {
		return ctlErr(fmt.Errorf("status: %w", err))
	}
	if f.asJSON {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	return state.WriteText(cmd.OutOrStdout(), s, 10)
}

package main

import (
	"context"
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
	var timeout, startTimeout time.Duration
	cmd := &cobra.Command{
		Use:   "upgrade --binary FILE --addr A1 --exe P1 --addr A2 --exe P2 [--ca C1 --ca C2] --token-file F",
		Short: "Rolling upgrade: replace each CoServer's runtime in turn while the VS keeps serving",
		Long: `For each CoServer in turn, the secondary first (the primary keeps the VS
meanwhile), then the other:
  1. waits until the pair is in sync;
  2. takes the CoServer out of service through its manager API (the peer
     carries on alone; the VS never stops; a leaving secondary tells the
     primary first, so it does not wait for the peer timeout; a leaving
     primary hands its role over to its in-sync secondary, which takes over
     at once instead of after the peer timeout);
  3. keeps the old executable as EXE.ftvs-prev and renames FILE over the
     executable the daemon runs from (--exe, the same order as --addr; the
     path must be reachable from here, e.g. run on a CoServer with the
     other's path mounted, or one path per node on a test machine);
  4. brings it back into service: the daemon first runs the new executable's
     start check (coserver --check: loads the config, starts nothing) and only
     then re-executes it; the node rejoins from a snapshot of the running VS;
  5. waits until it reports FILE's version and the pair is in sync again.
Rollback: if the new executable fails its start check, does not answer with
its version within --start-timeout, or does not get in sync within
--timeout, the old executable is renamed back, the CoServer is brought back
on it, and the upgrade stops (exit status 1) with the pair serving on the
old version. A daemon that died after the re-execution comes back on the old
executable when its supervisor (systemd) restarts it.
Compatibility window: one version. The new build reads the old build's
snapshots and runs the VS it restored at the old VS behaviour level (a build
that changes what the VS emits puts the change under a new level) until
both CoServers run the new build; then the primary raises the level through
the log (both apply it at the same input), so a mixed-version pair never
diverges. From then on the old build can no longer join (going back needs
the VS restarted). Never skip a version: upgrade through each one.
Exit status: 1 failed (rolled back, or the pair is left as it was at the
failing step), 2 bad usage.`,
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
			// Learn which node each address is, and do the secondary first:
			// the primary keeps the VS while its peer is away.
			var primary int
			for _, n := range nodes {
				s, err := n.wait(ctx, "be in sync with its peer", inSync)
				if err != nil {
					return &exitError{1, err}
				}
				n.node = s.LocalNode
				for _, c := range s.CoServers {
					if c.Role == "primary" {
						primary = c.Node
					}
				}
			}
			if nodes[0].node == nodes[1].node {
				return &exitError{2, fmt.Errorf("--addr %s and --addr %s are the same CoServer (%d)", nodes[0].addr, nodes[1].addr, nodes[0].node)}
			}
			if nodes[0].node == primary {
				nodes[0], nodes[1] = nodes[1], nodes[0]
			}
			fmt.Fprintf(out, "CoServer %d is the secondary: upgrading it first, then CoServer %d\n", nodes[0].node, nodes[1].node)
			for _, n := range nodes {
				n.startTimeout = startTimeout
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
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "give up (and roll back the CoServer being upgraded) after this long")
	cmd.Flags().DurationVar(&startTimeout, "start-timeout", 30*time.Second, "roll back when the new executable does not answer with its version within this long")
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
	c            *api.Client
	addr         string
	exe          string
	node         int
	startTimeout time.Duration
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

// outOfService: node is out of service.
func outOfService(node int) func(*state.Snapshot) bool {
	return func(s *state.Snapshot) bool {
		c := s.CoServer(node)
		return c != nil && !c.InService
	}
}

// runs: node reports version.
func runs(node int, version string) func(*state.Snapshot) bool {
	return func(s *state.Snapshot) bool {
		c := s.CoServer(node)
		return c != nil && c.Version == version
	}
}

// rejoinedOn: node runs version and the pair is in sync.
func rejoinedOn(node int, version string) func(*state.Snapshot) bool {
	return func(s *state.Snapshot) bool { return runs(node, version)(s) && inSync(s) }
}

func (n *upgradeNode) upgrade(ctx context.Context, out io.Writer, binary, want string) error {
	s, err := n.wait(ctx, "be in sync with its peer", inSync)
	if err != nil {
		return err
	}
	old := "?"
	if c := s.CoServer(n.node); c != nil {
		old = c.Version
	}
	t0 := time.Now()
	fmt.Fprintf(out, "CoServer %d: taking out of service (runs %s)\n", n.node, old)
	if err := n.c.SetInService(ctx, n.node, false); err != nil {
		return fmt.Errorf("take out of service: %w", err)
	}
	if _, err := n.wait(ctx, "be out of service", outOfService(n.node)); err != nil {
		return err
	}
	prev, err := keepPrevious(n.exe)
	if err != nil {
		return n.bringBack(ctx, out, fmt.Errorf("keep the old executable: %w", err))
	}
	if err := replaceExecutable(binary, n.exe); err != nil {
		return n.bringBack(ctx, out, err)
	}
	fmt.Fprintf(out, "CoServer %d: runtime replaced (%s), bringing back\n", n.node, n.exe)
	err = n.c.SetInService(ctx, n.node, true)
	if err != nil {
		err = fmt.Errorf("bring back into service: %w", err)
	} else {
		sctx, cancel := context.WithTimeout(ctx, n.startTimeout)
		_, err = n.wait(sctx, "answer as "+want, runs(n.node, want))
		cancel()
	}
	if err == nil {
		_, err = n.wait(ctx, "rejoin on "+want, rejoinedOn(n.node, want))
	}
	if err != nil {
		return n.rollBack(out, prev, old, err)
	}
	_ = os.Remove(prev)
	fmt.Fprintf(out, "CoServer %d: back in sync on %s (%s out of the pair)\n", n.node, want, time.Since(t0).Round(time.Millisecond))
	return nil
}

// bringBack returns the node to service on the executable it has, after a
// failure before the new one was in place.
func (n *upgradeNode) bringBack(ctx context.Context, out io.Writer, cause error) error {
	fmt.Fprintf(out, "CoServer %d: %v; bringing it back unchanged\n", n.node, cause)
	if err := n.c.SetInService(ctx, n.node, true); err != nil {
		return fmt.Errorf("%w; bringing it back failed too: %v", cause, err)
	}
	return cause
}

// rollBack renames the old executable back over the new one and brings the
// node back on it. It has its own time budget: the upgrade's may be spent.
func (n *upgradeNode) rollBack(out io.Writer, prev, old string, cause error) error {
	fmt.Fprintf(out, "CoServer %d: the new runtime failed (%v); rolling back to %s\n", n.node, cause, old)
	if err := os.Rename(prev, n.exe); err != nil {
		return fmt.Errorf("%w; ROLLBACK FAILED: restore %s: %v", cause, n.exe, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The node is out of service (its start check refused the new
	// executable), runs the new one without getting in sync, or is gone
	// (it died after the exec; its supervisor restarts it, on the old
	// executable now).
	sctx, scancel := context.WithTimeout(ctx, n.startTimeout)
	s, err := n.wait(sctx, "answer", func(*state.Snapshot) bool { return true })
	scancel()
	if err != nil {
		return fmt.Errorf("%w; rolled back the executable, but CoServer %d does not answer (%v): restart its daemon, it runs %s again", cause, n.node, err, old)
	}
	if c := s.CoServer(n.node); c != nil && c.InService && c.Version != old {
		// Running the new executable: out of service re-executes the old.
		if err := n.c.SetInService(ctx, n.node, false); err != nil {
			return fmt.Errorf("%w; rolled back the executable, but taking CoServer %d out failed: %v", cause, n.node, err)
		}
		if _, err := n.wait(ctx, "be out of service", outOfService(n.node)); err != nil {
			return fmt.Errorf("%w; rolled back the executable: %v", cause, err)
		}
	}
	if err := n.c.SetInService(ctx, n.node, true); err != nil { // a no-op when in service
		return fmt.Errorf("%w; rolled back the executable, but bringing CoServer %d back failed: %v", cause, n.node, err)
	}
	if _, err := n.wait(ctx, "rejoin on "+old, rejoinedOn(n.node, old)); err != nil {
		return fmt.Errorf("%w; rolled back the executable, but CoServer %d did not rejoin: %v", cause, n.node, err)
	}
	fmt.Fprintf(out, "CoServer %d: rolled back: in sync on %s again\n", n.node, old)
	return fmt.Errorf("rolled back to %s (the pair serves on it): %w", old, cause)
}

// keepPrevious hard-links exe as exe.ftvs-prev (a copy where links fail),
// for the rollback.
func keepPrevious(exe string) (string, error) {
	prev := exe + ".ftvs-prev"
	if err := os.Remove(prev); err != nil && !os.IsNotExist(err) {
		return "", err
	}
	if err := os.Link(exe, prev); err == nil {
		return prev, nil
	}
	if err := replaceExecutable(exe, prev); err != nil {
		return "", err
	}
	return prev, nil
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
	return writePairStatus(cmd.OutOrStdout(), s, f.asJSON)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ftvs/ftvs/ftvs/manager/api"
	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// ctlFlags say how `ftvs ctl` reaches the manager API.
type ctlFlags struct {
	addr, ca, tokenFile, cert, key string
	asJSON                         bool
	timeout                        time.Duration
}

func (f *ctlFlags) client() (*api.Client, error) {
	if f.addr == "" {
		return nil, &exitError{2, errors.New("give --addr HOST:PORT (the CoServer's manager.listen)")}
	}
	o := api.ClientOptions{Addr: f.addr, CertFile: f.cert, KeyFile: f.key, Token: os.Getenv("FTVS_TOKEN")}
	o.CAFile = f.ca
	if o.CAFile == "" {
		if p := filepath.Join(api.DefaultStateDir, api.CertFileName); fileExists(p) {
			o.CAFile = p
		}
	}
	tf := f.tokenFile
	if tf == "" && o.Token == "" && f.cert == "" {
		if p := filepath.Join(api.DefaultStateDir, api.TokenFileName); fileExists(p) {
			tf = p
		}
	}
	if tf != "" {
		b, err := os.ReadFile(tf)
		if err != nil {
			return nil, &exitError{2, fmt.Errorf("token: %w", err)}
		}
		o.Token = strings.TrimSpace(string(b))
	}
	c, err := api.NewClient(o)
	if err != nil {
		return nil, &exitError{2, err}
	}
	return c, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// ctlErr maps API refusals to exit codes: 3 refused auth, 4 refused control,
// 1 anything else (unreachable).
func ctlErr(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var ae *api.APIError
	if errors.As(err, &ae) {
		switch ae.Status {
		case 401, 403:
			return &exitError{3, err}
		case 409:
			return &exitError{4, err}
		}
		return &exitError{1, err}
	}
	return &exitError{1, err}
}

func newCtlCmd() *cobra.Command {
	f := &ctlFlags{}
	cmd := &cobra.Command{
		Use:   "ctl",
		Short: "Show and control a CoServer pair through its manager API",
		Long: `Talks HTTPS to a CoServer's manager API (manager.listen, on the management
network). Authentication: a bearer token (--token-file, or FTVS_TOKEN, or the
daemon's generated ` + api.DefaultStateDir + `/api-token when run on the CoServer)
or a client certificate (--cert/--key) signed by manager.tls.client_ca. The
server certificate is checked against --ca (default: the daemon's generated
` + api.DefaultStateDir + `/api-cert.pem; copy it to the operator's machine).
Exit status: 1 unreachable or failed, 2 bad usage, 3 authentication refused,
4 control refused by the daemon.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.addr, "addr", "", "the CoServer's management address HOST:PORT")
	pf.StringVar(&f.ca, "ca", "", "certificate to trust for the server (PEM)")
	pf.StringVar(&f.tokenFile, "token-file", "", "file holding the bearer token")
	pf.StringVar(&f.cert, "cert", "", "client certificate (PEM) for mTLS")
	pf.StringVar(&f.key, "key", "", "client key (PEM) for mTLS")
	pf.BoolVar(&f.asJSON, "json", false, "print JSON")
	pf.DurationVar(&f.timeout, "timeout", 10*time.Second, "give up after this long")

	run := func(fn func(ctx context.Context, c *api.Client, out io.Writer) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), f.timeout)
			defer cancel()
			if err := fn(ctx, c, cmd.OutOrStdout()); err != nil {
				return ctlErr(err)
			}
			return nil
		}
	}
	control := func(use, short string, args cobra.PositionalArgs, do func(ctx context.Context, c *api.Client, args []string) (string, error)) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, args []string) error {
			if err := args0Check(cmd, args); err != nil {
				return err
			}
			return run(func(ctx context.Context, c *api.Client, out io.Writer) error {
				what, err := do(ctx, c, args)
				if err != nil {
					return err
				}
				if f.asJSON {
					return printJSON(out, map[string]any{"ok": true, "done": what})
				}
				_, err = fmt.Fprintln(out, "done:", what)
				return err
			})(cmd, args)
		}}
	}
	node := func(s string) (int, error) {
		n, err := strconv.Atoi(s)
		if err != nil || (n != 1 && n != 2) {
			return 0, &exitError{2, fmt.Errorf("node %q: must be 1 or 2", s)}
		}
		return n, nil
	}

	status := &cobra.Command{Use: "status", Short: "Every component's state and the recent events", Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *api.Client, out io.Writer) error {
			s, err := c.Status(ctx)
			if err != nil {
				return err
			}
			return writePairStatus(out, s, f.asJSON)
		})}
	events := &cobra.Command{Use: "events", Short: "The recent events", Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *api.Client, out io.Writer) error {
			evs, err := c.Events(ctx)
			if err != nil {
				return err
			}
			if f.asJSON {
				return printJSON(out, evs)
			}
			return state.WriteText(out, &state.Snapshot{Events: evs}, -1)
		})}
	metricsCmd := &cobra.Command{Use: "metrics", Short: "The Prometheus exposition", Args: cobra.NoArgs,
		RunE: run(func(ctx context.Context, c *api.Client, out io.Writer) error {
			text, err := c.Metrics(ctx)
			if err == nil {
				_, err = io.WriteString(out, text)
			}
			return err
		})}
	watch := &cobra.Command{Use: "watch", Short: "Print the state at every change until interrupted", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			out := cmd.OutOrStdout()
			err = c.Watch(ctx, func(s state.Snapshot) error {
				if f.asJSON {
					return json.NewEncoder(out).Encode(s) // one object per line
				}
				fmt.Fprintf(out, "--- %s (version %d)\n", s.At.UTC().Format(time.RFC3339), s.Version)
				return state.WriteText(out, &s, 5)
			})
			if err != nil {
				return ctlErr(err)
			}
			return nil
		}}
	var keep int
	resolve := control("resolve-split-brain --keep NODE", "Resolve a split brain: keep NODE's data, the other node discards its changes", cobra.NoArgs,
		func(ctx context.Context, c *api.Client, _ []string) (string, error) {
			if keep != 1 && keep != 2 {
				return "", &exitError{2, errors.New("--keep 1 or --keep 2 is required: say explicitly whose data survives")}
			}
			return fmt.Sprintf("split brain resolved keeping node %d", keep), c.ResolveSplitBrain(ctx, keep)
		})
	resolve.Flags().IntVar(&keep, "keep", 0, "the node whose data survives (1 or 2)")

	vs := &cobra.Command{Use: "vs", Short: "Start or stop the virtual server"}
	vs.AddCommand(
		control("start", "Start the VS", cobra.NoArgs, func(ctx context.Context, c *api.Client, _ []string) (string, error) {
			return "VS started", c.StartVS(ctx)
		}),
		control("stop", "Stop the VS", cobra.NoArgs, func(ctx context.Context, c *api.Client, _ []string) (string, error) {
			return "VS stopped", c.StopVS(ctx)
		}))
	cmd.AddCommand(status, events, watch, metricsCmd, vs, resolve,
		control("out NODE", "Take a CoServer out of service", cobra.ExactArgs(1), func(ctx context.Context, c *api.Client, a []string) (string, error) {
			n, err := node(a[0])
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("CoServer %d out of service", n), c.SetInService(ctx, n, false)
		}),
		control("in NODE", "Bring a CoServer back into service", cobra.ExactArgs(1), func(ctx context.Context, c *api.Client, a []string) (string, error) {
			n, err := node(a[0])
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("CoServer %d back in service", n), c.SetInService(ctx, n, true)
		}),
		control("move-port NODE", "Move the VS's network port to NODE's redirected NIC", cobra.ExactArgs(1), func(ctx context.Context, c *api.Client, a []string) (string, error) {
			n, err := node(a[0])
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("VS port on CoServer %d", n), c.MovePort(ctx, n)
		}),
		control("resync DISK", "Start a resync of a virtual disk", cobra.ExactArgs(1), func(ctx context.Context, c *api.Client, a []string) (string, error) {
			return "resync of " + a[0] + " started", c.StartResync(ctx, a[0])
		}),
		control("verify DISK", "Start an online verify of a virtual disk", cobra.ExactArgs(1), func(ctx context.Context, c *api.Client, a []string) (string, error) {
			return "verify of " + a[0] + " started", c.StartVerify(ctx, a[0])
		}),
	)
	return cmd
}

func args0Check(cmd *cobra.Command, args []string) error {
	if cmd.Args != nil {
		if err := cmd.Args(cmd, args); err != nil {
			return &exitError{2, err}
		}
	}
	return nil
}

func printJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writePairStatus prints the manager API's snapshot as JSON or as text with
// its last ten events (ftvs ctl status, ftvs status --api).
func writePairStatus(out io.Writer, s *state.Snapshot, asJSON bool) error {
	if asJSON {
		return printJSON(out, s)
	}
	return state.WriteText(out, s, 10)
}

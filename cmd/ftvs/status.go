package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
	"github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/spf13/cobra"
)

func newStatusCmd() *cobra.Command {
	var cfgPath, addr string
	var asJSON, hash bool
	apiF := &ctlFlags{}
	cmd := &cobra.Command{
		Use:   "status [--config FILE | --addr HOST:PORT] [--json]",
		Short: "Show a CoServer's role, links, log position, lag and last events",
		Long: `Asks a running ftvs coserver for its status over the management network
(the daemon serves it on management.listen). With --config the address is
read from the CoServer config. Exit status 1 when the daemon does not answer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if apiF.addr != "" {
				apiF.asJSON = asJSON
				return apiStatus(cmd, apiF)
			}
			if addr == "" {
				if cfgPath == "" {
					return &exitError{2, fmt.Errorf("give --config FILE or --addr HOST:PORT")}
				}
				cfg, err := config.Load(cfgPath)
				if err != nil {
					return &exitError{2, err}
				}
				addr = cfg.Management.Listen
			}
			st, err := coserver.FetchStatus(addr, 3*time.Second, hash)
			if err != nil {
				return &exitError{1, fmt.Errorf("status: %w", err)}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the CoServer config (management.listen is asked)")
	cmd.Flags().StringVar(&addr, "addr", "", "the CoServer's management address")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&hash, "hash", false, "include the VS state hash (costs a snapshot)")
	cmd.Flags().StringVar(&apiF.addr, "api", "", "ask the manager API at HOST:PORT instead (the whole pair; HTTPS, token or client certificate as for ftvs ctl)")
	cmd.Flags().StringVar(&apiF.ca, "ca", "", "with --api: certificate to trust for the server (PEM)")
	cmd.Flags().StringVar(&apiF.tokenFile, "token-file", "", "with --api: file holding the bearer token")
	cmd.Flags().StringVar(&apiF.cert, "cert", "", "with --api: client certificate (PEM)")
	cmd.Flags().StringVar(&apiF.key, "key", "", "with --api: client key (PEM)")
	return cmd
}

func printStatus(w io.Writer, st *coserver.Status) {
	fmt.Fprintf(w, "node %d: %s", st.Node, st.Role)
	if st.Role == "primary" {
		fmt.Fprintf(w, " (secondary: %s)", st.Peer)
	}
	if st.Fenced {
		fmt.Fprint(w, " FENCED (witness lease lapsed)")
	}
	fmt.Fprintf(w, "\npeer: alive=%v role=%s\n", st.PeerAlive, orDash(st.PeerRole))
	fmt.Fprintf(w, "log: seq %d, peer applied %d, lag %d, held outputs %d\n", st.Seq, st.PeerApplied, st.Lag, st.HeldOutputs)
	fmt.Fprintf(w, "divergences %d, snapshots sent %d, last reintegration pause %s\n", st.Divergences, st.Snapshots, time.Duration(st.LastPauseUS)*time.Microsecond)
	for _, l := range st.Links {
		state := "down"
		if l.Up {
			state = "up"
		}
		if l.Active {
			state += ", active"
		}
		fmt.Fprintf(w, "%s: %s, rtt %s, auth failures %d\n", l.Name, state, time.Duration(l.RTTUS)*time.Microsecond, l.AuthFails)
	}
	r := st.Redirected
	fmt.Fprintf(w, "redirected %s: carrier=%v via-peer=%v carrying-peer=%v rx %d tx %d\n", r.Interface, r.Carrier, r.ViaPeer, r.PeerViaUs, r.RxFrames, r.TxFrames)
	fmt.Fprintf(w, "bytes rx %d tx %d, failovers %d\n", r.RxBytes, r.TxBytes, st.Failovers)
	if h := st.OutputHold; h.Count > 0 {
		fmt.Fprintf(w, "output hold: %d batches, mean %s\n", h.Count, time.Duration(h.SumS/float64(h.Count)*1e9).Round(time.Microsecond))
	}
	if len(st.Services) > 0 {
		fmt.Fprint(w, "requests:")
		for _, k := range slices.Sorted(maps.Keys(st.Services)) {
			fmt.Fprintf(w, " %s %d", k, st.Services[k])
		}
		fmt.Fprintln(w)
	}
	for _, d := range st.Disks {
		s := d.State
		if !d.Attached {
			s += ", DETACHED"
		}
		if d.Syncing {
			s += ", syncing"
			if d.Source {
				s += fmt.Sprintf(" (source, %.1f%%, %d B/s)", d.Progress*100, d.RateBps)
			}
		}
		if d.Blocked != "" {
			s += ", blocked: " + d.Blocked
		}
		fmt.Fprintf(w, "disk %s: %s, resynced %d bytes\n", d.Name, s, d.ResyncedBytes)
	}
	if wt := st.Witness; wt != nil {
		s := "not asked (only the primary asks)"
		if wt.Checked {
			s = "unreachable: " + wt.LastError
			if wt.Reachable {
				s = fmt.Sprintf("reachable, lease held=%v", wt.Holder)
			}
		}
		fmt.Fprintf(w, "witness %s: %s\n", wt.Address, s)
	}
	if st.VSStopped {
		fmt.Fprintf(w, "VS STOPPED by the operator at %s (ftvs ctl vs start)\n", st.VSStoppedAt.Format(time.DateTime))
	}
	if st.StateHash != "" {
		fmt.Fprintf(w, "state hash (seq:hash): %s\n", st.StateHash)
	}
	evs := st.Events
	if len(evs) > 10 {
		evs = evs[len(evs)-10:]
	}
	for _, e := range evs {
		text := e.Detail
		if e.Seq != 0 {
			text = strings.TrimSpace(fmt.Sprintf("seq %d %s", e.Seq, e.Detail))
		}
		if e.Repeat > 0 {
			text += fmt.Sprintf(" (x%d)", e.Repeat+1)
		}
		fmt.Fprintf(w, "  %s %-14s %s\n", e.Time.Format("15:04:05.000"), e.Kind, text)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

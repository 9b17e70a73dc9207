package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver"
	"github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/spf13/cobra"
)

func newCoserverCmd() *cobra.Command {
	var cfgPath string
	var verbose, check bool
	cmd := &cobra.Command{
		Use:   "coserver --config FILE [--check]",
		Short: "Run this CoServer of a fault-tolerant pair (the lockstep runtime)",
		Long: `Runs one CoServer: the virtual server described in the config executes in
lockstep with the peer CoServer's over the CoServer links; the primary's
outputs leave on the redirected NIC only once the peer has applied their
input. A fresh pair starts node 1 as primary and node 2 joining; a restarted
node joins the running primary. Status is served as JSON on management.listen
(see ftvs status). Stops on SIGINT or SIGTERM. With --check it only loads
and validates the config and exits (the start check a daemon runs on a new
executable before re-executing it in a rolling upgrade).
Exit status: 2 bad config (nothing started), 1 runtime failure.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return &exitError{2, err}
			}
			diverge, err := coserver.DivergeFromEnv()
			if err != nil {
				return &exitError{2, err}
			}
			if check {
				fmt.Fprintf(cmd.OutOrStdout(), "ftvs %s: config %s ok (node %d)\n", version, cfgPath, cfg.Node)
				return nil
			}
			lvl := slog.LevelInfo
			if verbose {
				lvl = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: lvl}))
			if diverge != nil {
				log.Warn("TEST FAULT HOOK ACTIVE: this replica will diverge on purpose")
			}
			mo := coserver.ManageOptions{Version: version, Log: log}
			mo.Exe, _ = os.Executable() // now, before a rolling upgrade renames over it
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			runStopped := func() error {
				if err := coserver.RunOutOfService(ctx, cfg, mo); err != nil {
					return &exitError{1, fmt.Errorf("coserver: %w", err)}
				}
				return nil
			}
			// A resync the operator asked for marks this copy before it
			// is opened; a VS the operator stopped while this node was
			// away stays stopped.
			if err := coserver.ApplyDiskRequests(cfg, log); err != nil {
				return &exitError{1, fmt.Errorf("coserver: %w", err)}
			}
			coserver.AdoptPeerStop(cfg, log)
			if coserver.OutOfService(cfg) || coserver.VSStopped(cfg) {
				return runStopped()
			}
			d, err := coserver.New(cfg, coserver.Options{Log: log, Diverge: diverge})
			if err != nil {
				return &exitError{1, fmt.Errorf("coserver: %w", err)}
			}
			closeDaemon := sync.OnceValue(d.Close)
			defer closeDaemon()
			rctx, rstop := context.WithCancel(ctx)
			defer rstop()
			d.SetRunCancel(rstop) // a VS stop ends Run
			mctx, mstop := context.WithCancel(ctx)
			m, err := d.StartManager(mctx, mo)
			if err != nil {
				mstop()
				return &exitError{1, fmt.Errorf("coserver: %w", err)}
			}
			log.Info("coserver: running", "node", cfg.Node, "management", cfg.Management.Listen, "version", version)
			err = d.Run(rctx)
			mstop()
			if m != nil {
				_ = m.Wait()
			}
			if err == nil && ctx.Err() == nil && coserver.VSStopped(cfg) {
				// The operator stopped the VS: copies flushed and closed
				// clean, then only status and the manager are served.
				if cerr := closeDaemon(); cerr != nil {
					log.Error("coserver: closing after the VS stop", "err", cerr)
				}
				return runStopped()
			}
			if err != nil {
				return &exitError{1, fmt.Errorf("coserver: %w", err)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "the CoServer config file (YAML)")
	cmd.Flags().BoolVar(&verbose, "verbose", false, "debug logging")
	cmd.Flags().BoolVar(&check, "check", false, "load and validate the config, start nothing, exit 0 if it is usable")
	_ = cmd.MarkFlagRequired("config")
	cmd.AddCommand(newStallmeterCmd())
	return cmd
}

// newStallmeterCmd reads a download from stdin (e.g. curl's output) and
// reports its size, sha256 and the longest gap between arrivals: the stall
// a client saw. Used by make demo and the benchmarks.
func newStallmeterCmd() *cobra.Command {
	var out, marks string
	cmd := &cobra.Command{
		Use:    "stallmeter [--out FILE] [--marks FILE]",
		Short:  "Measure a stream on stdin: bytes, sha256, longest stall (JSON)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var w io.Writer = io.Discard
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return &exitError{2, err}
				}
				defer f.Close()
				bw := bufio.NewWriterSize(f, 1<<20)
				defer bw.Flush()
				w = bw
			}
			r := coserver.MeasureStream(cmd.InOrStdin(), w)
			// Marks are event times (date +%s%N, one a line) written while
			// the stream ran, e.g. kills: report the stall around each.
			var around []float64
			if marks != "" {
				b, _ := os.ReadFile(marks)
				for _, l := range strings.Fields(string(b)) {
					ns, err := strconv.ParseInt(l, 10, 64)
					if err != nil {
						continue
					}
					around = append(around, float64(r.StallAround(time.Unix(0, ns), 3*time.Second))/float64(time.Millisecond))
				}
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
				"bytes": r.Bytes, "sha256": hex.EncodeToString(r.Sum[:]), "max_stall_ms": float64(r.MaxStall) / float64(time.Millisecond),
				"stall_at_byte": r.StallAt, "seconds": r.Elapsed.Seconds(), "error": errString(r.Err),
				"stalls_at_marks_ms": around,
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "also write the stream to FILE")
	cmd.Flags().StringVar(&marks, "marks", "", "file of event times (unix ns, one a line) to report the stall around")
	return cmd
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

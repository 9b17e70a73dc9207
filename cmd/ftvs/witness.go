package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/ftvs/witness"
	"github.com/spf13/cobra"
)

func newWitnessCmd() *cobra.Command {
	var listen, key, keyFile string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "witness --listen ADDR (--key HEX | --key-file FILE) [--ttl 2s]",
		Short: "Grant the pair's single lease (split-brain arbiter for SplitSite pairs)",
		Long: `Runs the witness a CoServer pair names in its config (witness: host:port).
It grants one lease at a time, to one node, for --ttl; requests are
authenticated with the pair key. A primary renews its lease while it serves;
a secondary may go live only when the witness grants it the lease.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" {
				return &exitError{2, errors.New("--listen is required")}
			}
			text := key
			if keyFile != "" {
				b, err := os.ReadFile(keyFile)
				if err != nil {
					return &exitError{2, fmt.Errorf("--key-file: %w", err)}
				}
				text = strings.TrimSpace(string(b))
			}
			k, err := hex.DecodeString(text)
			if err != nil || len(k) < 32 {
				return &exitError{2, errors.New("--key: want the pair key, at least 64 hex digits")}
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return &exitError{1, fmt.Errorf("witness: %w", err)}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			srv := &http.Server{Handler: witness.NewServer(k, ttl, log).Handler(), ReadHeaderTimeout: 5 * time.Second}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
			log.Info("witness: serving", "listen", ln.Addr().String(), "ttl", ttl)
			if err := srv.Serve(ln); err != http.ErrServerClosed {
				return &exitError{1, fmt.Errorf("witness: %w", err)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve on (host:port)")
	cmd.Flags().StringVar(&key, "key", "", "the pair key (hex)")
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the pair key (hex)")
	cmd.Flags().DurationVar(&ttl, "ttl", witness.DefaultTTL, "lease length")
	return cmd
}

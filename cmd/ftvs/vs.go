package main

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
	"github.com/ftvs/ftvs/ftvs/port"
	"github.com/ftvs/ftvs/ftvs/vsrun"
	"github.com/spf13/cobra"
)

func newVSCmd() *cobra.Command {
	vs := &cobra.Command{
		Use:   "vs",
		Short: "Run a virtual server on its own (no lockstep), for testing and measuring",
	}
	vs.AddCommand(newVSRunCmd())
	return vs
}

type vsRunFlags struct {
	iface, mac, ip, gw, root, portKind, isnKey, record string
	bootDisk                                           string
	httpUpload                                         string
	httpMaxUpload                                      int64
	httpPort                                           uint16
	mtu, batch                                         int
	svc                                                vsServiceFlags
}

func newVSRunCmd() *cobra.Command {
	var f vsRunFlags
	cmd := &cobra.Command{
		Use:   "run --iface IF --mac MAC --ip ADDR/PREFIX [--gw ADDR] (--root DIR | --boot-disk FILE) [--port afpacket|tap]",
		Short: "Serve a directory or a VS boot disk over HTTP as one solo virtual server on a Linux interface",
		Long: `Runs one virtual server (the deterministic machine: its own TCP/IP stack and
HTTP service) on a Linux interface, without a peer. Frames move through a
promiscuous AF_PACKET socket on --iface (filtered on the VS MAC plus broadcast
and multicast), or through the TAP device --iface (created if missing). Both
use virtio-net headers, so 64 KiB TCP super-segments cross in one frame.
The interface needs no IP address of its own. Needs CAP_NET_RAW/CAP_NET_ADMIN.
With --boot-disk the files come from the FAT32 VS boot disk (an image, or a
vdisk copy whose data area holds it) instead of a directory; uploads go into
it and are flushed when the VS stops.
Stops on SIGINT or SIGTERM and prints its counters.`,
		Example: `  ftvs vs run --iface eth1 --mac 02:00:00:00:00:01 --ip 192.0.2.10/24 --gw 192.0.2.1 --root /srv/www
  ftvs vs run --iface eth1 --mac 02:00:00:00:00:01 --ip 192.0.2.10/24 --boot-disk /dev/disk/by-partlabel/ftvs-vd-boot --ftp`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return &exitError{2, err}
			}
			cfg.Event = func(seq uint64, text string) {
				fmt.Fprintf(cmd.ErrOrStderr(), "ftvs vs: event at input %d: %s\n", seq, text)
			}
			var log *inputlog.Writer
			if f.record != "" {
				cfg.Record = func(in machine.Input) error { log.Input(in); return nil }
			}
			vsrun.TuneGC()
			solo, err := vsrun.Open(cfg)
			if err != nil {
				return &exitError{1, fmt.Errorf("vs run: %w", err)}
			}
			defer solo.Close()
			if f.record != "" {
				out, err := os.Create(f.record)
				if err != nil {
					return &exitError{1, fmt.Errorf("vs run: --record: %w", err)}
				}
				defer out.Close()
				if solo.Boot != nil {
					log, err = vsrun.NewBootDiskRecording(out, solo.Machine.Config(), solo)
				} else {
					log, err = vsrun.NewRecording(out, solo.Machine.Config(), solo.Store)
				}
				if err != nil {
					return &exitError{1, fmt.Errorf("vs run: --record %s: %w", f.record, err)}
				}
				defer func() {
					if err := log.Close(); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "ftvs vs: --record %s: %v\n", f.record, err)
					}
				}()
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "ftvs vs: serving %s on %s (%s) as %s/%d, MAC %s, MTU %d\n",
				f.root+f.bootDisk, f.iface, f.portKind, machine.FormatIPv4(cfg.IP), cfg.PrefixLen, machine.FormatMAC(cfg.MAC), solo.Config.MTU)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			runErr := solo.Run(ctx)
			st, ps := solo.Driver.Stats(), solo.Port.Stats()
			fmt.Fprintf(cmd.ErrOrStderr(), "ftvs vs: inputs %d (frames %d, ticks %d), frames out %d (%d GSO); port rx %d frames %d bytes (%d GSO, %d bad), tx %d frames %d bytes (%d errors)\n",
				st.Inputs, st.Frames, st.Ticks, st.FramesOut, st.GSOOut, ps.RxFrames, ps.RxBytes, ps.RxGSO, ps.RxDropBad, ps.TxFrames, ps.TxBytes, ps.TxErrors)
			if runErr != nil {
				return &exitError{1, fmt.Errorf("vs run: %w", runErr)}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.iface, "iface", "", "interface to run on (required)")
	fl.StringVar(&f.mac, "mac", "", "the VS's MAC, e.g. 02:00:00:00:00:01 (required)")
	fl.StringVar(&f.ip, "ip", "", "the VS's address and prefix, e.g. 10.0.0.2/24 (required)")
	fl.StringVar(&f.gw, "gw", "", "default gateway (optional: without it only on-link clients are reached)")
	fl.StringVar(&f.root, "root", "", "directory served over HTTP (this or --boot-disk)")
	fl.StringVar(&f.bootDisk, "boot-disk", "", "FAT32 VS boot disk served instead of --root: an image file, a partition, or a vdisk copy")
	fl.StringVar(&f.portKind, "port", string(port.Default), "frame I/O: afpacket or tap")
	fl.Uint16Var(&f.httpPort, "http-port", 80, "TCP port of the HTTP service")
	fl.StringVar(&f.httpUpload, "http-upload", "", "allow HTTP PUT of files under this path prefix, e.g. /upload/ (the files are opened read-write)")
	fl.Int64Var(&f.httpMaxUpload, "http-max-upload", 0, "largest HTTP PUT body in bytes (0: 4 GiB - 1)")
	fl.IntVar(&f.mtu, "mtu", 0, "IP MTU (0: the interface's)")
	fl.IntVar(&f.batch, "batch", 0, fmt.Sprintf("frames read per round before outputs are written (0: %d)", vsrun.DefaultBatch))
	fl.StringVar(&f.isnKey, "isn-key", "", "32 hex digits keying TCP initial sequence numbers (default: random)")
	fl.StringVar(&f.record, "record", "", "write the session's input log (config, the served files, every input) to this file, for replay")
	f.svc.add(fl)
	return cmd
}

// config checks the flags and names the one that is wrong.
func (f *vsRunFlags) config() (vsrun.SoloConfig, error) {
	var c vsrun.SoloConfig
	for _, req := range []struct{ name, val string }{{"--iface", f.iface}, {"--mac", f.mac}, {"--ip", f.ip}} {
		if req.val == "" {
			return c, fmt.Errorf("%s is required (see ftvs vs run --help)", req.name)
		}
	}
	if (f.root == "") == (f.bootDisk == "") {
		return c, fmt.Errorf("give one of --root DIR and --boot-disk FILE (see ftvs vs run --help)")
	}
	var err error
	c.Iface, c.Root, c.BootDisk, c.HTTPPort, c.Batch = f.iface, f.root, f.bootDisk, f.httpPort, f.batch
	if f.httpUpload != "" && (!strings.HasPrefix(f.httpUpload, "/") || strings.Trim(f.httpUpload, "/") == "" || strings.Contains("/"+f.httpUpload+"/", "/../")) {
		return c, fmt.Errorf("--http-upload %q: want an absolute path prefix below the root, e.g. /upload/", f.httpUpload)
	}
	if f.httpMaxUpload < 0 || f.httpMaxUpload > 1<<32-1 {
		return c, fmt.Errorf("--http-max-upload %d: want 0..4294967295", f.httpMaxUpload)
	}
	c.HTTPUpload, c.HTTPMaxUpload = f.httpUpload, f.httpMaxUpload
	if c.MAC, err = machine.ParseMAC(f.mac); err != nil {
		return c, fmt.Errorf("--mac: %w", err)
	}
	if c.MAC[0]&1 != 0 {
		return c, fmt.Errorf("--mac %s: a multicast address cannot be a server's MAC", f.mac)
	}
	if c.IP, c.PrefixLen, err = machine.ParseIPv4Prefix(f.ip); err != nil {
		return c, fmt.Errorf("--ip: %w", err)
	}
	if f.gw != "" {
		if c.Gateway, err = machine.ParseIPv4(f.gw); err != nil {
			return c, fmt.Errorf("--gw: %w", err)
		}
	}
	switch k := port.Kind(f.portKind); k {
	case port.AFPacket, port.TAP:
		c.PortKind = k
	default:
		return c, fmt.Errorf("--port %q: want afpacket or tap", f.portKind)
	}
	if f.mtu != 0 && (f.mtu < 576 || f.mtu > 65535) {
		return c, fmt.Errorf("--mtu %d: want 576..65535 (or 0 for the interface's)", f.mtu)
	}
	c.MTU = f.mtu
	if f.batch < 0 || f.batch > 4096 {
		return c, fmt.Errorf("--batch %d: want 0..4096", f.batch)
	}
	if f.httpPort == 0 {
		return c, fmt.Errorf("--http-port 0: want 1..65535")
	}
	if f.isnKey != "" {
		k, err := hex.DecodeString(f.isnKey)
		if err != nil || len(k) != 16 {
			return c, fmt.Errorf("--isn-key: want 32 hex digits")
		}
		copy(c.ISNKey[:], k)
	}
	if f.root != "" {
		if st, err := os.Stat(f.root); err != nil {
			return c, fmt.Errorf("--root: %w", err)
		} else if !st.IsDir() {
			return c, fmt.Errorf("--root %s: not a directory", f.root)
		}
	} else if st, err := os.Stat(f.bootDisk); err != nil {
		return c, fmt.Errorf("--boot-disk: %w", err)
	} else if st.IsDir() {
		return c, fmt.Errorf("--boot-disk %s: a directory (use --root for a directory)", f.bootDisk)
	}
	if err := f.svc.apply(&c); err != nil {
		return c, err
	}
	if f.record != "" && c.NBD != nil {
		return c, fmt.Errorf("--record cannot replay NBD exports: drop --nbd-export")
	}
	if f.record != "" && f.bootDisk == "" && (c.FTPWrite || c.HTTPUpload != "") {
		// A directory is recorded as the files read; a boot disk as its image.
		// The log describes the files read, not disks or uploads.
		return c, fmt.Errorf("--record replays uploads only into a boot disk: drop FTP write access and --http-upload, or use --boot-disk")
	}
	return c, nil
}

package install

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/vishvananda/netlink"

	"github.com/ftvs/ftvs/hwcheck/compare"
	"github.com/ftvs/ftvs/hwcheck/inventory"
	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/host"
	"github.com/ftvs/ftvs/installer/layout"
	"github.com/ftvs/ftvs/installer/pairing"
	"github.com/ftvs/ftvs/installer/roles"
)

// Options of one install run.
type Options struct {
	Config    *config.Config
	ConfigRaw []byte         // the config as given, kept on the system partition
	Machine   config.Machine // nil: this machine
	// Inventory is a snapshot tarball or inventory JSON to use instead of
	// the live inventory (tests, or a machine whose DMI is read elsewhere).
	Inventory string
	DryRun    bool
	StateDir  string // where the runtime config goes for launch
	BootFiles string // directory copied into the ESP ("" = none)
	// VSFiles is a directory copied into the VS boot disk's www/ (what
	// HTTP and FTP serve) next to the index page; "" takes
	// StateDir/vs-content when it exists (files staged in the image).
	VSFiles string
	Out     io.Writer
	// Launch execs the runtime with the config file; nil when the runtime
	// is not part of this build.
	Launch func(configPath string) error
	// ConfirmPlan shows the plan to the operator and asks to go on (the
	// wizard); nil goes on.
	ConfirmPlan func(plan string) bool
	PairTimeout time.Duration
}

// Errors with their own exit codes.
var (
	ErrMismatch       = errors.New("hardware mismatch")
	ErrRuntimeMissing = errors.New("runtime not installed")
	ErrDeclined       = errors.New("the operator declined the plan; nothing was written")
)

// Outcome is what a run did.
type Outcome struct {
	Plan          *Plan
	Pairing       *pairing.Result
	RuntimeConfig string // path of the runtime config written for launch
}

type runner struct {
	o     Options
	step  int
	start time.Time
	log   bytes.Buffer // kept on the system partition
}

const steps = 6

func (r *runner) begin(name string) {
	r.step++
	r.say("[%d/%d] %s (at %.1fs)", r.step, steps, name, time.Since(r.start).Seconds())
}

func (r *runner) say(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintln(r.o.Out, line)
	fmt.Fprintf(&r.log, "%s %s\n", time.Now().UTC().Format(time.RFC3339), line)
}

func (r *runner) detail(s string) {
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		r.say("      %s", l)
	}
}

// Run executes the install.
func Run(ctx context.Context, o Options) (*Outcome, error) {
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Machine == nil {
		o.Machine = host.Live()
	}
	if o.StateDir == "" {
		o.StateDir = "/var/lib/ftvs"
	}
	if o.PairTimeout == 0 {
		// The peer may still be at its wizard's last question.
		o.PairTimeout = max(2*time.Minute, o.Config.NICs.Wait)
	}
	cfg := o.Config
	r := &runner{o: o, start: time.Now()}
	out := &Outcome{}

	// Everything the config names must exist before anything is touched.
	res, err := cfg.Check(o.Machine)
	if err != nil {
		return nil, err
	}
	if len(cfg.Addresses.Management) != 2 {
		return nil, cfg.Errorf("addresses.management", "missing: the management addresses of node 1 and node 2")
	}
	key := cfg.PairKey
	if key == nil && !o.DryRun {
		return nil, cfg.Errorf("pair_key", "missing: an unattended install needs the pair key both servers share (the wizard can generate one)")
	}
	pol, err := cfg.Policy()
	if err != nil {
		return nil, cfg.Errorf("hwcheck.policy", "%v", err)
	}

	r.begin("inventory")
	inv, err := r.inventory(ctx)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	dg, err := compare.Digest(inv)
	if err != nil {
		return nil, err
	}
	var digest [32]byte
	b, err := hex.DecodeString(strings.TrimPrefix(dg, "sha256:"))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("inventory digest %q is not a SHA-256", dg)
	}
	copy(digest[:], b)
	r.say("      %s; digest %s", inv.Source, dg)

	r.begin("NICs: beacons and roles")
	for _, n := range res.NICs {
		r.say("      %s %s %s", n.Name, n.MAC, n.SlotKey())
	}
	disc, err := roles.Discover(ctx, cfg, res, digest, key, func(s string) { r.say("      %s", s) })
	if err != nil {
		return nil, fmt.Errorf("NICs: %w", err)
	}
	for _, l := range disc.Log {
		r.say("      heard: %s", l)
	}
	r.say("      node %d (%s), peer %s; the peer proposes the same roles", disc.NodeNumber, disc.NodeID, disc.Proposal.Peer.NodeID)

	p, err := r.plan(cfg, res, disc)
	if err != nil {
		return nil, err
	}
	out.Plan = p
	if disc.Proposal.Peer.Digest != digest {
		r.say("      the peer's inventory digest differs from ours: the pairing step shows how")
	}

	if o.DryRun {
		r.say("")
		fmt.Fprint(o.Out, p.Text())
		r.say("\ndry run: nothing written (NICs were brought up to send beacons); %.1fs", time.Since(r.start).Seconds())
		return out, nil
	}

	if o.ConfirmPlan != nil && !o.ConfirmPlan(p.Text()) {
		return out, ErrDeclined
	}

	r.begin("pairing: authenticated session and hardware match")
	if err := r.addresses(p); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, o.PairTimeout)
	defer cancel()
	first := p.Links[0]
	pr, err := pairing.Pair(pctx, p.Node, key, pairing.Link{Interface: first.NIC.Name, Local: first.Local.Addr(), Peer: first.Peer},
		inv, pol, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, fmt.Errorf("pairing: %w", err)
	}
	out.Pairing = pr
	r.detail(pr.Text)
	switch {
	case !pr.PeerAgrees:
		return out, fmt.Errorf("%w: the peer computed a different report (verdict %s; different hwcheck policies?)", ErrMismatch, pr.PeerSays)
	case !pr.Match:
		return out, fmt.Errorf("%w: the servers differ (see the report); nothing was written", ErrMismatch)
	}

	r.begin("disk layout")
	if o.ConfirmPlan == nil { // the wizard showed it already
		fmt.Fprint(o.Out, indent(p.Text()))
	}
	wipe := cfg.Wipe
	rc, err := runtimeConfig(p, cfg, key, o.StateDir)
	if err != nil {
		return out, err
	}
	content, err := r.content(cfg, inv, rc, key)
	if err != nil {
		return out, err
	}
	if err := layout.Apply(p.Disk.Path, p.Layout, content, layout.Options{Wipe: wipe, Node: p.Node, PairKey: key}); err != nil {
		return out, fmt.Errorf("disk layout: %w", err)
	}
	r.say("      written and verified by reading back: GPT, ESP, system partition, %d virtual disk(s) (at %.1fs)", len(cfg.VirtualDisks), time.Since(r.start).Seconds())

	r.begin("runtime config")
	path, err := r.writeState(rc)
	if err != nil {
		return out, err
	}
	out.RuntimeConfig = path
	r.say("      %s (also on the system partition as /ftvs/coserver.yaml)", path)

	r.begin("launch")
	if o.Launch == nil {
		r.say("      the runtime (ftvs coserver) is not part of this build: the disk is ready, start it with the config above once installed")
		return out, ErrRuntimeMissing
	}
	r.say("      exec ftvs coserver --config %s", path)
	return out, o.Launch(path)
}

func (r *runner) inventory(ctx context.Context) (*inventory.Inventory, error) {
	if r.o.Inventory != "" {
		inv, err := inventory.Load(ctx, r.o.Inventory, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.o.Inventory, err)
		}
		inv.Source = r.o.Inventory
		return inv, nil
	}
	inv, err := inventory.Collect(ctx, inventory.Sources{PCIDB: inventory.LoadPCIDB()})
	if err != nil {
		return nil, err
	}
	inv.Source = "this machine"
	return inv, nil
}

func (r *runner) plan(cfg *config.Config, res *config.Resolved, disc *roles.Discovery) (*Plan, error) {
	lay, err := layout.PlanFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("disk layout: %w", err)
	}
	if res.Disk.Size < lay.MinBytes {
		return nil, cfg.Errorf("disk.target", "disk %s is %s; the layout needs %s", res.Disk.Path, humanSize(res.Disk.Size), humanSize(lay.MinBytes))
	}
	inUse, err := layout.Inspect(res.Disk.Path)
	if err != nil {
		return nil, err
	}
	links, err := linkAddrs(cfg.Addresses.CoServer, disc.Proposal.CoServer(), disc.NodeNumber)
	if err != nil {
		return nil, cfg.Errorf("addresses.coserver", "%v", err)
	}
	mg, _ := cfg.Addresses.ManagementFor(disc.NodeNumber)
	peerMg, _ := cfg.Addresses.ManagementFor(3 - disc.NodeNumber)
	return &Plan{
		NodeID: disc.NodeID, Node: disc.NodeNumber, PeerID: disc.Proposal.Peer.NodeID,
		Roles: disc.Proposal, Links: links, Management: mg, PeerMgmt: peerMg.Addr(), Gateway: cfg.Addresses.Gateway,
		VS: cfg.VS, Disk: res.Disk, DiskInUse: inUse, Wipe: cfg.Wipe, Layout: lay,
	}, nil
}

// addresses puts the CoServer link and management addresses on their NICs
// (the pairing session and the runtime bind to them).
func (r *runner) addresses(p *Plan) error {
	set := func(n host.NIC, a string) error {
		l, err := netlink.LinkByIndex(n.Index)
		if err != nil {
			return fmt.Errorf("NIC %s: %w", n.Name, err)
		}
		ad, err := netlink.ParseAddr(a)
		if err != nil {
			return err
		}
		if err := netlink.AddrReplace(l, ad); err != nil {
			return fmt.Errorf("NIC %s: address %s: %w", n.Name, a, err)
		}
		return netlink.LinkSetUp(l)
	}
	for _, l := range p.Links {
		if err := set(l.NIC, l.Local.String()); err != nil {
			return err
		}
		r.say("      %s: %s", l.NIC.Name, l.Local)
	}
	if err := set(p.Roles.Management(), p.Management.String()); err != nil {
		return err
	}
	r.say("      %s: %s", p.Roles.Management().Name, p.Management)
	return nil
}

func (r *runner) content(cfg *config.Config, inv *inventory.Inventory, rc, key []byte) (layout.Content, error) {
	c := layout.Content{
		ESP: layout.Files{},
		System: layout.Files{
			"ftvs/coserver.yaml": rc,
			"ftvs/install.yaml":  r.o.ConfigRaw,
			"ftvs/pair.key":      []byte(hex.EncodeToString(key) + "\n"),
		},
		VSBoot: layout.Files{"ftvs/vs.yaml": vsConfig(cfg), "www/index.html": indexHTML(cfg)},
	}
	if b, err := jsonIndent(inv); err == nil {
		c.System["ftvs/inventory.json"] = b
	}
	c.System["logs/install.log"] = bytes.Clone(r.log.Bytes())
	if r.o.BootFiles != "" {
		if err := addTree(c.ESP, "", r.o.BootFiles); err != nil {
			return c, fmt.Errorf("boot files: %w", err)
		}
	}
	vs := r.o.VSFiles
	if vs == "" {
		vs = filepath.Join(r.o.StateDir, "vs-content")
		if _, err := os.Stat(vs); err != nil {
			vs = ""
		}
	}
	if vs != "" {
		if err := addTree(c.VSBoot, "www/", vs); err != nil {
			return c, fmt.Errorf("VS files: %w", err)
		}
	}
	return c, nil
}

// addTree adds every regular file under dir to files, named prefix plus
// its slash path relative to dir.
func addTree(files layout.Files, prefix, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files[prefix+filepath.ToSlash(rel)] = b
		return nil
	})
}

// writeState writes what the runtime needs to start now: its config (the
// VS's content is on the boot disk, which the runtime serves).
func (r *runner) writeState(rc []byte) (string, error) {
	if err := os.MkdirAll(r.o.StateDir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(r.o.StateDir, "coserver.yaml")
	if err := os.WriteFile(path, rc, 0o600); err != nil {
		return "", err
	}
	return path, nil
}

func humanSize(n uint64) string { return humanize.IBytes(n) }

func jsonIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", " ") }

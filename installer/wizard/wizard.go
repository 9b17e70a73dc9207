// Package wizard is the installer's console dialogue: it shows what it
// detected (NICs, disks), asks only for what it cannot detect (pair key,
// addresses, target disk, the VS's identity and disk sizes), and writes the
// answers as an ordinary install config, so a wizard install and an
// unattended install with the equivalent file run the very same steps.
package wizard

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/manifoldco/promptui"

	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/layout"
)

// Options of a wizard session.
type Options struct {
	In      io.ReadCloser
	Out     io.WriteCloser
	Machine config.Machine
	AllNICs bool // consider virtual NICs too (labs, tests)
}

// Result is the config the answers make.
type Result struct {
	YAML   []byte
	Config *config.Config
}

const otherDisk = "enter a path (a disk, /dev/disk/by-id/..., or a disk image)"

// Run asks the questions and returns the equivalent config.
func Run(o Options) (*Result, error) {
	w := &wiz{o: o}
	return w.run()
}

type wiz struct {
	o Options
}

func (w *wiz) say(format string, args ...any) { fmt.Fprintf(w.o.Out, format+"\n", args...) }

func (w *wiz) ask(label, def string, validate func(string) error) (string, error) {
	p := promptui.Prompt{Label: label, Default: def, Validate: validate, Stdin: w.o.In, Stdout: nopCloser{w.o.Out}}
	s, err := p.Run()
	if err != nil {
		return "", fmt.Errorf("wizard: %s: %w", label, err)
	}
	return strings.TrimSpace(s), nil
}

func (w *wiz) choose(label string, items []string) (int, error) {
	s := promptui.Select{Label: label, Items: items, Size: 8, Stdin: w.o.In, Stdout: nopCloser{w.o.Out}}
	i, _, err := s.Run()
	if err != nil {
		return 0, fmt.Errorf("wizard: %s: %w", label, err)
	}
	return i, nil
}

// nopCloser keeps promptui from closing the terminal after each prompt.
type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (w *wiz) run() (*Result, error) {
	m := w.o.Machine
	w.say("ftvs install wizard: answers become an install config (the same as an unattended install's).")
	w.say("")
	nics, err := m.NICs(w.o.AllNICs)
	if err != nil {
		return nil, err
	}
	w.say("Detected NICs (roles are found by beacons once both servers run the installer):")
	for _, n := range nics {
		w.say("  %-10s %s  %s", n.Name, n.MAC, n.SlotKey())
	}
	if len(nics) < 3 {
		w.say("  only %d: a CoServer needs at least 3", len(nics))
	}
	disks, err := m.Disks()
	if err != nil {
		return nil, err
	}
	w.say("Detected disks:")
	for _, d := range disks {
		w.say("  %-12s %10s  %s", d.Path, humanize.IBytes(d.Size), d.Model)
	}
	w.say("")

	var y strings.Builder
	y.WriteString("# Written by the ftvs install wizard.\nversion: 1\n")

	keyHex, err := w.ask("Pair key (64 hex digits; empty on the first server to generate one)", "", func(s string) error {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		_, err := config.ParsePairKey(strings.TrimSpace(s))
		return err
	})
	if err != nil {
		return nil, err
	}
	number := "auto"
	if keyHex == "" {
		k := make([]byte, config.PairKeyLen)
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
		keyHex = hex.EncodeToString(k)
		number = "1"
		w.say("Generated pair key (type it into the other server's wizard):\n\n    %s\n\nThis server is node 1.", keyHex)
	}
	key, _ := config.ParsePairKey(keyHex)
	fmt.Fprintf(&y, "node: {number: %s, name: auto}\npair_key: %q\n", number, keyHex)
	scan := "physical"
	if w.o.AllNICs {
		scan = "all"
	}
	fmt.Fprintf(&y, "nics: {scan: %s, coserver: auto, redirected: auto, management: auto}\n", scan)

	m1, err := w.ask("Management address of node 1 (like 10.0.0.11/24)", "", validPrefix)
	if err != nil {
		return nil, err
	}
	m2, err := w.ask("Management address of node 2", "", func(s string) error {
		if err := validPrefix(s); err != nil {
			return err
		}
		if a, b := netip.MustParsePrefix(m1), netip.MustParsePrefix(s); a.Addr() == b.Addr() {
			return errors.New("same as node 1's")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	gw, err := w.ask("Management gateway (empty: none)", "", optional(validAddr))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&y, "addresses:\n  management: [%s, %s]\n", m1, m2)
	if gw != "" {
		fmt.Fprintf(&y, "  gateway: %s\n", gw)
	}

	items := []string{otherDisk}
	for _, d := range disks {
		items = append(items, fmt.Sprintf("%s (%s %s)", d.Path, humanize.IBytes(d.Size), d.Model))
	}
	i, err := w.choose("Target disk (everything on it is replaced)", items)
	if err != nil {
		return nil, err
	}
	var target string
	if i == 0 {
		target, err = w.ask("Disk path", "", func(s string) error {
			if !strings.HasPrefix(s, "/") {
				return errors.New("want an absolute path")
			}
			_, err := m.DiskAt(s)
			return err
		})
		if err != nil {
			return nil, err
		}
	} else {
		target = disks[i-1].Path
	}
	fmt.Fprintf(&y, "disk:\n  target: %q\n", target)

	boot, err := w.ask("VS boot disk size (the first virtual disk, FAT32)", "512MiB", validFATSize)
	if err != nil {
		return nil, err
	}
	more, err := w.ask("Further virtual disks (name:size, comma-separated; empty: none)", "data:8GiB", validDiskList)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&y, "virtual_disks:\n  - {name: boot, size: %s}\n", boot)
	for _, e := range splitList(more) {
		n, s, _ := strings.Cut(e, ":")
		fmt.Fprintf(&y, "  - {name: %s, size: %s}\n", n, s)
	}

	mac, err := w.ask("VS MAC address", defaultMAC(key), func(s string) error {
		hw, err := net.ParseMAC(s)
		if err != nil || len(hw) != 6 || hw[0]&1 != 0 {
			return errors.New("want a unicast MAC like 02:f7:00:00:00:01")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	vsIP, err := w.ask("VS address on the production LAN (like 192.168.50.10/24)", "", validPrefix)
	if err != nil {
		return nil, err
	}
	vsGW, err := w.ask("VS gateway (empty: none)", "", optional(validAddr))
	if err != nil {
		return nil, err
	}
	svcs, err := w.ask("VS services", "http, ftp, nbd", func(s string) error {
		for _, x := range splitList(s) {
			if x != "http" && x != "ftp" && x != "nbd" {
				return fmt.Errorf("unknown service %q (http, ftp, nbd)", x)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(&y, "vs:\n  mac: %q\n  ip: %s\n", mac, vsIP)
	if vsGW != "" {
		fmt.Fprintf(&y, "  gateway: %s\n", vsGW)
	}
	fmt.Fprintf(&y, "  services: [%s]\n", strings.Join(splitList(svcs), ", "))

	pol, err := w.ask("hwcheck policy file (empty: the defaults, nothing tolerated)", "", nil)
	if err != nil {
		return nil, err
	}
	if pol != "" {
		fmt.Fprintf(&y, "hwcheck:\n  policy: %q\n", pol)
	}

	wipe := false
	if sigs, err := layout.Inspect(target); err == nil && len(sigs) > 0 {
		i, err := w.choose(fmt.Sprintf("%s holds %s. Overwrite it?", target, layout.Describe(sigs)), []string{"no, stop here", "yes, wipe it"})
		if err != nil {
			return nil, err
		}
		if i == 0 {
			return nil, fmt.Errorf("wizard: %s is in use and was not confirmed for wiping", target)
		}
		wipe = true
	}
	fmt.Fprintf(&y, "wipe: %v\n", wipe)

	text := []byte(y.String())
	cfg, err := config.Parse("wizard answers", text)
	if err != nil {
		return nil, err
	}
	w.say("")
	return &Result{YAML: text, Config: cfg}, nil
}

// defaultMAC is a locally administered MAC both servers derive from the
// pair key, so the default is the same on both consoles.
func defaultMAC(key []byte) string {
	h := sha256.Sum256(append([]byte("ftvs vs mac\x00"), key...))
	return net.HardwareAddr{0x02, 0xf7, h[0], h[1], h[2], h[3]}.String()
}

func validPrefix(s string) error {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil || !p.Addr().Is4() {
		return errors.New("want an IPv4 address with prefix length, like 10.0.0.11/24")
	}
	return nil
}

func validAddr(s string) error {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || !a.Is4() {
		return errors.New("want an IPv4 address")
	}
	return nil
}

func optional(f func(string) error) func(string) error {
	return func(s string) error {
		if strings.TrimSpace(s) == "" {
			return nil
		}
		return f(s)
	}
}

func validFATSize(s string) error {
	v, err := humanize.ParseBytes(strings.TrimSpace(s))
	if err != nil {
		return errors.New("want a size like 512MiB")
	}
	return config.CheckFATSize("the VS boot disk", v)
}

func validDiskList(s string) error {
	for _, e := range splitList(s) {
		n, sz, ok := strings.Cut(e, ":")
		if !ok || n == "" || n == "boot" {
			return fmt.Errorf("%q: want name:size, like data:8GiB (not named boot)", e)
		}
		v, err := humanize.ParseBytes(sz)
		if err != nil || v == 0 || v%(1<<20) != 0 {
			return fmt.Errorf("%q: want a whole number of MiB, like 8GiB", e)
		}
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// Confirm shows the plan and asks whether to install it.
func Confirm(o Options, plan string) bool {
	w := &wiz{o: o}
	w.say("\n%s", plan)
	i, err := w.choose("Install this plan now? The other server must be at this question or beyond", []string{"yes, install", "no, stop"})
	return err == nil && i == 0
}

// Package vstest builds the namespaces the solo driver's integration tests
// and benchmark run in: a VS namespace and a client namespace joined by veth
// (directly, or through a WAN namespace that impairs traffic both ways), and
// the VS itself, run in-process on a port opened inside its namespace.
package vstest

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
	"github.com/ftvs/ftvs/ftvs/vsrun"
)

// Addresses of the topology.
const (
	VSIP     = "10.77.0.1"
	ClientIP = "10.77.0.2"
	Prefix   = 24
)

// VSMAC is the virtual server's MAC.
var VSMAC = [6]byte{0x02, 0xf4, 0, 0, 0, 1}

// Options shape a topology.
type Options struct {
	Kind port.Kind
	// Impair, when set, puts a WAN namespace between VS and client that
	// impairs both directions: tc netem if the kernel has it, else the
	// userspace relay.
	Impair *netnstest.Impairment
	// Record, when set, is called with the machine's configuration after the
	// VS is opened and before it runs; the function it returns sees every
	// input (see vsrun.Config.Record).
	Record func(machine.Config) func(machine.Input) error
}

// Topo is a running topology.
type Topo struct {
	Env        *netnstest.Env
	VS, Client *netnstest.NS
	WAN        *netnstest.NS
	Relay      *netnstest.Relay
	UsedNetem  bool
	VSIface    string // interface the VS side's "wire" ends in (v0)
	Solo       *vsrun.Solo
	runErr     chan error
	cancel     context.CancelFunc
	once       sync.Once
}

// Net builds the namespaces and links, without a VS.
func Net(t testing.TB, o Options) *Topo {
	t.Helper()
	env := netnstest.New(t, "fv4", "curl", "ping")
	tp := &Topo{Env: env, VS: env.NS("vs"), Client: env.NS("cl"), VSIface: "v0"}
	if o.Impair == nil {
		env.Veth(tp.VS, "v0", tp.Client, "c0")
	} else {
		l := env.ImpairedVeth(tp.VS, "v0", tp.Client, "c0", "wan", *o.Impair)
		tp.WAN, tp.UsedNetem, tp.Relay = l.Middle, l.Netem, l.Relay
	}
	tp.Client.Addr("c0", ClientIP+"/24")
	if o.Kind == port.TAP {
		tp.VS.Tap("t0")
		tp.VS.Bridge("br0", "v0", "t0")
		tp.VSIface = "t0"
	}
	return tp
}

// Start builds the topology and starts a VS serving root.
func Start(t testing.TB, o Options, root string) *Topo {
	t.Helper()
	tp := Net(t, o)
	vsrun.TuneGC() // as `ftvs vs run` does
	cfg := vsrun.SoloConfig{
		Iface: tp.VSIface, PortKind: o.Kind, MAC: VSMAC, PrefixLen: Prefix, Root: root,
		ISNKey: [16]byte{'f', 'v', '4'},
		Event:  func(seq uint64, text string) { t.Logf("vs event at input %d: %s", seq, text) },
	}
	copy(cfg.IP[:], net.ParseIP(VSIP).To4())
	var record func(machine.Input) error
	if o.Record != nil {
		cfg.Record = func(in machine.Input) error { return record(in) }
	}
	if err := tp.VS.Do(func() error {
		var err error
		tp.Solo, err = vsrun.Open(cfg)
		return err
	}); err != nil {
		t.Fatalf("open the VS: %v", err)
	}
	tp.VS.WaitLinkUp(tp.VSIface)
	tp.Client.WaitLinkUp("c0")
	if o.Record != nil {
		record = o.Record(tp.Solo.Machine.Config())
	}
	ctx, cancel := context.WithCancel(context.Background())
	tp.cancel = cancel
	tp.runErr = make(chan error, 1)
	go func() { tp.runErr <- tp.Solo.Run(ctx) }()
	t.Cleanup(func() {
		if err := tp.Stop(); err != nil {
			t.Errorf("VS driver: %v", err)
		}
	})
	return tp
}

// Stop stops the VS and returns the driver's error.
func (tp *Topo) Stop() error {
	var err error
	tp.once.Do(func() {
		tp.cancel()
		select {
		case err = <-tp.runErr:
		case <-time.After(10 * time.Second):
			err = fmt.Errorf("driver did not stop within 10 s")
		}
		tp.Solo.Close()
	})
	return err
}

// URL is the VS's URL for a path.
func URL(path string) string { return "http://" + VSIP + "/" + path }

// WriteFile writes size bytes of a position-dependent pseudo-random pattern
// (so a byte at the wrong offset is caught) and returns its sha256.
func WriteFile(t testing.TB, path string, size int64, seed uint64) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		for i := 0; i < len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], splitmix(seed^uint64(off+int64(i))))
		}
		chunk := buf[:min(int64(len(buf)), size-off)]
		h.Write(chunk)
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// FileSHA256 hashes a file.
func FileSHA256(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Dir makes a content directory.
func Dir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "www")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

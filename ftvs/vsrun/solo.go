package vsrun

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
	"github.com/ftvs/ftvs/ftvs/dirstore"
	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
	ftpsvc "github.com/ftvs/ftvs/ftvs/services/ftp"
	httpsvc "github.com/ftvs/ftvs/ftvs/services/http"
	nbdsvc "github.com/ftvs/ftvs/ftvs/services/nbd"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
)

// SoloConfig is everything `ftvs vs run` needs.
type SoloConfig struct {
	Iface     string
	PortKind  port.Kind
	MAC       [6]byte
	IP        [4]byte
	PrefixLen int
	Gateway   [4]byte
	Root      string // directory the HTTP service serves (or BootDisk)
	// BootDisk, instead of Root: a FAT32 image or a vdisk copy holding one
	// (the VS boot disk), served through ftvs/vbootdisk.
	BootDisk string
	HTTPPort uint16 // 0: 80
	// HTTPUpload, when set, lets HTTP PUT write files under this path
	// prefix (the store is then opened read-write); HTTPMaxUpload bounds
	// one body (0: the service's default).
	HTTPUpload    string
	HTTPMaxUpload int64
	MTU           int // 0: the interface's MTU
	// ISNKey keys the RFC 6528 ISN hash; all zero: a random key is drawn.
	ISNKey [16]byte
	Batch  int
	// SoftChecksum makes the machine compute every TCP checksum itself
	// instead of leaving it to the kernel (checksum offload, the default).
	SoftChecksum bool
	Record       func(machine.Input) error
	Event        func(seq uint64, text string)
	// FTP, when set, turns the FTP service on over Root; with FTPWrite the
	// directory is opened read-write so users with write access change it.
	FTP      *ftpsvc.Config
	FTPWrite bool
	// NBD, when set, serves NBDFiles[i] (an existing file or block
	// device, locked while served) as NBD.Exports[i].
	NBD      *nbdsvc.Config
	NBDFiles []string
}

// TSOMax is the most TCP payload one super-segment may carry: with
// Ethernet, IPv4 and TCP headers at their largest (14+60+60) the frame stays
// under the kernel's default GSO limit of 64 KiB (veth, TAP, most NICs) and
// the datagram under IPv4's 16-bit length.
const TSOMax = 65535 - 100

// Solo is an opened solo virtual server: its port, store, machine and driver.
type Solo struct {
	Port    port.Port
	Store   *dirstore.Store  // nil when serving a boot disk
	Boot    *vbootdisk.Store // nil when serving a directory
	boot    *bootDisk
	Machine *machine.Machine
	Driver  *Driver
	Config  machine.Config
	Disks   []*filedev.Dev // NBD exports' backing files
}

// Open opens the port (in the calling thread's network namespace), the file
// store and a fresh machine.
func Open(c SoloConfig) (*Solo, error) {
	if (c.Root == "") == (c.BootDisk == "") {
		return nil, errors.New("give either a content directory (--root) or a boot disk (--boot-disk)")
	}
	var files fsapi.FileStore
	var store *dirstore.Store
	var boot *bootDisk
	if c.BootDisk != "" {
		b, err := openBootDisk(c.BootDisk, c.writes())
		if err != nil {
			return nil, err
		}
		boot, files = b, b.Store
	} else if c.writes() {
		w, err := dirstore.NewWritable(c.Root, 0)
		if err != nil {
			return nil, err
		}
		store, files = w.Store, w
	} else {
		s, err := dirstore.New(c.Root, 0)
		if err != nil {
			return nil, err
		}
		store, files = s, s
	}
	closeStore := func() {
		if store != nil {
			store.Close()
		}
		if boot != nil {
			boot.Close()
		}
	}
	disks, err := openDisks(c)
	if err != nil {
		closeStore()
		return nil, err
	}
	closeAll := func() {
		closeStore()
		for _, d := range disks {
			d.Close()
		}
	}
	mtu := c.MTU
	if mtu == 0 {
		ifi, err := net.InterfaceByName(c.Iface)
		if err != nil && c.PortKind != port.TAP {
			closeAll()
			return nil, fmt.Errorf("interface %q: %w", c.Iface, err)
		}
		mtu = 1500
		if err == nil && ifi.MTU > 0 {
			mtu = ifi.MTU
		}
	}
	key := c.ISNKey
	if key == [16]byte{} {
		// The shell may draw randomness; the machine keeps the key in its
		// state so replicas built from a snapshot agree.
		if _, err := rand.Read(key[:]); err != nil {
			closeAll()
			return nil, fmt.Errorf("draw ISN key: %w", err)
		}
	}
	mcfg := machine.Config{
		MAC: c.MAC, IP: c.IP, PrefixLen: c.PrefixLen, Gateway: c.Gateway,
		MTU: mtu, TSOMax: TSOMax, ISNKey: key, ChecksumOffload: !c.SoftChecksum,
		HTTP: machine.HTTPConfig{Enabled: true, Config: httpsvc.Config{Port: c.HTTPPort,
			UploadPrefix: c.HTTPUpload, MaxUploadBytes: c.HTTPMaxUpload}},
	}
	if c.FTP != nil {
		mcfg.FTP = machine.FTPConfig{Enabled: true, Config: *c.FTP}
	}
	env := machine.Env{Files: files}
	if c.NBD != nil {
		mcfg.NBD = machine.NBDConfig{Enabled: true, Config: *c.NBD}
		for _, d := range disks {
			env.Disks = append(env.Disks, d)
		}
	}
	m, err := machine.NewEnv(mcfg, env)
	if err != nil {
		closeAll()
		return nil, err
	}
	p, err := port.Open(port.Config{Kind: c.PortKind, Iface: c.Iface, MAC: net.HardwareAddr(c.MAC[:])})
	if err != nil {
		closeAll()
		return nil, err
	}
	d, err := New(Config{Port: p, Machine: m, Batch: c.Batch, Record: c.Record, Event: c.Event, PartialCsum: mcfg.ChecksumOffload})
	if err != nil {
		p.Close()
		closeAll()
		return nil, err
	}
	s := &Solo{Port: p, Store: store, boot: boot, Machine: m, Driver: d, Config: mcfg, Disks: disks}
	if boot != nil {
		s.Boot = boot.Store
	}
	return s, nil
}

// writes says whether a service may change the served files.
func (c SoloConfig) writes() bool { return c.FTP != nil && c.FTPWrite || c.HTTPUpload != "" }

// openDisks opens the NBD exports' backing files, locked.
func openDisks(c SoloConfig) ([]*filedev.Dev, error) {
	if c.NBD == nil {
		return nil, nil
	}
	if len(c.NBDFiles) != len(c.NBD.Exports) {
		return nil, fmt.Errorf("%d NBD backing files for %d exports", len(c.NBDFiles), len(c.NBD.Exports))
	}
	var out []*filedev.Dev
	for i, path := range c.NBDFiles {
		d, err := filedev.Open(path, filedev.Options{ReadOnly: c.NBD.Exports[i].ReadOnly, Lock: true})
		if err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, fmt.Errorf("NBD export %q: %w", c.NBD.Exports[i].Name, err)
		}
		out = append(out, d)
	}
	return out, nil
}

var _ blockdev.Device = (*filedev.Dev)(nil)

// AnnounceInterval is the gap between the two gratuitous ARPs that announce
// the VS at start (RFC 5227's ANNOUNCE_NUM 2, ANNOUNCE_INTERVAL 2 s): the
// first may be lost while a link that was just brought up settles.
const AnnounceInterval = 2 * time.Second

// Run drives the VS until ctx is done. It announces the VS with a gratuitous
// ARP at start and again AnnounceInterval later, so neighbours learn where
// it is.
func (s *Solo) Run(ctx context.Context) error {
	t := time.AfterFunc(AnnounceInterval, func() { s.Driver.Inject(machine.GratuitousARPCommand()) })
	defer t.Stop()
	return s.Driver.RunWith(ctx, machine.GratuitousARPCommand())
}

// Close releases the port, the store, the driver and the disks (flushed
// first). A boot disk's changes become durable here (the store's Sync).
func (s *Solo) Close() error {
	errs := []error{s.Port.Close(), s.Driver.Close()}
	if s.Store != nil {
		errs = append(errs, s.Store.Close())
	}
	if s.boot != nil {
		errs = append(errs, s.boot.Close())
	}
	for _, d := range s.Disks {
		errs = append(errs, d.Flush(), d.Close())
	}
	return errors.Join(errs...)
}

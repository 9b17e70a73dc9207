package boottest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/images/bootcfg"
	"github.com/ftvs/ftvs/images/e2e/qemuvm"
	"github.com/ftvs/ftvs/images/initramfs"
	"github.com/ftvs/ftvs/images/iso"
	"github.com/ftvs/ftvs/images/kernel"
	"github.com/ftvs/ftvs/images/pxe"
	"github.com/ftvs/ftvs/images/uki"
	"github.com/ftvs/ftvs/images/usb"
)

// banner is what `ftvs boot` prints first (cmd/ftvs BootBanner).
const banner = "ftvs installer: started"

// One initramfs per test run, built in TestMain with an embedded config.
var (
	kern          *kernel.Kernel
	initrd        string
	embeddedConf  = []byte("# unattended install config embedded by the boot tests\nmode: unattended\n")
	setupErr      error
	setupSkip     string
	setupDuration string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ftvs-boottest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	setup(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func setup(dir string) {
	ctx := context.Background()
	t0 := time.Now()
	var cache string
	if kern, cache, setupSkip, setupErr = qemuvm.FetchKernel(ctx, os.Stderr); setupSkip != "" || setupErr != nil {
		return
	}
	t1 := time.Now()
	conf := filepath.Join(dir, "install.conf")
	if setupErr = os.WriteFile(conf, embeddedConf, 0o644); setupErr != nil {
		return
	}
	initrd = filepath.Join(dir, "initramfs.cpio.gz")
	var progress bytes.Buffer
	if err := initramfs.Build(ctx, initramfs.Options{Kernel: kern, ConfigFile: conf, Out: initrd, Progress: &progress}); err != nil {
		setupErr = fmt.Errorf("building initramfs: %w\n%s", err, progress.String())
		return
	}
	setupDuration = fmt.Sprintf("kernel %v (cache %s), initramfs build %v", t1.Sub(t0).Round(time.Millisecond), cache, time.Since(t1).Round(time.Millisecond))
	fmt.Fprintln(os.Stderr, "boottest setup:", setupDuration)
}

// needSetup skips or fails on a setup problem; boot tests then run two at
// a time (the default -parallel is GOMAXPROCS: 2 on the reference machine,
// one vCPU per VM).
func needSetup(t *testing.T) {
	t.Helper()
	t.Parallel()
	if setupSkip != "" {
		t.Skip(setupSkip)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	t.Logf("setup (once per run): %s", setupDuration)
}

// configLine is what `ftvs boot` prints for a config it loaded.
func configLine(src string, data []byte) string {
	return fmt.Sprintf("from %s: %d bytes, sha256 %s", src, len(data), bootcfg.Digest(data))
}

func buildUKI(t *testing.T, cmdline string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "ftvs.efi")
	t0 := time.Now()
	if err := uki.Build(context.Background(), uki.Options{Vmlinuz: kern.Vmlinuz, Initrd: initrd, Cmdline: cmdline, Out: out}); err != nil {
		t.Fatal(err)
	}
	t.Logf("UKI built in %v", time.Since(t0).Round(time.Millisecond))
	return out
}

// TestDirectBoot is the fast path: QEMU loads kernel and initramfs itself.
// It also proves modules-load.d + modules.dep work (virtio_net bound to
// eth0) and that the embedded config is found.
func TestDirectBoot(t *testing.T) {
	needSetup(t)
	v := startVM(t, append(baseArgs(),
		"-kernel", kern.Vmlinuz, "-initrd", initrd,
		"-append", "console=ttyS0 quiet panic=-1",
		"-nic", "user,model=virtio-net-pci",
		"-drive", "if=virtio,format=raw,file="+blankDisk(t))...)
	d := v.waitFor(t, banner, bootTimeout)
	t.Logf("direct kernel boot: QEMU start to installer banner %v", d.Round(time.Millisecond))
	v.waitFor(t, "dropping to the u-root shell", 30*time.Second)
	if l := v.line("ftvs installer: network interfaces:"); !strings.Contains(l, "eth0 (virtio_net)") {
		t.Errorf("virtio_net not loaded from modules-load.d: %q", l)
	}
	if l := v.line("ftvs installer: disks:"); !strings.Contains(l, "vda (virtio_blk)") {
		t.Errorf("virtio_blk not loaded from modules-load.d: %q", l)
	}
	if want := configLine(bootcfg.EmbeddedPath, embeddedConf); !strings.Contains(v.console(), want) {
		t.Errorf("embedded config not reported; want a line with %q, got %q", want, v.line("ftvs installer: config"))
	}
}

func blankDisk(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, 16<<20); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUSBUnderOVMF boots the USB image as a USB stick on xHCI under UEFI
// and reads the config from the stick's ESP (ftvs.config=media:...).
func TestUSBUnderOVMF(t *testing.T) {
	needSetup(t)
	fw := ovmfArgs(t)
	mediaConf := []byte("# config on the USB stick\nmode: unattended\nsource: usb\n")
	confPath := filepath.Join(t.TempDir(), "install.conf")
	if err := os.WriteFile(confPath, mediaConf, 0o644); err != nil {
		t.Fatal(err)
	}
	ukiPath := buildUKI(t, "console=ttyS0 quiet usb-storage.delay_use=0 ftvs.config=media:/ftvs/install.conf")
	img := filepath.Join(t.TempDir(), "usb.img")
	t0 := time.Now()
	if err := usb.Build(usb.Options{UKI: ukiPath, Config: confPath, Out: img}); err != nil {
		t.Fatal(err)
	}
	t.Logf("USB image written in %v", time.Since(t0).Round(time.Millisecond))
	v := startVM(t, append(append(baseArgs(), fw...),
		"-device", "qemu-xhci",
		"-drive", "if=none,id=stick,format=raw,file="+img,
		"-device", "usb-storage,drive=stick,bootindex=1",
		"-nic", "none")...)
	d := v.waitFor(t, banner, bootTimeout)
	t.Logf("USB under OVMF: QEMU start to installer banner %v", d.Round(time.Millisecond))
	want := configLine("media:/ftvs/install.conf", mediaConf)
	v.waitFor(t, want, 60*time.Second)
}

func buildISO(t *testing.T) string {
	t.Helper()
	cmdline := "console=ttyS0 quiet"
	ukiPath := buildUKI(t, cmdline)
	out := filepath.Join(t.TempDir(), "ftvs.iso")
	t0 := time.Now()
	if err := iso.Build(iso.Options{UKI: ukiPath, Vmlinuz: kern.Vmlinuz, Initrd: initrd, Cmdline: cmdline, Out: out}); err != nil {
		t.Fatal(err)
	}
	t.Logf("ISO written in %v", time.Since(t0).Round(time.Millisecond))
	return out
}

// TestISOUnderOVMF boots the ISO's EFI El Torito entry (the UKI).
func TestISOUnderOVMF(t *testing.T) {
	needSetup(t)
	fw := ovmfArgs(t)
	img := buildISO(t)
	v := startVM(t, append(append(baseArgs(), fw...), "-cdrom", img, "-boot", "d", "-nic", "none")...)
	d := v.waitFor(t, banner, bootTimeout)
	t.Logf("ISO under OVMF: QEMU start to installer banner %v", d.Round(time.Millisecond))
	// The UKI's own command line reached the kernel (no loader in between).
	v.waitFor(t, "dropping to the u-root shell", 30*time.Second)
}

// TestISOUnderSeaBIOS boots the ISO's BIOS El Torito entry (isolinux).
func TestISOUnderSeaBIOS(t *testing.T) {
	needSetup(t)
	img := buildISO(t)
	v := startVM(t, append(baseArgs(), "-cdrom", img, "-boot", "d", "-nic", "none")...)
	d := v.waitFor(t, banner, bootTimeout)
	t.Logf("ISO under SeaBIOS: QEMU start to installer banner %v", d.Round(time.Millisecond))
	v.waitFor(t, "dropping to the u-root shell", 30*time.Second)
}

// TestISOAsUSBStick writes the (isohybrid) ISO to a USB stick, as an
// operator does with dd, and boots it under SeaBIOS (the isolinux MBR) and
// OVMF (the ESP partition over the EFI image).
func TestISOAsUSBStick(t *testing.T) {
	needSetup(t)
	img := buildISO(t)
	stick := []string{"-device", "qemu-xhci", "-drive", "if=none,id=stick,format=raw,file=" + img,
		"-device", "usb-storage,drive=stick,bootindex=1", "-nic", "none"}
	t.Run("SeaBIOS", func(t *testing.T) {
		v := startVM(t, append(baseArgs(), stick...)...)
		d := v.waitFor(t, banner, bootTimeout)
		t.Logf("ISO on a USB stick under SeaBIOS: QEMU start to installer banner %v", d.Round(time.Millisecond))
	})
	t.Run("OVMF", func(t *testing.T) {
		fw := ovmfArgs(t)
		v := startVM(t, append(append(baseArgs(), fw...), stick...)...)
		d := v.waitFor(t, banner, bootTimeout)
		t.Logf("ISO on a USB stick under OVMF: QEMU start to installer banner %v", d.Round(time.Millisecond))
	})
}

func buildPXE(t *testing.T, cmdline string) string {
	t.Helper()
	ukiPath := buildUKI(t, cmdline)
	dir := filepath.Join(t.TempDir(), "tftp")
	if err := pxe.Build(pxe.Options{UKI: ukiPath, Vmlinuz: kern.Vmlinuz, Initrd: initrd, Cmdline: cmdline, OutDir: dir}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPXEUnderBIOS: SeaBIOS, the NIC's iPXE ROM, DHCP and TFTP from QEMU's
// user network, the tree's boot.ipxe script; then the installer does its
// own DHCP and fetches the config over TFTP from the same server.
func TestPXEUnderBIOS(t *testing.T) {
	needSetup(t)
	dir := buildPXE(t, "console=ttyS0 quiet ftvs.config=tftp://10.0.2.2/install.conf")
	tftpConf := []byte("# config served over TFTP\nmode: unattended\nsource: tftp\n")
	if err := os.WriteFile(filepath.Join(dir, "install.conf"), tftpConf, 0o644); err != nil {
		t.Fatal(err)
	}
	v := startVM(t, append(baseArgs(),
		"-netdev", "user,id=n0,tftp="+dir+",bootfile="+pxe.IPXEScript,
		"-device", "virtio-net-pci,netdev=n0,bootindex=1")...)
	d := v.waitFor(t, banner, bootTimeout)
	t.Logf("PXE under BIOS (iPXE script over TFTP): QEMU start to installer banner %v", d.Round(time.Millisecond))
	t0 := time.Now()
	v.waitFor(t, configLine("tftp://10.0.2.2/install.conf", tftpConf), 90*time.Second)
	t.Logf("DHCP + TFTP config fetch: %v", time.Since(t0).Round(time.Millisecond))
}

// TestPXEUnderUEFI: OVMF's own PXE (no iPXE ROM) loads the UKI over TFTP;
// the installer fetches its config over HTTP from a server on the host's
// loopback, which QEMU's user network shows the guest as 10.0.2.2.
func TestPXEUnderUEFI(t *testing.T) {
	needSetup(t)
	fw := ovmfArgs(t)
	httpConf := []byte("# config served over HTTP\nmode: unattended\nsource: http\n")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ftvs/install.conf" {
			http.NotFound(w, r)
			return
		}
		w.Write(httpConf)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := fmt.Sprintf("http://10.0.2.2:%d/ftvs/install.conf", ln.Addr().(*net.TCPAddr).Port)
	dir := buildPXE(t, "console=ttyS0 quiet ftvs.config="+url)
	v := startVM(t, append(append(baseArgs(), fw...),
		"-netdev", "user,id=n0,tftp="+dir+",bootfile="+pxe.UKI,
		"-device", "virtio-net-pci,netdev=n0,romfile=,bootindex=1")...)
	d := v.waitFor(t, banner, bootTimeout)
	t.Logf("PXE under UEFI (OVMF PXE, UKI over TFTP): QEMU start to installer banner %v", d.Round(time.Millisecond))
	t0 := time.Now()
	v.waitFor(t, configLine(url, httpConf), 90*time.Second)
	t.Logf("DHCP + HTTP config fetch: %v", time.Since(t0).Round(time.Millisecond))
}

package boottest

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/mkuimage/cpio"

	"github.com/ftvs/ftvs/images/bootcfg"
	"github.com/ftvs/ftvs/images/initramfs"
)

// TestInitramfsContents reads back the archive built in TestMain: the
// busybox with ftvs in it, init and uinit wiring, the modules with a
// modules.dep that names only files present, the load list and the
// embedded config.
func TestInitramfsContents(t *testing.T) {
	needSetup(t)
	f, err := os.Open(initrd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]cpio.Record{}
	for _, r := range recs {
		files[r.Name] = r
	}
	content := func(name string) string {
		r, ok := files[name]
		if !ok {
			t.Fatalf("initramfs lacks %s", name)
		}
		b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, name := range []string{"bbin/bb", "bbin/ftvs", "bbin/init", "bbin/gosh", "bbin/dhclient", "init", "bin/uinit", "bin/sh"} {
		if _, ok := files[name]; !ok {
			t.Errorf("initramfs lacks %s", name)
		}
	}
	if got := content("bin/uinit"); !strings.Contains(got, "ftvs") {
		t.Errorf("bin/uinit -> %q, want the ftvs command", got)
	}
	if got := content("etc/uinit.flags"); !strings.Contains(got, "boot") {
		t.Errorf("etc/uinit.flags = %q, want boot", got)
	}
	if got := content(strings.TrimPrefix(bootcfg.EmbeddedPath, "/")); got != string(embeddedConf) {
		t.Errorf("embedded config = %q", got)
	}
	relDir := "lib/modules/" + kern.Release + "/"
	dep := content(relDir + "modules.dep")
	for _, line := range strings.Split(strings.TrimSpace(dep), "\n") {
		mod, deps, _ := strings.Cut(line, ":")
		for _, p := range append([]string{mod}, strings.Fields(deps)...) {
			if _, ok := files[relDir+p]; !ok {
				t.Errorf("modules.dep names %s, not in the initramfs", p)
			}
		}
	}
	load := content(initramfs.ModulesLoadConf)
	for _, want := range []string{"virtio_net", "e1000e", "igb", "ixgbe", "i40e", "ice", "bnxt_en", "tg3", "mlx5_core", "ahci", "nvme", "megaraid_sas", "mpt3sas", "usb_storage", "xhci_pci"} {
		if !strings.Contains(load, "\n"+want+"\n") {
			t.Errorf("%s does not list %s", initramfs.ModulesLoadConf, want)
		}
	}
}

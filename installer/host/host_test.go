package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/installer/internal/nstest"
)

func TestNICsInNamespace(t *testing.T) {
	nstest.RequireRoot(t)
	exec.Command("ip", "netns", "del", "fi6h").Run()
	if out, err := exec.Command("ip", "netns", "add", "fi6h").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", "fi6h").Run() })
	if out, err := exec.Command("ip", "-n", "fi6h", "link", "add", "nicx", "type", "veth", "peer", "name", "nicy").CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var phys, all []NIC
	var err1, err2 error
	nstest.In(t, "fi6h", func() {
		phys, err1 = Live().NICs(false)
		all, err2 = Live().NICs(true)
	})
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	// veths are virtual: not listed unless asked; never mistaken for the
	// root namespace's NICs of the same index through sysfs.
	if len(phys) != 0 {
		t.Fatalf("physical NICs in a namespace of veths: %+v", phys)
	}
	if len(all) != 2 || all[0].Name != "nicx" || all[1].SlotKey() != "virtual:nicy" || all[0].Physical {
		t.Fatalf("all NICs: %+v", all)
	}
}

func TestDiskAt(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.img")
	os.WriteFile(p, nil, 0o600)
	os.Truncate(p, 3<<20)
	link := filepath.Join(t.TempDir(), "by-id-link")
	os.Symlink(p, link)
	d, err := Live().DiskAt(link)
	if err != nil || d.Size != 3<<20 || d.Block || d.Real != p {
		t.Fatalf("%+v %v", d, err)
	}
	if why, err := Live().InUse(d); err != nil || len(why) != 0 {
		t.Fatalf("an image file in use: %v %v", why, err)
	}
	if _, err := Live().DiskAt("/dev/null"); err == nil || !strings.Contains(err.Error(), "not a block device or disk image file") {
		t.Fatalf("/dev/null: %v", err)
	}
	if _, err := Live().DiskAt("/nonexistent"); err == nil {
		t.Fatal("missing disk accepted")
	}
}

package initramfs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/images/kernel"
)

// Bad inputs are reported before the (slow) build and leave nothing behind.
func TestBadInputsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	mods := filepath.Join(dir, "lib", "modules", "6.1.0-test")
	os.MkdirAll(filepath.Join(mods, "kernel"), 0o755)
	k := &kernel.Kernel{Release: "6.1.0-test", Vmlinuz: filepath.Join(dir, "vmlinuz"), ModulesDir: mods}
	out := filepath.Join(dir, "initramfs.cpio.gz")
	cases := []struct {
		o    Options
		want string
	}{
		{Options{Kernel: k}, "no output path"},
		{Options{Out: out}, "no kernel"},
		{Options{Kernel: k, Out: out, ConfigFile: filepath.Join(dir, "missing.conf")}, "missing.conf"},
		{Options{Kernel: k, Out: out, SourceDir: dir}, "no .ko files"},
	}
	for _, c := range cases {
		err := Build(context.Background(), c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Build(%+v) = %v, want an error with %q", c.o, err, c.want)
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("initramfs written despite errors")
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".initramfs-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

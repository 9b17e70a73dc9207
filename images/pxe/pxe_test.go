package pxe

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func fakeInputs(t *testing.T) Options {
	t.Helper()
	for _, p := range []string{DefaultPxelinux, DefaultLdlinux} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s missing (Debian packages pxelinux, syslinux-common)", p)
		}
	}
	dir := t.TempDir()
	mk := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return Options{
		UKI:     mk("uki", "UKI"),
		Vmlinuz: mk("bz", "KERNEL"),
		Initrd:  mk("rd", "INITRD"),
		Cmdline: "console=ttyS0 ftvs.config=tftp://10.0.2.2/install.conf",
		OutDir:  filepath.Join(dir, "tftp"),
	}
}

func TestTreeContents(t *testing.T) {
	o := fakeInputs(t)
	if err := Build(o); err != nil {
		t.Fatal(err)
	}
	pxelinux, _ := os.ReadFile(DefaultPxelinux)
	ldlinux, _ := os.ReadFile(DefaultLdlinux)
	want := map[string][]byte{
		Vmlinuz:     []byte("KERNEL"),
		Initrd:      []byte("INITRD"),
		UKI:         []byte("UKI"),
		Pxelinux:    pxelinux,
		Ldlinux:     ldlinux,
		IPXEScript:  []byte("#!ipxe\necho ftvs installer: loading kernel and initramfs\nkernel vmlinuz initrd=initrd.img console=ttyS0 ftvs.config=tftp://10.0.2.2/install.conf\ninitrd initrd.img\nboot\n"),
		PxelinuxCfg: []byte(PxelinuxConfig(o.Cmdline)),
	}
	var found []string
	filepath.Walk(o.OutDir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(o.OutDir, p)
			found = append(found, rel)
		}
		return nil
	})
	if len(found) != len(want) {
		t.Errorf("tree holds %v, want exactly %d files", found, len(want))
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(o.OutDir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !bytes.Equal(got, w) {
			t.Errorf("%s = %q, want %q", name, trim(got), trim(w))
		}
	}
	if cfg := PxelinuxConfig(o.Cmdline); !strings.Contains(cfg, "KERNEL vmlinuz\n  APPEND initrd=initrd.img console=ttyS0") {
		t.Errorf("pxelinux config:\n%s", cfg)
	}
	if st, err := os.Stat(o.OutDir); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("tree directory mode: %v %v", st.Mode(), err)
	}
}

func trim(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}

func TestBadInputsWriteNothing(t *testing.T) {
	o := fakeInputs(t)
	bad := o
	bad.Initrd = filepath.Join(filepath.Dir(o.Initrd), "missing-initrd")
	if err := Build(bad); err == nil || !strings.Contains(err.Error(), "initramfs") || !strings.Contains(err.Error(), "missing-initrd") {
		t.Errorf("missing initrd: %v", err)
	}
	if _, err := os.Stat(o.OutDir); err == nil {
		t.Error("tree written despite the error")
	}
	// A non-empty output directory is refused, never merged into.
	os.MkdirAll(o.OutDir, 0o755)
	os.WriteFile(filepath.Join(o.OutDir, "keep"), []byte("x"), 0o644)
	if err := Build(o); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("non-empty out dir: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(o.OutDir, "keep")); string(b) != "x" {
		t.Error("existing file touched")
	}
	ents, _ := os.ReadDir(filepath.Dir(o.OutDir))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".pxe-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

package kernel

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// debianTree returns the real Debian module tree from the shared cache,
// fetching it once per machine.
func debianTree(t *testing.T) (*Kernel, *Tree) {
	t.Helper()
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skip("apt-get not available to fetch Debian's kernel")
	}
	cache, err := DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	k, err := Fetch(context.Background(), cache, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := ScanTree(k.ModulesDir)
	if err != nil {
		t.Fatal(err)
	}
	return k, tree
}

func TestModulesDepFromDebianTree(t *testing.T) {
	k, tree := debianTree(t)
	if err := CheckVmlinuz(k.Vmlinuz); err != nil {
		t.Fatal(err)
	}
	if len(tree.Modules) < 1000 {
		t.Fatalf("only %d modules in %s", len(tree.Modules), k.ModulesDir)
	}
	mods, err := tree.Closure([]string{"virtio_net", "usb-storage", "mlx5_core"})
	if err != nil {
		t.Fatal(err)
	}
	pos := map[string]int{}
	for i, m := range mods {
		pos[m.Name] = i
	}
	// Every module comes after everything it depends on.
	for _, m := range mods {
		for _, d := range m.Depends {
			if pos[d] >= pos[m.Name] {
				t.Errorf("%s loads before its dependency %s", m.Name, d)
			}
		}
	}
	for _, want := range []string{"virtio", "virtio_ring", "net_failover", "failover", "usbcore", "usb_common", "scsi_mod", "mlx5_core"} {
		if _, ok := pos[want]; !ok {
			t.Errorf("closure lacks %s", want)
		}
	}
	dep, err := tree.ModulesDep(mods)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(dep)), "\n")
	byPath := map[string]string{}
	for _, l := range lines {
		p, rest, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("modules.dep line without colon: %q", l)
		}
		byPath[p] = rest
	}
	vn := byPath["kernel/drivers/net/virtio_net.ko"]
	for _, d := range []string{"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko", "kernel/drivers/net/net_failover.ko"} {
		if !strings.Contains(vn, d) {
			t.Errorf("virtio_net line %q lacks %s", vn, d)
		}
	}
	// A module without dependencies is "path.ko:" with nothing after it.
	if got, ok := byPath["kernel/net/core/failover.ko"]; !ok || got != "" {
		t.Errorf("failover.ko line is %q (present %v), want nothing after the colon", got, ok)
	}
	// The cached tree carries a full modules.dep that agrees.
	full, err := os.ReadFile(filepath.Join(k.ModulesDir, "modules.dep"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(full), "kernel/drivers/net/virtio_net.ko: ") {
		t.Error("cached modules.dep lacks virtio_net")
	}
}

func TestClosureErrors(t *testing.T) {
	_, tree := debianTree(t)
	// Built-in modules (tpm_tis in Debian's 6.1) are satisfied, not errors.
	if !tree.Builtin["tpm_tis"] {
		t.Error("modules.builtin not read: tpm_tis missing")
	}
	mods, err := tree.Closure([]string{"tpm_tis", "virtio_rng"})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if m.Name == "tpm_tis" {
			t.Error("built-in tpm_tis in the closure")
		}
	}
	if last := mods[len(mods)-1].Name; last != "virtio_rng" {
		t.Errorf("closure ends with %s, want virtio_rng", last)
	}
	if _, err := tree.Closure([]string{"no_such_driver"}); err == nil || !strings.Contains(err.Error(), `"no_such_driver" not found`) {
		t.Errorf("unknown module: err = %v", err)
	}
}

func TestParseModinfo(t *testing.T) {
	data := []byte("license=GPL\x00depends=virtio_ring,virtio,net-failover\x00softdep=pre: crc32c post: foo\x00intree=Y\x00")
	deps, soft := ParseModinfo(data)
	if want := []string{"virtio_ring", "virtio", "net_failover"}; !reflect.DeepEqual(deps, want) {
		t.Errorf("depends = %v, want %v", deps, want)
	}
	if want := []string{"crc32c"}; !reflect.DeepEqual(soft, want) {
		t.Errorf("softdep pre = %v, want %v", soft, want)
	}
	if deps, _ := ParseModinfo([]byte("depends=\x00")); len(deps) != 0 {
		t.Errorf("empty depends gave %v", deps)
	}
}

func FuzzParseModinfo(f *testing.F) {
	f.Add([]byte("depends=a,b\x00softdep=pre: c post: d\x00"))
	f.Add([]byte("depends=\x00"))
	f.Add([]byte("softdep=pre:\x00=\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		deps, soft := ParseModinfo(data)
		for _, d := range append(deps, soft...) {
			if d == "" || strings.Contains(d, "-") {
				t.Fatalf("bad module name %q", d)
			}
		}
	})
}

func TestFromFilesBadInputs(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "vmlinuz")
	if err := os.WriteFile(notKernel, []byte("not a kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ vmlinuz, mods, want string }{
		{filepath.Join(dir, "missing"), dir, "no such file"},
		{notKernel, dir, "not an x86 bzImage"},
	}
	for _, c := range cases {
		if _, err := FromFiles(c.vmlinuz, c.mods); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromFiles(%s, %s) = %v, want error with %q", c.vmlinuz, c.mods, err, c.want)
		}
	}
}

func TestFetchRejectsOddPackageNames(t *testing.T) {
	dir := t.TempDir()
	for _, pkg := range []string{"bash", "linux-image-../../x"} {
		if _, err := Fetch(context.Background(), dir, pkg, nil); err == nil {
			t.Errorf("Fetch(%q) succeeded", pkg)
		}
	}
}

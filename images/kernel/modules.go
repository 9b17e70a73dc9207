package kernel

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Module is one loadable kernel module of a module tree.
type Module struct {
	Name    string   // canonical name: underscores, no suffix (virtio_net)
	Path    string   // relative to the release directory (kernel/drivers/...)
	Depends []string // hard dependencies from .modinfo "depends="
	SoftPre []string // soft dependencies loaded first ("softdep=pre: ...")
}

// Tree is the set of modules of one kernel release.
type Tree struct {
	Dir     string             // /.../lib/modules/<release>
	Modules map[string]*Module // by canonical name
	Builtin map[string]bool    // built into the kernel (modules.builtin)
}

// CanonicalName turns a module file or depends= name into the kernel's
// module name: hyphens become underscores, the .ko suffix goes.
func CanonicalName(s string) string {
	s = filepath.Base(s)
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// ReadModinfo reads the dependencies from a module's .modinfo ELF section.
func ReadModinfo(path string) (depends, softPre []string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("module %s: %w", path, err)
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil, fmt.Errorf("module %s: no .modinfo section", path)
	}
	data, err := sec.Data()
	if err != nil {
		return nil, nil, fmt.Errorf("module %s: reading .modinfo: %w", path, err)
	}
	depends, softPre = ParseModinfo(data)
	return depends, softPre, nil
}

// ParseModinfo reads the NUL-separated key=value strings of a .modinfo
// section: "depends=a,b" and "softdep=pre: c post: d".
func ParseModinfo(data []byte) (depends, softPre []string) {
	for _, kv := range strings.Split(string(data), "\x00") {
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch key {
		case "depends":
			for _, d := range strings.Split(val, ",") {
				if d = strings.TrimSpace(d); d != "" {
					depends = append(depends, CanonicalName(d))
				}
			}
		case "softdep":
			softPre = append(softPre, parseSoftdepPre(val)...)
		}
	}
	return depends, softPre
}

// parseSoftdepPre returns the "pre:" names of a softdep value such as
// "pre: crc32c post: foo".
func parseSoftdepPre(val string) []string {
	var out []string
	inPre := false
	for _, w := range strings.Fields(val) {
		switch w {
		case "pre:":
			inPre = true
		case "post:":
			inPre = false
		default:
			if inPre {
				out = append(out, CanonicalName(w))
			}
		}
	}
	return out
}

// ScanTree reads every .ko under dir (a lib/modules/<release> directory).
// Compressed modules (.ko.xz, .ko.zst) are not supported: Debian 12 ships
// them uncompressed and u-root's loader reads plain ELF.
func ScanTree(dir string) (*Tree, error) {
	t := &Tree{Dir: dir, Modules: map[string]*Module{}, Builtin: map[string]bool{}}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, line := range strings.Fields(string(b)) {
			t.Builtin[CanonicalName(line)] = true
		}
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".ko") {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		deps, soft, err := ReadModinfo(p)
		if err != nil {
			return err
		}
		name := CanonicalName(p)
		t.Modules[name] = &Module{Name: name, Path: filepath.ToSlash(rel), Depends: deps, SoftPre: soft}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning module tree %s: %w", dir, err)
	}
	if len(t.Modules) == 0 {
		return nil, fmt.Errorf("module tree %s: no .ko files", dir)
	}
	return t, nil
}

// Closure returns the named modules with all their hard and soft-pre
// dependencies, in load order (every module after what it needs). Modules
// built into the kernel and soft dependencies the tree lacks are skipped;
// any other missing module is an error.
func (t *Tree) Closure(names []string) ([]*Module, error) {
	var order []*Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name, from string, soft bool) error
	visit = func(name, from string, soft bool) error {
		name = CanonicalName(name)
		m, ok := t.Modules[name]
		if !ok {
			if soft || t.Builtin[name] {
				return nil
			}
			if from == "" {
				return fmt.Errorf("module %q not found in %s", name, t.Dir)
			}
			return fmt.Errorf("module %q (needed by %s) not found in %s", name, from, t.Dir)
		}
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle at %q", name)
		}
		state[name] = 1
		for _, d := range m.SoftPre {
			if err := visit(d, name, true); err != nil {
				return err
			}
		}
		for _, d := range m.Depends {
			if err := visit(d, name, false); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, m)
		return nil
	}
	for _, n := range names {
		if err := visit(n, "", false); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// ModulesDep renders a modules.dep for mods in the depmod format u-root's
// kmodule reads: "path.ko: dep1.ko dep2.ko". A module without dependencies
// is written "path.ko:" with nothing after the colon (u-root fails to find
// it otherwise). Lines are sorted so the output is reproducible.
func (t *Tree) ModulesDep(mods []*Module) ([]byte, error) {
	lines := make([]string, 0, len(mods))
	for _, m := range mods {
		// depmod lists the full transitive closure in load-reverse order;
		// kmodule recurses itself, so direct dependencies suffice.
		deps := make([]string, 0, len(m.Depends))
		for _, d := range m.Depends {
			dm, ok := t.Modules[d]
			if !ok {
				return nil, fmt.Errorf("module %s depends on %q, which is not in %s", m.Name, d, t.Dir)
			}
			deps = append(deps, dm.Path)
		}
		line := m.Path + ":"
		if len(deps) > 0 {
			line += " " + strings.Join(deps, " ")
		}
		lines = append(lines, line)
	}
	sort.Strings(lines)
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

// All returns every module of the tree sorted by name.
func (t *Tree) All() []*Module {
	out := make([]*Module, 0, len(t.Modules))
	for _, m := range t.Modules {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ErrNoKernel is returned when a kernel file or module tree is missing.
var ErrNoKernel = errors.New("kernel not found")

// CheckVmlinuz verifies that path is a readable bzImage (the "HdrS" magic
// of the x86 boot protocol at offset 0x202).
func CheckVmlinuz(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", path, err)
	}
	defer f.Close()
	var hdr [4]byte
	if _, err := f.ReadAt(hdr[:], 0x202); err != nil || string(hdr[:]) != "HdrS" {
		return fmt.Errorf("kernel %s: not an x86 bzImage (no HdrS header at 0x202)", path)
	}
	return nil
}

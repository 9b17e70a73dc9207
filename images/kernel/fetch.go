// Package kernel provides the installer's Linux kernel: Debian's
// linux-image package fetched into a cache directory with apt-get download
// and dpkg-deb -x, and the modules.dep that u-root's module loader needs,
// generated from each module's .modinfo section.
package kernel

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// MetaPackage is the Debian package whose dependency names the current
// kernel image package (linux-image-<abi>-amd64).
const MetaPackage = "linux-image-amd64"

// Kernel is one unpacked kernel: a bzImage and its module tree.
type Kernel struct {
	Package    string // Debian package it came from, "" for user-given files
	Release    string // uname -r, e.g. 6.1.0-56-amd64
	Vmlinuz    string // path of the bzImage (with EFI stub)
	ModulesDir string // path of lib/modules/<release>
}

// FromFiles checks a user-given kernel and module tree. modulesDir is the
// lib/modules/<release> directory; its base name is the release.
func FromFiles(vmlinuz, modulesDir string) (*Kernel, error) {
	if err := CheckVmlinuz(vmlinuz); err != nil {
		return nil, err
	}
	if modulesDir == "" {
		return nil, fmt.Errorf("--modules is required with --kernel: the installer needs the kernel's own NIC and disk modules")
	}
	st, err := os.Stat(modulesDir)
	if err != nil {
		return nil, fmt.Errorf("modules directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("modules directory %s: not a directory", modulesDir)
	}
	if _, err := os.Stat(filepath.Join(modulesDir, "kernel")); err != nil {
		return nil, fmt.Errorf("modules directory %s: no kernel/ subdirectory; pass lib/modules/<release>", modulesDir)
	}
	return &Kernel{Release: filepath.Base(filepath.Clean(modulesDir)), Vmlinuz: vmlinuz, ModulesDir: modulesDir}, nil
}

// DefaultCacheDir is $FTVS_CACHE, else .cache at the root of the ftvs
// source tree containing the working directory, else the user cache dir.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("FTVS_CACHE"); d != "" {
		return filepath.Abs(d)
	}
	if root, err := FindModuleRoot(); err == nil {
		return filepath.Join(root, ".cache"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set FTVS_CACHE: %w", err)
	}
	return filepath.Join(d, "ftvs"), nil
}

// ModulePath is the Go module whose source tree FindModuleRoot looks for.
const ModulePath = "github.com/ftvs/ftvs"

// FindModuleRoot walks up from the working directory to the directory whose
// go.mod declares module github.com/ftvs/ftvs.
func FindModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(bytes.NewReader(data))
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 && f[0] == "module" && f[1] == ModulePath {
					return dir, nil
				}
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the ftvs source tree (no go.mod declaring module %s above the working directory)", ModulePath)
		}
		dir = parent
	}
}

// Fetch returns the kernel of Debian package pkg from cacheDir, fetching
// and unpacking it first when absent. An empty pkg means: any kernel already
// in the cache, else the one linux-image-amd64 currently depends on.
// Progress lines go to progress. Concurrent callers (parallel test binaries)
// serialise on a lock file, so the package is fetched once per machine.
func Fetch(ctx context.Context, cacheDir, pkg string, progress io.Writer) (*Kernel, error) {
	if progress == nil {
		progress = io.Discard
	}
	base := filepath.Join(cacheDir, "kernel")
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("kernel cache: %w", err)
	}
	unlock, err := lockFile(filepath.Join(base, ".lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	if pkg == "" {
		if k, err := newestCached(base); err == nil {
			return k, nil
		}
		fmt.Fprintf(progress, "kernel: resolving %s with apt-cache\n", MetaPackage)
		pkg, err = resolveMeta(ctx, progress)
		if err != nil {
			return nil, err
		}
	}
	if !strings.HasPrefix(pkg, "linux-image-") || strings.ContainsAny(pkg, "/ ") {
		return nil, fmt.Errorf("kernel package %q: expected a Debian linux-image-<version>-amd64 package name", pkg)
	}
	dir := filepath.Join(base, pkg)
	if k, err := load(dir, pkg); err == nil {
		return k, nil
	}
	if err := unpack(ctx, base, dir, pkg, progress); err != nil {
		return nil, err
	}
	return load(dir, pkg)
}

func lockFile(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("kernel cache lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("kernel cache lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

const completeMarker = "complete"

func newestCached(base string) (*Kernel, error) {
	ents, err := os.ReadDir(base)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), "linux-image-") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for i := len(names) - 1; i >= 0; i-- {
		if k, err := load(filepath.Join(base, names[i]), names[i]); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w in cache %s", ErrNoKernel, base)
}

// load opens a complete unpacked package directory.
func load(dir, pkg string) (*Kernel, error) {
	if _, err := os.Stat(filepath.Join(dir, completeMarker)); err != nil {
		return nil, err
	}
	vms, _ := filepath.Glob(filepath.Join(dir, "root", "boot", "vmlinuz-*"))
	if len(vms) != 1 {
		return nil, fmt.Errorf("%w: %s holds %d vmlinuz files", ErrNoKernel, dir, len(vms))
	}
	rel := strings.TrimPrefix(filepath.Base(vms[0]), "vmlinuz-")
	mods := filepath.Join(dir, "root", "lib", "modules", rel)
	if _, err := os.Stat(filepath.Join(mods, "modules.dep")); err != nil {
		return nil, fmt.Errorf("%w: %s has no modules.dep", ErrNoKernel, mods)
	}
	return &Kernel{Package: pkg, Release: rel, Vmlinuz: vms[0], ModulesDir: mods}, nil
}

// resolveMeta asks apt which linux-image-<abi>-amd64 the metapackage
// depends on, running apt-get update once if the package lists are empty.
func resolveMeta(ctx context.Context, progress io.Writer) (string, error) {
	try := func() (string, error) {
		out, err := exec.CommandContext(ctx, "apt-cache", "depends", MetaPackage).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("apt-cache depends %s: %v: %s", MetaPackage, err, bytes.TrimSpace(out))
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 2 && f[0] == "Depends:" && strings.HasPrefix(f[1], "linux-image-") {
				return f[1], nil
			}
		}
		return "", fmt.Errorf("apt-cache depends %s: no linux-image dependency listed", MetaPackage)
	}
	pkg, err := try()
	if err == nil {
		return pkg, nil
	}
	if err := aptUpdate(ctx, progress); err != nil {
		return "", err
	}
	return try()
}

func aptUpdate(ctx context.Context, progress io.Writer) error {
	fmt.Fprintln(progress, "kernel: apt-get update (package lists missing or stale)")
	out, err := exec.CommandContext(ctx, "apt-get", "update", "-qq").CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get update: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

func unpack(ctx context.Context, base, dir, pkg string, progress io.Writer) error {
	tmp, err := os.MkdirTemp(base, ".fetch-")
	if err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	defer os.RemoveAll(tmp)

	download := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", "download", pkg)
		cmd.Dir = tmp
		return cmd.CombinedOutput()
	}
	fmt.Fprintf(progress, "kernel: apt-get download %s\n", pkg)
	out, err := download()
	if err != nil {
		// A fresh machine has no package lists: update once and retry.
		if uerr := aptUpdate(ctx, progress); uerr != nil {
			return fmt.Errorf("apt-get download %s: %v: %s (and %w)", pkg, err, bytes.TrimSpace(out), uerr)
		}
		if out, err = download(); err != nil {
			return fmt.Errorf("apt-get download %s: %v: %s", pkg, err, bytes.TrimSpace(out))
		}
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, pkg+"_*.deb"))
	if len(debs) != 1 {
		return fmt.Errorf("apt-get download %s: expected one .deb in %s, found %d", pkg, tmp, len(debs))
	}
	root := filepath.Join(tmp, "root")
	fmt.Fprintf(progress, "kernel: unpacking %s\n", filepath.Base(debs[0]))
	if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-deb -x %s: %v: %s", debs[0], err, bytes.TrimSpace(out))
	}
	vms, _ := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if len(vms) != 1 {
		return fmt.Errorf("%s: expected one boot/vmlinuz-*, found %d", debs[0], len(vms))
	}
	rel := strings.TrimPrefix(filepath.Base(vms[0]), "vmlinuz-")
	mods := filepath.Join(root, "lib", "modules", rel)
	fmt.Fprintf(progress, "kernel: generating modules.dep for %s\n", rel)
	tree, err := ScanTree(mods)
	if err != nil {
		return err
	}
	dep, err := tree.ModulesDep(tree.All())
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(mods, "modules.dep"), dep, 0o644); err != nil {
		return fmt.Errorf("writing modules.dep: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(pkg+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(debs[0]); err != nil {
		return err
	}
	os.RemoveAll(dir) // a half-written earlier attempt
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("kernel cache: %w", err)
	}
	fmt.Fprintf(progress, "kernel: %s ready in %s\n", rel, dir)
	return nil
}

package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/u-root/mkuimage/cpio"

	"github.com/ftvs/ftvs/images/bootcfg"
	"github.com/ftvs/ftvs/images/e2e/qemuvm"
	"github.com/ftvs/ftvs/images/initramfs"
	"github.com/ftvs/ftvs/images/iso"
	"github.com/ftvs/ftvs/images/kernel"
	"github.com/ftvs/ftvs/images/uki"
)

// configPath is the unattended config embedded in the installer.
const configPath = "../../testdata/e2e/install.yaml"

// blobSize is the file the client downloads from the VS: a few MiB, so a
// rate-limited download is still running when a machine is killed.
const blobSize = 4 << 20

// One installer per test run, built in TestMain.
var (
	kern      *kernel.Kernel
	initrd    string // installer initramfs + the VS content overlay
	isoImage  string // the same installer as `ftvs image iso` writes it (isohybrid)
	blobSum   string // sha256 of /blob.bin on the VS
	setupErr  error
	setupSkip string
	setupLog  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fe7-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	setup(dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// setup builds the installer once: Debian's kernel from the shared cache
// (images/kernel) and the initramfs with the e2e config embedded, exactly
// what `ftvs image initramfs --config testdata/e2e/install.yaml` builds.
func setup(dir string) {
	ctx := context.Background()
	t0 := time.Now()
	var (
		cache string
		err   error
	)
	if kern, cache, setupSkip, setupErr = qemuvm.FetchKernel(ctx, os.Stderr); setupSkip != "" || setupErr != nil {
		return
	}
	t1 := time.Now()
	base := os.Getenv("FTVS_E2E_INITRAMFS")
	built := "prebuilt " + base
	if base == "" {
		base, built = filepath.Join(dir, "installer.cpio.gz"), "initramfs build"
		var progress bytes.Buffer
		if err := initramfs.Build(ctx, initramfs.Options{Kernel: kern, ConfigFile: configPath, Out: base, Progress: &progress}); err != nil {
			setupErr = fmt.Errorf("building initramfs: %w\n%s", err, progress.String())
			return
		}
	}
	if setupErr = checkEmbedded(base); setupErr != nil {
		return
	}
	t2 := time.Now()
	initrd = filepath.Join(dir, "installer+content.cpio.gz")
	if blobSum, err = withContent(base, initrd); err != nil {
		setupErr = err
		return
	}
	t3 := time.Now()
	if isoImage, err = buildISO(ctx, dir); err != nil {
		setupErr = err
		return
	}
	setupLog = fmt.Sprintf("kernel %v (cache %s), %s %v, content overlay %v, ISO %v",
		t1.Sub(t0).Round(time.Millisecond), cache, built, t2.Sub(t1).Round(time.Millisecond), t3.Sub(t2).Round(time.Millisecond),
		time.Since(t3).Round(time.Millisecond))
	fmt.Fprintln(os.Stderr, "e2e setup:", setupLog)
}

// bootCmdline is the installer's kernel command line in every e2e boot.
const bootCmdline = "console=ttyS0,115200 quiet panic=-1"

// buildISO writes the installer ISO (UKI for UEFI, isolinux for BIOS,
// isohybrid) from the e2e kernel and initramfs, as `ftvs image iso` does.
func buildISO(ctx context.Context, dir string) (string, error) {
	ukiPath, out := filepath.Join(dir, "ftvs.efi"), filepath.Join(dir, "ftvs.iso")
	if err := uki.Build(ctx, uki.Options{Vmlinuz: kern.Vmlinuz, Initrd: initrd, Cmdline: bootCmdline, Out: ukiPath}); err != nil {
		return "", fmt.Errorf("building the UKI: %w", err)
	}
	if err := iso.Build(iso.Options{UKI: ukiPath, Vmlinuz: kern.Vmlinuz, Initrd: initrd, Cmdline: bootCmdline, Out: out}); err != nil {
		return "", fmt.Errorf("building the ISO: %w", err)
	}
	return out, nil
}

// checkEmbedded makes sure the installer carries testdata/e2e/install.yaml
// as its embedded config (FTVS_E2E_INITRAMFS may name any initramfs: the
// bench builds it with `ftvs image initramfs --config`).
func checkEmbedded(path string) error {
	want, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("installer initramfs: %w", err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("installer initramfs %s: %w", path, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return fmt.Errorf("installer initramfs %s: %w", path, err)
	}
	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(raw)))
	if err != nil {
		return fmt.Errorf("installer initramfs %s: %w", path, err)
	}
	name := strings.TrimPrefix(bootcfg.EmbeddedPath, "/")
	for _, r := range recs {
		if r.Name == name {
			got, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
			if err != nil || !bytes.Equal(got, want) {
				return fmt.Errorf("installer initramfs %s: %s is not %s", path, name, configPath)
			}
			return nil
		}
	}
	return fmt.Errorf("installer initramfs %s has no embedded config %s", path, name)
}

// vsContentDir is where `ftvs install` (run by `ftvs boot`, default state
// directory) takes files staged for the VS from: it copies them onto the VS
// boot disk (www/), which the runtime serves.
const vsContentDir = "var/lib/ftvs/vs-content"

// withContent writes base followed by a second gzip'd newc archive holding
// the download file in the VS content directory: Linux unpacks
// concatenated initramfs archives in order, so this adds a file to the
// installer without rebuilding it. The installer config has no field for
// VS content beyond its index page.
func withContent(base, out string) (string, error) {
	blob := make([]byte, blobSize)
	r := rand.NewChaCha8([32]byte{'f', 'e', '7'})
	r.Read(blob)
	sum := sha256.Sum256(blob)

	var overlay bytes.Buffer
	zw := gzip.NewWriter(&overlay)
	rw := cpio.Newc.Writer(zw)
	rec := cpio.StaticRecord(blob, cpio.Info{Name: vsContentDir + "/blob.bin", Mode: cpio.S_IFREG | 0o644})
	if err := cpio.WriteRecordsAndDirs(rw, []cpio.Record{rec}); err != nil {
		return "", fmt.Errorf("content overlay: %w", err)
	}
	if err := cpio.WriteTrailer(rw); err != nil {
		return "", fmt.Errorf("content overlay: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	f, err := os.Create(out)
	if err != nil {
		return "", err
	}
	defer f.Close()
	in, err := os.Open(base)
	if err != nil {
		return "", err
	}
	defer in.Close()
	if _, err := io.Copy(f, in); err != nil {
		return "", err
	}
	if _, err := f.Write(overlay.Bytes()); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum[:]), f.Close()
}

// needSetup skips or fails on a setup problem.
func needSetup(t *testing.T) {
	t.Helper()
	if setupSkip != "" {
		t.Skip(setupSkip)
	}
	if setupErr != nil {
		t.Fatal(setupErr)
	}
	t.Logf("setup (once per run): %s", setupLog)
}

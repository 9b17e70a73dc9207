package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/hwcheck/inventory"
)

const (
	hwDualXeon = "../../testdata/hwcheck/linux-amd64-8581cf3a529e5d8b97ea876eade2f60d.tar.gz"
	hwRyzen    = "../../testdata/hwcheck/linux-amd64-61797caf7c0b6bca1725ad7975ed4773.tar.gz"
	hwSuperDMI = "../../testdata/hwcheck/SuperMicro-Dual-Xeon.dmi"
	hwDellDMI  = "../../testdata/hwcheck/Dell-PowerEdge-R630-Dual-Xeon.dmi"
)

// runHwcheck runs "ftvs args..." through the root command in-process and
// returns stdout, stderr and the exit status main would use.
func runHwcheck(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return out.String(), errOut.String(), 0
	}
	code = 2
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return out.String(), errOut.String(), code
		}
	}
	return out.String(), errOut.String() + err.Error(), code
}

// writeInventory saves inv as JSON in dir and returns the file.
func writeInventory(t *testing.T, dir, name string, inv *inventory.Inventory) string {
	t.Helper()
	b, err := inv.Encode()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hwTarball returns a gzip-compressed tar holding one entry (a directory
// when name ends in "/").
func hwTarball(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}
	if strings.HasSuffix(name, "/") {
		hdr = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte(content))
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

func TestHwcheckHelpOnEveryLevel(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"hwcheck", "--help"}, {"hwcheck", "inventory", "--help"},
		{"hwcheck", "compare", "--help"}, {"hwcheck", "snapshot", "--help"},
	} {
		out, _, code := runHwcheck(t, args...)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: code %d, output %q", args, code, out)
		}
	}
	out, _, _ := runHwcheck(t, "hwcheck", "compare", "--help")
	if !strings.Contains(out, "tolerate_unverified") || !strings.Contains(out, "1 mismatch") {
		t.Errorf("compare help lacks the policy format or exit codes:\n%s", out)
	}
}

func TestHwcheckInventory(t *testing.T) {
	out, _, code := runHwcheck(t, "hwcheck", "inventory", "--snapshot", hwDualXeon, "--smbios", hwSuperDMI)
	if code != 0 {
		t.Fatalf("code %d: %s", code, out)
	}
	for _, want := range []string{"cpu: 2 socket(s)", "version 3.0c", "16 of 16 DIMM slots populated", "network: not collected", "pci: 82 device(s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("inventory output lacks %q:\n%s", want, out)
		}
	}
	out, _, code = runHwcheck(t, "hwcheck", "inventory", "--smbios", hwDellDMI, "--json")
	var inv inventory.Inventory
	if code != 0 || json.Unmarshal([]byte(out), &inv) != nil || *inv.BIOS.Version != "2.3.4" || inv.PCI != nil {
		t.Errorf("--json: code %d, %q", code, out)
	}
	// The live machine: runs, and says what it could not read.
	out, _, code = runHwcheck(t, "hwcheck", "inventory")
	if code != 0 || !strings.Contains(out, "source: live") || !strings.Contains(out, "unreadable:") {
		t.Errorf("live: code %d:\n%s", code, out)
	}
	if _, err := os.Stat("/sys/firmware/dmi/tables/DMI"); err != nil && !strings.Contains(out, "bios.version: no DMI tables") {
		t.Errorf("live inventory without DMI does not say so:\n%s", out)
	}
}

func TestHwcheckCompareExitCodes(t *testing.T) {
	dir := t.TempDir()
	base, err := inventory.Collect(context.Background(), inventory.Sources{Snapshot: hwRyzen, SMBIOS: hwSuperDMI})
	if err != nil {
		t.Fatal(err)
	}
	a := writeInventory(t, dir, "a.json", base)
	plain, err := inventory.Collect(context.Background(), inventory.Sources{Snapshot: hwRyzen})
	if err != nil {
		t.Fatal(err)
	}
	ryzenJSON := writeInventory(t, dir, "ryzen.json", plain)
	changed := *base
	bios := *base.BIOS
	bios.Version = new(string)
	*bios.Version = "3.2"
	changed.BIOS = &bios
	b := writeInventory(t, dir, "b.json", &changed)
	tolerant := filepath.Join(dir, "tolerant.yaml")
	os.WriteFile(tolerant, []byte("version: 1\ntolerate_unverified: ['**']\n"), 0o644)
	downgrade := filepath.Join(dir, "downgrade.yaml")
	os.WriteFile(downgrade, []byte("version: 1\ntolerate_unverified: ['**']\ndowngrade:\n  - path: bios.version\n    to: warning\n"), 0o644)
	badPolicy := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badPolicy, []byte("version: 1\ndowngrade:\n  - path: bios.version\n    to: sometimes\n"), 0o644)
	trunc := filepath.Join(dir, "trunc.tar.gz")
	raw, _ := os.ReadFile(hwRyzen)
	os.WriteFile(trunc, raw[:len(raw)/2], 0o644)
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, nil, 0o644)
	arm := filepath.Join(dir, "arm.tar.gz")
	os.WriteFile(arm, hwTarball(t, "proc/cpuinfo", "processor\t: 0\nBogoMIPS\t: 50.00\nCPU implementer\t: 0x41\n"), 0o644)
	emptyRoot := filepath.Join(dir, "emptyroot.tar.gz")
	os.WriteFile(emptyRoot, hwTarball(t, "sys/", ""), 0o644)
	corruptDMI := filepath.Join(dir, "corrupt.dmi")
	dmi, _ := os.ReadFile(hwDellDMI)
	os.WriteFile(corruptDMI, dmi[:90], 0o644)

	cases := []struct {
		name string
		args []string
		code int
		want []string // in stdout+stderr
	}{
		{"identical JSON, unknowns tolerated", []string{"hwcheck", "compare", a, a, "--policy", tolerant}, 0, []string{"verdict: MATCH"}},
		{"identical JSON, unknowns block", []string{"hwcheck", "compare", a, a}, 1, []string{"unverified", "verdict: MISMATCH"}},
		{"BIOS version differs", []string{"hwcheck", "compare", a, b, "--policy", tolerant}, 1, []string{"bios:\n", "fatal", `bios.version: "3.0c" vs "3.2"`, "verdict: MISMATCH (1 fatal"}},
		{"BIOS version downgraded", []string{"hwcheck", "compare", a, b, "--policy", downgrade}, 0, []string{"warning", "verdict: MATCH"}},
		{"tarball against JSON", []string{"hwcheck", "compare", hwRyzen, ryzenJSON, "--policy", tolerant}, 0, []string{"verdict: MATCH"}},
		{"snapshot vs other snapshot", []string{"hwcheck", "compare", hwDualXeon, hwRyzen}, 1, []string{"cpu.sockets[1]", "verdict: MISMATCH"}},
		{"bad policy", []string{"hwcheck", "compare", a, b, "--policy", badPolicy}, 2, []string{"bad.yaml:4:", "downgrade[0].to"}},
		{"missing policy", []string{"hwcheck", "compare", a, b, "--policy", filepath.Join(dir, "nope.yaml")}, 2, []string{"nope.yaml"}},
		{"truncated tarball", []string{"hwcheck", "compare", trunc, a}, 2, []string{"trunc.tar.gz", "truncated"}},
		{"empty file", []string{"hwcheck", "compare", a, empty}, 2, []string{"empty.json", "empty file"}},
		{"one argument", []string{"hwcheck", "compare", a}, 2, []string{"two files"}},
		{"corrupt SMBIOS", []string{"hwcheck", "inventory", "--smbios", corruptDMI}, 2, []string{"corrupt.dmi"}},
		{"truncated snapshot", []string{"hwcheck", "inventory", "--snapshot", trunc}, 2, []string{"trunc.tar.gz"}},
		{"non-x86 machine", []string{"hwcheck", "inventory", "--snapshot", arm}, 2, []string{"arm.tar.gz", "not an x86 cpuinfo"}},
		{"empty root", []string{"hwcheck", "compare", emptyRoot, a}, 2, []string{"emptyroot.tar.gz", "no proc/cpuinfo"}},
		{"unknown flag", []string{"hwcheck", "inventory", "--nope"}, 2, []string{"unknown flag"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := runHwcheck(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d, want %d\n%s%s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
			if c.code != 2 {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if !strings.HasPrefix(lines[len(lines)-1], "verdict: ") {
					t.Errorf("last line %q is not the verdict", lines[len(lines)-1])
				}
			}
		})
	}

	out, _, code := runHwcheck(t, "hwcheck", "compare", a, b, "--json", "--policy", tolerant)
	var rep struct {
		Verdict     string
		Differences []struct{ Path, Severity, A, B string }
	}
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || rep.Verdict != "mismatch" {
		t.Fatalf("--json: code %d %q", code, out)
	}
	fatal := 0
	for _, d := range rep.Differences {
		if d.Severity == "fatal" {
			fatal++
			if d.Path != "bios.version" || d.B != `"3.2"` {
				t.Errorf("fatal difference %+v", d)
			}
		}
	}
	if fatal != 1 {
		t.Errorf("%d fatal differences, want 1", fatal)
	}
}

func TestHwcheckSnapshot(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "this.tar.gz")
	if _, errOut, code := runHwcheck(t, "hwcheck", "snapshot", "--out", file); code != 0 {
		t.Fatalf("snapshot: exit %d: %s", code, errOut)
	}
	out, _, code := runHwcheck(t, "hwcheck", "inventory", "--snapshot", file)
	if code != 0 || !strings.Contains(out, "source: snapshot this.tar.gz") || !strings.Contains(out, "boot mode ") {
		t.Errorf("inventory of the snapshot: exit %d\n%s", code, out)
	}
	// The snapshot of this machine matches this machine (unknowns tolerated).
	tolerant := filepath.Join(dir, "p.yaml")
	os.WriteFile(tolerant, []byte("version: 1\ntolerate_unverified: ['**']\n"), 0o644)
	live, _, _ := runHwcheck(t, "hwcheck", "inventory", "--json")
	liveFile := filepath.Join(dir, "live.json")
	os.WriteFile(liveFile, []byte(live), 0o644)
	if out, _, code := runHwcheck(t, "hwcheck", "compare", liveFile, file, "--policy", tolerant); code != 0 {
		t.Errorf("live vs its snapshot: exit %d\n%s", code, out)
	}
	// Never overwrite a file.
	if _, errOut, code := runHwcheck(t, "hwcheck", "snapshot", "--out", file); code != 2 || !strings.Contains(errOut, "exists") {
		t.Errorf("overwrite: exit %d %s", code, errOut)
	}
	if _, errOut, code := runHwcheck(t, "hwcheck", "snapshot"); code != 2 || !strings.Contains(errOut, "--out") {
		t.Errorf("no --out: exit %d %s", code, errOut)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Bad inputs fail with an error naming the problem, before anything slow
// runs, and leave the output directory untouched.
func TestImageBadInputsWriteNothing(t *testing.T) {
	dir := t.TempDir()
	notKernel := filepath.Join(dir, "vmlinuz")
	os.WriteFile(notKernel, []byte("plain text"), 0o644)
	unreadable := filepath.Join(dir, "secret.conf")
	os.WriteFile(unreadable, []byte("x"), 0o644)
	os.Chmod(unreadable, 0o000)
	out := filepath.Join(dir, "out.img")
	cases := []struct {
		medium string
		f      imageFlags
		want   string
	}{
		{"usb", imageFlags{}, "--out is required"},
		{"usb", imageFlags{out: out, kernel: filepath.Join(dir, "no-vmlinuz"), modules: dir}, "no-vmlinuz"},
		{"usb", imageFlags{out: out, kernel: notKernel, modules: dir}, "not an x86 bzImage"},
		{"iso", imageFlags{out: out, modules: dir}, "--modules given without --kernel"},
		{"pxe", imageFlags{out: out, config: filepath.Join(dir, "missing.conf")}, "missing.conf"},
		{"iso", imageFlags{out: filepath.Join(dir, "nodir", "x.iso")}, "parent directory does not exist"},
		{"usb", imageFlags{out: out, initramfs: filepath.Join(dir, "no-initrd")}, "no-initrd"},
	}
	if os.Getuid() != 0 { // root reads mode-000 files
		cases = append(cases, struct {
			medium string
			f      imageFlags
			want   string
		}{"initramfs", imageFlags{out: out, config: unreadable}, "secret.conf"})
	}
	for _, c := range cases {
		f := c.f
		var log bytes.Buffer
		err := runImage(context.Background(), &log, c.medium, &f)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %+v: err = %v, want one containing %q", c.medium, c.f, err, c.want)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "vmlinuz" && e.Name() != "secret.conf" {
			t.Errorf("left behind in the output directory: %s", e.Name())
		}
	}
}

func TestBootReportsEmbeddedConfigAndFallsBackToShell(t *testing.T) {
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	embedded := filepath.Join(dir, "install.conf")
	os.WriteFile(cmdline, []byte("console=ttyS0 quiet\n"), 0o644)
	os.WriteFile(embedded, []byte("abc"), 0o644)

	root := &cobra.Command{Use: "ftvs"}
	root.AddCommand(newBootCmd())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"boot", "--cmdline", cmdline, "--embedded", embedded})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		BootBanner,
		"from " + embedded + ": 3 bytes, sha256 ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"no 'ftvs install'; dropping to the u-root shell",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("boot output lacks %q:\n%s", want, s)
		}
	}

	// With an install subcommand present, boot runs it with the config.
	var gotConfig string
	install := &cobra.Command{Use: "install", RunE: func(cmd *cobra.Command, _ []string) error {
		gotConfig, _ = cmd.Flags().GetString("config")
		return nil
	}}
	install.Flags().String("config", "", "")
	root.AddCommand(install)
	out.Reset()
	root.SetArgs([]string{"boot", "--cmdline", cmdline, "--embedded", embedded})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if gotConfig != fetchedConfigPath {
		t.Errorf("install ran with --config %q, want %q\n%s", gotConfig, fetchedConfigPath, out.String())
	}
	if b, err := os.ReadFile(fetchedConfigPath); err != nil || string(b) != "abc" {
		t.Errorf("%s = %q, %v", fetchedConfigPath, b, err)
	}
	os.Remove(fetchedConfigPath)
}

func TestBootReportsBadConfigParam(t *testing.T) {
	dir := t.TempDir()
	cmdline := filepath.Join(dir, "cmdline")
	os.WriteFile(cmdline, []byte("ftvs.config=ftp://host/x\n"), 0o644)
	root := &cobra.Command{Use: "ftvs"}
	root.AddCommand(newBootCmd())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"boot", "--cmdline", cmdline, "--embedded", filepath.Join(dir, "none")})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `config error: ftvs.config=ftp://host/x: unknown scheme "ftp"`) {
		t.Errorf("output:\n%s", out.String())
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	ftpsvc "github.com/ftvs/ftvs/ftvs/services/ftp"
	"github.com/ftvs/ftvs/ftvs/vsrun"
)

func parseServiceFlags(t *testing.T, args ...string) (vsrun.SoloConfig, error) {
	t.Helper()
	var f vsServiceFlags
	fl := pflag.NewFlagSet("t", pflag.ContinueOnError)
	f.add(fl)
	if err := fl.Parse(args); err != nil {
		t.Fatal(err)
	}
	var c vsrun.SoloConfig
	return c, f.apply(&c)
}

func TestVSServiceFlags(t *testing.T) {
	c, err := parseServiceFlags(t, "--ftp", "--ftp-user", "bob:pw:rw", "--ftp-user", "eve:x", "--ftp-pasv-ports", "40000-40010",
		"--nbd-export", "d1=/tmp/a.img", "--nbd-export", "d2=/tmp/b.img:ro", "--nbd-port", "10810")
	if err != nil {
		t.Fatal(err)
	}
	if c.FTP == nil || !c.FTPWrite || c.FTP.PasvMin != 40000 || c.FTP.PasvMax != 40010 || len(c.FTP.Users) != 2 ||
		c.FTP.Users[0].PasswordSHA256 != ftpsvc.HashPassword("pw") || !c.FTP.Users[0].Write || c.FTP.Users[1].Write {
		t.Fatalf("ftp config %+v write=%v", c.FTP, c.FTPWrite)
	}
	if c.NBD == nil || c.NBD.Port != 10810 || len(c.NBD.Exports) != 2 || !c.NBD.Exports[1].ReadOnly ||
		c.NBDFiles[0] != "/tmp/a.img" || c.NBDFiles[1] != "/tmp/b.img" {
		t.Fatalf("nbd config %+v files %v", c.NBD, c.NBDFiles)
	}
	if c, err := parseServiceFlags(t, "--ftp"); err != nil || c.FTPWrite || !c.FTP.Anonymous {
		t.Fatalf("plain --ftp: %+v %v", c, err)
	}
	for _, bad := range [][]string{
		{"--ftp", "--ftp-user", "nopassword"},
		{"--ftp", "--ftp-user", "a:b:admin"},
		{"--ftp", "--ftp-pasv-ports", "5-1"},
		{"--ftp", "--ftp-port", "30005"}, // inside the passive range
		{"--ftp-user", "a:b"},            // without --ftp
		{"--nbd-export", "noequals"},
		{"--nbd-export", "a=/x", "--nbd-export", "a=/y"},
	} {
		if _, err := parseServiceFlags(t, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("error leaks a password: %v", err)
		}
	}
}

// TestVSRunFTPAndNBD runs `ftvs vs run --ftp --nbd-export` (in-process, on
// a thread inside a VS namespace) and uses it with curl (FTP download and
// upload), nbdinfo and qemu-io from a client namespace.
func TestVSRunFTPAndNBD(t *testing.T) {
	vs, cl := vethPair(t, "fs5", "10.81.0.2/24", "curl", "ping", "nbdinfo", "qemu-io")

	dir := t.TempDir()
	content := bytes.Repeat([]byte("ftvs ftp\n"), 200_000)
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(disk, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	stop := runVS(t, vs, "--iface", "v0", "--mac", "02:f5:00:00:00:09", "--ip", "10.81.0.1/24", "--root", dir,
		"--ftp", "--ftp-user", "u:pw:rw", "--nbd-export", "d="+disk)
	clientRun := cl.Run
	if !waitFor(10*time.Second, func() bool { _, err := cl.Run("ping", "-c", "1", "-W", "1", "10.81.0.1"); return err == nil }) {
		t.Fatalf("VS never answered ping; its output: %s", stop())
	}
	out, err := clientRun("curl", "-sS", "--fail", "--max-time", "30", "ftp://u:pw@10.81.0.1/f.txt")
	if err != nil || out != string(content) {
		t.Fatalf("curl ftp: %v (%d bytes of %d): %.200s", err, len(out), len(content), out)
	}
	up := filepath.Join(t.TempDir(), "up.txt")
	os.WriteFile(up, []byte("uploaded through ftvs vs run\n"), 0o644)
	if out, err := clientRun("curl", "-sS", "--fail", "--max-time", "30", "-T", up, "ftp://u:pw@10.81.0.1/up.txt"); err != nil {
		t.Fatalf("curl ftp upload: %v: %s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "up.txt")); string(b) != "uploaded through ftvs vs run\n" {
		t.Fatalf("upload landed as %q", b)
	}
	if out, err := clientRun("nbdinfo", "nbd://10.81.0.1/d"); err != nil || !strings.Contains(out, "export-size: 8388608") {
		t.Fatalf("nbdinfo: %v: %s", err, out)
	}
	if out, err := clientRun("qemu-io", "-f", "raw", "-c", "write -P 0x3c 4096 8192", "-c", "read -P 0x3c 4096 8192", "nbd://10.81.0.1/d"); err != nil ||
		strings.Contains(out, "failed") {
		t.Fatalf("qemu-io: %v: %s", err, out)
	}
	stop()
	b, err := os.ReadFile(disk)
	if err != nil || !bytes.Equal(b[4096:4096+8192], bytes.Repeat([]byte{0x3c}, 8192)) {
		t.Fatalf("the NBD write is not in the backing file after the VS stopped (%v)", err)
	}
}

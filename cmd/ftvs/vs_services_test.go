package main

import (
	"strings"
	"testing"

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

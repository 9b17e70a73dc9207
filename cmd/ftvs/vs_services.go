package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	ftpsvc "github.com/ftvs/ftvs/ftvs/services/ftp"
	nbdsvc "github.com/ftvs/ftvs/ftvs/services/nbd"
	"github.com/ftvs/ftvs/ftvs/vsrun"
)

// vsServiceFlags are the FTP and NBD options of `ftvs vs run`.
type vsServiceFlags struct {
	ftp          bool
	ftpPort      uint16
	ftpAnon      bool
	ftpAnonWrite bool
	ftpUsers     []string
	ftpPasv      string
	nbdExports   []string
	nbdPort      uint16
}

func (f *vsServiceFlags) add(fl *pflag.FlagSet) {
	fl.BoolVar(&f.ftp, "ftp", false, "also serve the files (--root or --boot-disk) over FTP (passive and active mode)")
	fl.Uint16Var(&f.ftpPort, "ftp-port", 21, "TCP port of the FTP service")
	fl.BoolVar(&f.ftpAnon, "ftp-anonymous", true, "allow anonymous FTP login (read-only unless --ftp-anonymous-write)")
	fl.BoolVar(&f.ftpAnonWrite, "ftp-anonymous-write", false, "let anonymous FTP users upload, rename and delete files")
	fl.StringArrayVar(&f.ftpUsers, "ftp-user", nil, "FTP account NAME:PASSWORD[:rw] (repeatable; :rw may change the files)")
	fl.StringVar(&f.ftpPasv, "ftp-pasv-ports", "30000-30099", "passive data port range MIN-MAX")
	fl.StringArrayVar(&f.nbdExports, "nbd-export", nil, "serve FILE (a file or block device) over NBD as NAME: NAME=FILE[:ro] (repeatable)")
	fl.Uint16Var(&f.nbdPort, "nbd-port", 10809, "TCP port of the NBD service")
}

// apply checks the service flags and puts them into c.
func (f *vsServiceFlags) apply(c *vsrun.SoloConfig) error {
	if f.ftp {
		fc := ftpsvc.Config{Port: f.ftpPort, Anonymous: f.ftpAnon, AnonymousWrite: f.ftpAnonWrite}
		lo, hi, ok := strings.Cut(f.ftpPasv, "-")
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if !ok || err1 != nil || err2 != nil || a == 0 || a > b {
			return fmt.Errorf("--ftp-pasv-ports %q: want MIN-MAX, e.g. 30000-30099", f.ftpPasv)
		}
		fc.PasvMin, fc.PasvMax = uint16(a), uint16(b)
		write := f.ftpAnonWrite
		for _, u := range f.ftpUsers {
			parts := strings.Split(u, ":")
			if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || (len(parts) == 3 && parts[2] != "rw" && parts[2] != "ro") {
				return fmt.Errorf("--ftp-user %q: want NAME:PASSWORD[:rw|:ro]", parts[0])
			}
			rw := len(parts) == 3 && parts[2] == "rw"
			write = write || rw
			fc.Users = append(fc.Users, ftpsvc.User{Name: parts[0], PasswordSHA256: ftpsvc.HashPassword(parts[1]), Write: rw})
		}
		if err := fc.Validate(); err != nil {
			return fmt.Errorf("--ftp: %w", err)
		}
		c.FTP, c.FTPWrite = &fc, write
	} else if len(f.ftpUsers) > 0 || f.ftpAnonWrite {
		return fmt.Errorf("--ftp-user and --ftp-anonymous-write need --ftp")
	}
	if len(f.nbdExports) > 0 {
		nc := nbdsvc.Config{Port: f.nbdPort}
		for _, e := range f.nbdExports {
			name, file, ok := strings.Cut(e, "=")
			if !ok || name == "" || file == "" {
				return fmt.Errorf("--nbd-export %q: want NAME=FILE[:ro]", e)
			}
			ro := strings.HasSuffix(file, ":ro")
			file = strings.TrimSuffix(file, ":ro")
			nc.Exports = append(nc.Exports, nbdsvc.Export{Name: name, ReadOnly: ro})
			c.NBDFiles = append(c.NBDFiles, file)
		}
		if err := nc.Validate(); err != nil {
			return fmt.Errorf("--nbd-export: %w", err)
		}
		c.NBD = &nc
	}
	return nil
}

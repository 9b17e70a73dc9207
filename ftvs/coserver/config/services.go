package config

import (
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/ftvs/ftvs/internal/yamlconf"
)

// HTTPService configures the VS's HTTP service.
type HTTPService struct {
	Service `yaml:",inline"`
	// UploadPrefix turns PUT (upload) on for paths under it, like
	// "/upload/"; it needs the boot disk (the served store must be
	// mirrored to be written). "" refuses PUT.
	UploadPrefix string `yaml:"upload_prefix"`
	// MaxUploadBytes bounds one PUT body (0: 4 GiB - 1, FAT32's largest file).
	MaxUploadBytes int64 `yaml:"max_upload_bytes"`
}

// FTPService configures the VS's FTP service (passive and active mode).
type FTPService struct {
	Service `yaml:",inline"`
	// Anonymous allows USER anonymous/ftp (default true); AnonymousWrite
	// lets it upload, rename and delete too.
	Anonymous      *bool     `yaml:"anonymous"`
	AnonymousWrite bool      `yaml:"anonymous_write"`
	Users          []FTPUser `yaml:"users"`
	// PasvPorts is the passive data port range "MIN-MAX" (30000-30099).
	PasvPorts string `yaml:"pasv_ports"`

	PasvMin, PasvMax uint16 `yaml:"-"` // parsed from PasvPorts
}

// FTPUser is one FTP account: password (plain) or password_sha256 (hex).
type FTPUser struct {
	Name           string `yaml:"name"`
	Password       string `yaml:"password"`
	PasswordSHA256 string `yaml:"password_sha256"`
	Write          bool   `yaml:"write"`
}

// AnonymousOK says whether anonymous login is allowed (default yes).
func (f *FTPService) AnonymousOK() bool { return f.Anonymous == nil || *f.Anonymous }

// Disk is one mirrored virtual disk: this node's copy (made with
// `ftvs vdisk create`; both nodes' copies of disk i form one mirror) and,
// when Export is set, the NBD export that serves it.
type Disk struct {
	Name string `yaml:"name"`
	Path string `yaml:"path"` // this node's copy: block device or file
	// Offset and Size place the copy inside path (a whole disk: the
	// installer's partition, with no partition device needed), in bytes,
	// sector-aligned; Size 0 runs to the end. Default: all of path.
	Offset   int64  `yaml:"offset"`
	Size     int64  `yaml:"size"`
	Export   string `yaml:"export"` // NBD export name; "" serves it not
	ReadOnly bool   `yaml:"read_only"`
	// ResyncRate limits the resync stream in bytes/s (0: unlimited).
	ResyncRate int64 `yaml:"resync_rate"`
	// Boot makes this disk the VS boot disk: its data area holds a FAT32
	// filesystem that HTTP and FTP serve (and write: uploads), read and
	// written by the VS through the mirror like any VS write. At most one.
	Boot bool `yaml:"boot"`
	// ServeDir is the boot disk's directory HTTP and FTP serve, like
	// "/www" (default "/": the whole filesystem). Only with boot.
	ServeDir string `yaml:"serve_dir"`
}

// BootDisk is the index into VS.Disks of the boot disk, or -1.
func (c *Config) BootDisk() int {
	for i, dk := range c.VS.Disks {
		if dk.Boot {
			return i
		}
	}
	return -1
}

// maxDisks: each disk takes two link message types from 0xB0 up.
const maxDisks = 16

func (c *Config) validateStorage(d *yamlconf.Doc) error {
	hasBoot := c.BootDisk() >= 0
	if h := c.VS.Services.HTTP; h != nil {
		if h.UploadPrefix != "" {
			if !strings.HasPrefix(h.UploadPrefix, "/") || strings.Contains(h.UploadPrefix, "..") {
				return d.Errorf("vs.services.http.upload_prefix", "%q is not an absolute path like /upload/", h.UploadPrefix)
			}
			if !hasBoot {
				return d.Errorf("vs.services.http.upload_prefix", "needs the boot disk (a vs.disks entry with boot: true): vs.content is served read-only")
			}
		}
		if h.MaxUploadBytes < 0 {
			return d.Errorf("vs.services.http.max_upload_bytes", "is %d; must not be negative", h.MaxUploadBytes)
		}
	}
	if f := c.VS.Services.FTP; f != nil {
		f.PasvMin, f.PasvMax = 30000, 30099
		if f.PasvPorts != "" {
			lo, hi, ok := strings.Cut(f.PasvPorts, "-")
			a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
			b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
			if !ok || err1 != nil || err2 != nil || a == 0 || a > b {
				return d.Errorf("vs.services.ftp.pasv_ports", "%q is not a port range MIN-MAX like 30000-30099", f.PasvPorts)
			}
			f.PasvMin, f.PasvMax = uint16(a), uint16(b)
		}
		// Each node serves its own vs.content directory: an upload would
		// change one node's copy only (a resync does not carry it), so
		// only the mirrored boot disk may be written.
		if f.AnonymousWrite && !hasBoot {
			return d.Errorf("vs.services.ftp.anonymous_write", "needs the boot disk (a vs.disks entry with boot: true): vs.content is served read-only")
		}
		names := map[string]bool{}
		for i, u := range f.Users {
			field := fmt.Sprintf("vs.services.ftp.users[%d]", i)
			switch {
			case u.Name == "":
				return d.Errorf(field+".name", "is missing")
			case u.Name == "anonymous" || u.Name == "ftp":
				return d.Errorf(field+".name", "%q is the anonymous login; use anonymous/anonymous_write", u.Name)
			case names[u.Name]:
				return d.Errorf(field+".name", "%q is given twice", u.Name)
			case (u.Password == "") == (u.PasswordSHA256 == ""):
				return d.Errorf(field, "needs exactly one of password and password_sha256")
			}
			if u.PasswordSHA256 != "" {
				if b, err := hex.DecodeString(u.PasswordSHA256); err != nil || len(b) != 32 {
					return d.Errorf(field+".password_sha256", "is not 64 hex digits")
				}
			}
			if u.Write && !hasBoot {
				return d.Errorf(field+".write", "needs the boot disk (a vs.disks entry with boot: true): vs.content is served read-only")
			}
			names[u.Name] = true
		}
	}
	if len(c.VS.Disks) > maxDisks {
		return d.Errorf("vs.disks", "has %d entries; at most %d", len(c.VS.Disks), maxDisks)
	}
	names, exports, boot := map[string]bool{}, 0, -1
	for i, dk := range c.VS.Disks {
		field := fmt.Sprintf("vs.disks[%d]", i)
		switch {
		case dk.Name == "":
			return d.Errorf(field+".name", "is missing")
		case names[dk.Name]:
			return d.Errorf(field+".name", "%q is given twice", dk.Name)
		case dk.Path == "":
			return d.Errorf(field+".path", "is missing: this node's copy (ftvs vdisk create)")
		case dk.ResyncRate < 0:
			return d.Errorf(field+".resync_rate", "is %d; must not be negative", dk.ResyncRate)
		case dk.Offset < 0 || dk.Offset%512 != 0:
			return d.Errorf(field+".offset", "is %d; must be a non-negative multiple of 512", dk.Offset)
		case dk.Size < 0 || dk.Size%512 != 0:
			return d.Errorf(field+".size", "is %d; must be a non-negative multiple of 512 (0: to the end)", dk.Size)
		}
		names[dk.Name] = true
		if dk.Export != "" {
			exports++
		}
		if err := checkBoot(d, field, dk, i, &boot); err != nil {
			return err
		}
	}
	web := c.VS.Services.HTTP != nil || c.VS.Services.FTP != nil
	switch {
	case boot >= 0 && c.VS.Content != "":
		return d.Errorf("vs.content", "is given together with a boot disk (vs.disks[%d]); HTTP and FTP serve one store: drop one", boot)
	case boot < 0 && c.VS.Content == "" && web:
		return d.Errorf("vs.content", "is missing: HTTP and FTP need a boot disk (a vs.disks entry with boot: true) or a content directory")
	}
	if exports > 0 && c.VS.Services.NBD == nil {
		return d.Errorf("vs.disks", "names NBD exports but vs.services.nbd is not enabled")
	}
	if c.VS.Services.NBD != nil && exports == 0 {
		return d.Errorf("vs.services.nbd", "is enabled but no vs.disks entry names an export")
	}
	return nil
}

// checkBoot validates one disk's boot fields; *boot is the boot disk's
// index so far (-1: none yet).
func checkBoot(d *yamlconf.Doc, field string, dk Disk, i int, boot *int) error {
	if !dk.Boot {
		if dk.ServeDir != "" {
			return d.Errorf(field+".serve_dir", "is only for the boot disk (boot: true)")
		}
		return nil
	}
	if *boot >= 0 {
		return d.Errorf(field+".boot", "vs.disks[%d] is the boot disk already; a VS has one", *boot)
	}
	*boot = i
	// NBD clients writing the FAT32 would change it under the VS's own
	// reader (HTTP, FTP): exporting it is for inspection only.
	if dk.Export != "" && !dk.ReadOnly {
		return d.Errorf(field+".export", "exports the boot disk read-write; HTTP and FTP write its FAT32: add read_only: true or export another disk")
	}
	if dk.ServeDir != "" {
		clean := path.Clean(dk.ServeDir)
		if !strings.HasPrefix(dk.ServeDir, "/") || strings.TrimSuffix(dk.ServeDir, "/") != strings.TrimSuffix(clean, "/") {
			return d.Errorf(field+".serve_dir", "%q is not a clean absolute path like /www", dk.ServeDir)
		}
	}
	return nil
}

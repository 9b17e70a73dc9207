package coserver

import (
	"github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/ftvs/ftvs/ftvs/machine"
	ftpsvc "github.com/ftvs/ftvs/ftvs/services/ftp"
	nbdsvc "github.com/ftvs/ftvs/ftvs/services/nbd"
)

// serviceConfigs puts the FTP and NBD sections into the VS's config, as
// `ftvs vs run` does from its flags. NBD exports are the vs.disks that
// name one, in file order: Env.Disks follows the same order (exported).
func serviceConfigs(cfg *config.Config, mc *machine.Config) {
	if f := cfg.VS.Services.FTP; f != nil {
		fc := ftpsvc.Config{Port: uint16(f.Port), Anonymous: f.AnonymousOK(), AnonymousWrite: f.AnonymousWrite,
			PasvMin: f.PasvMin, PasvMax: f.PasvMax}
		for _, u := range f.Users {
			h := u.PasswordSHA256
			if h == "" {
				h = ftpsvc.HashPassword(u.Password)
			}
			fc.Users = append(fc.Users, ftpsvc.User{Name: u.Name, PasswordSHA256: h, Write: u.Write})
		}
		mc.FTP = machine.FTPConfig{Enabled: true, Config: fc}
	}
	if n := cfg.VS.Services.NBD; n != nil {
		nc := nbdsvc.Config{Port: uint16(n.Port)}
		for _, dk := range cfg.VS.Disks {
			if dk.Export != "" {
				nc.Exports = append(nc.Exports, nbdsvc.Export{Name: dk.Export, Description: dk.Name, ReadOnly: dk.ReadOnly})
			}
		}
		mc.NBD = machine.NBDConfig{Enabled: true, Config: nc}
	}
}

// exported are the indexes into vs.disks of the NBD exports, in order.
func exported(cfg *config.Config) []int {
	var idx []int
	for i, dk := range cfg.VS.Disks {
		if dk.Export != "" && cfg.VS.Services.NBD != nil {
			idx = append(idx, i)
		}
	}
	return idx
}

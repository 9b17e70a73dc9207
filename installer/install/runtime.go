package install

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"

	"gopkg.in/yaml.v3"

	cscfg "github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/installer/config"
	"github.com/ftvs/ftvs/installer/layout"
)

// ManagementPort is where the runtime serves status and control.
const ManagementPort = 7443

// ServeDir is the boot disk's directory HTTP and FTP serve (the layout
// puts the VS's web content under www/, its config under ftvs/).
const ServeDir = "/www"

// runtimeConfig is the `ftvs coserver` config for this node, in the
// runtime's own format (ftvs/coserver/config), checked by its parser. The
// virtual disks are the layout's partitions, named by their byte range on
// the target disk (no partition device needed); the first is the boot
// disk HTTP and FTP serve, the others are NBD exports when nbd is on.
func runtimeConfig(p *Plan, cfg *config.Config, key []byte, stateDir string) ([]byte, error) {
	rc := cscfg.Config{
		Node:       p.Node,
		PairKey:    hex.EncodeToString(key),
		Redirected: cscfg.Redirected{Interface: p.Roles.Redirected().Name, Port: "afpacket"},
		Management: cscfg.Management{Listen: addrPort(p.Management.Addr(), ManagementPort)},
		VS:         cscfg.VS{MAC: p.VS.MAC.String(), IP: p.VS.IP.String()},
		StateDir:   stateDir,
		Timeouts:   cscfg.Timeouts(cfg.Runtime), // the same fields, so a field added to one alone fails to build
	}
	if p.PeerMgmt.IsValid() {
		rc.Management.Peer = addrPort(p.PeerMgmt, ManagementPort)
	}
	if p.VS.Gateway.IsValid() {
		rc.VS.Gateway = p.VS.Gateway.String()
	}
	nbd := false
	for _, s := range cfg.VS.Services {
		switch s.Name {
		case "http":
			rc.VS.Services.HTTP = &cscfg.HTTPService{Service: cscfg.Service{Port: int(s.Port)}}
		case "ftp": // anonymous, read-only: write access needs users (a runtime config edit)
			rc.VS.Services.FTP = &cscfg.FTPService{Service: cscfg.Service{Port: int(s.Port)}}
		case "nbd":
			nbd = true
			rc.VS.Services.NBD = &cscfg.Service{Port: int(s.Port)}
		}
	}
	exports := 0
	for _, pt := range p.Layout.Parts {
		if pt.Kind != layout.KindVDisk {
			continue
		}
		dk := cscfg.Disk{Name: pt.VDName, Path: p.Disk.Path, Offset: int64(pt.Start) * layout.SectorSize, Size: int64(pt.Size)}
		if len(rc.VS.Disks) == 0 {
			dk.Boot, dk.ServeDir = true, ServeDir
		} else if nbd {
			dk.Export = pt.VDName
			exports++
		}
		rc.VS.Disks = append(rc.VS.Disks, dk)
	}
	if exports == 0 {
		rc.VS.Services.NBD = nil // only the boot disk: nothing to export
	}
	for _, l := range p.Links {
		rc.Links = append(rc.Links, cscfg.Link{Interface: l.NIC.Name,
			Local: addrPort(l.Local.Addr(), link.DefaultPort), Peer: addrPort(l.Peer, link.DefaultPort)})
	}
	out, err := yaml.Marshal(&rc)
	if err != nil {
		return nil, fmt.Errorf("runtime config: %w", err)
	}
	out = append([]byte("# Written by ftvs install for node "+strconv.Itoa(p.Node)+"; read by ftvs coserver.\n"), out...)
	if _, err := cscfg.Parse("coserver.yaml", out); err != nil {
		return nil, fmt.Errorf("the runtime refuses the config the installer wrote: %w", err)
	}
	return out, nil
}

func addrPort(a netip.Addr, port int) string {
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// vsConfig is the VS's own config on its boot disk.
func vsConfig(cfg *config.Config) []byte {
	type svc struct {
		Name string `yaml:"name"`
		Port uint16 `yaml:"port"`
	}
	v := struct {
		MAC      string `yaml:"mac"`
		IP       string `yaml:"ip"`
		Gateway  string `yaml:"gateway,omitempty"`
		Services []svc  `yaml:"services"`
	}{MAC: cfg.VS.MAC.String(), IP: cfg.VS.IP.String()}
	if cfg.VS.Gateway.IsValid() {
		v.Gateway = cfg.VS.Gateway.String()
	}
	for _, s := range cfg.VS.Services {
		v.Services = append(v.Services, svc{s.Name, s.Port})
	}
	out, _ := yaml.Marshal(&v)
	return append([]byte("# The virtual server's config (written by ftvs install).\n"), out...)
}

// indexHTML is the VS's initial web page.
func indexHTML(cfg *config.Config) []byte {
	return []byte(fmt.Sprintf("<!doctype html>\n<title>ftvs virtual server</title>\n<h1>ftvs virtual server %s</h1>\n<p>Installed by ftvs install; both CoServers serve this page in lockstep.</p>\n", cfg.VS.IP.Addr()))
}

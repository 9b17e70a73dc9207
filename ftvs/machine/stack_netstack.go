package machine

import "github.com/ftvs/ftvs/ftvs/netstack"

// newStack builds the VS's network stack from the configuration.
func newStack(cfg Config) (*netstack.Stack, error) {
	return netstack.New(netstack.Config{
		MAC:             cfg.MAC,
		IP:              cfg.IP,
		PrefixLen:       cfg.PrefixLen,
		Gateway:         cfg.Gateway,
		MTU:             cfg.MTU,
		ISNKey:          cfg.ISNKey,
		TSOMax:          cfg.TSOMax,
		ChecksumOffload: cfg.ChecksumOffload,
		MaxSockets:      cfg.MaxSockets,
		SendBuf:         cfg.SendBuf,
		RecvBuf:         cfg.RecvBuf,
	})
}

package machine

import (
	"github.com/ftvs/ftvs/ftvs/netstack"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// stackSockets is the stack as services see it: the sockapi.Sockets of
// netstack plus sockapi.Dialer (netstack's Dial). It holds no state.
type stackSockets struct{ *netstack.Stack }

var _ sockapi.Dialer = stackSockets{}

// Connect opens an active connection (FTP active-mode data).
func (s stackSockets) Connect(dst sockapi.Addr) (sockapi.SockID, error) { return s.Dial(dst) }

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

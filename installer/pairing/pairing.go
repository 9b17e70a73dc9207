// Package pairing is the installers' conversation over the first CoServer
// link: an authenticated ftvs/link session (pair key), an exchange of
// hardware inventories and the hwcheck comparison, which both sides compute
// the same way (node 1's inventory as A, node 2's as B) and confirm to each
// other, so both consoles show the same report and stop together.
package pairing

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/hwcheck/compare"
	"github.com/ftvs/ftvs/hwcheck/inventory"
	"github.com/ftvs/ftvs/hwcheck/policy"
)

// Message types on the pairing session.
const (
	msgInventory = 1 // JSON inventory
	msgVerdict   = 2 // JSON verdict
	msgBye       = 3 // nothing more will be sent
)

// Link is where the session runs: the first CoServer link.
type Link struct {
	Interface string
	Local     netip.Addr
	Peer      netip.Addr
	Port      int      // 0: the link package's default
	Net       link.Net // nil: the system's sockets (tests: a namespace's)
}

// Result is the outcome of pairing.
type Result struct {
	Report     compare.Report
	Text       string // the report as both consoles show it
	PeerAgrees bool   // the peer computed the same report
	Match      bool   // both sides say match
	PeerSays   string
}

type verdict struct {
	Verdict    string `json:"verdict"`
	ReportHash string `json:"report_hash"`
}

// Pair runs the pairing session. node is this side's number (1 dials, 2
// listens); it blocks until both sides have exchanged their verdicts or ctx
// ends.
func Pair(ctx context.Context, node int, key []byte, l Link, ours *inventory.Inventory, pol *policy.Policy, log *slog.Logger) (*Result, error) {
	if log == nil {
		log = slog.Default()
	}
	s, err := link.Start(link.Config{Node: node, Key: key, Log: log, Net: l.Net,
		Links: []link.LinkConfig{{Name: "pairing", Interface: l.Interface, Local: l.Local.String(), Peer: l.Peer.String(), Port: l.Port}}})
	if err != nil {
		return nil, fmt.Errorf("pairing session: %w", err)
	}
	defer s.Close()

	inv, err := json.Marshal(ours)
	if err != nil {
		return nil, fmt.Errorf("pairing: encode inventory: %w", err)
	}
	if err := s.Send(msgInventory, inv); err != nil {
		return nil, fmt.Errorf("pairing: send inventory: %w", err)
	}
	recv := func(want uint8) ([]byte, error) {
		for {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("pairing: waiting for the peer (message %d): %w", want, ctx.Err())
			case d, ok := <-s.Incoming():
				if !ok {
					return nil, fmt.Errorf("pairing: session closed")
				}
				if d.Event != nil {
					log.Info("pairing link", "event", d.Event.Kind.String(), "reason", d.Event.Reason)
					continue
				}
				if d.Type != want {
					return nil, fmt.Errorf("pairing: peer sent message type %d, want %d", d.Type, want)
				}
				return d.Payload, nil
			}
		}
	}
	peerRaw, err := recv(msgInventory)
	if err != nil {
		return nil, err
	}
	peer, err := inventory.Decode("peer inventory", peerRaw)
	if err != nil {
		return nil, fmt.Errorf("pairing: %w", err)
	}
	a, b := ours, peer
	if node == 2 {
		a, b = peer, ours
	}
	a.Source, b.Source = "node 1", "node 2"
	res := &Result{Report: compare.Compare(a, b, pol)}
	var txt bytes.Buffer
	res.Report.WriteText(&txt)
	res.Text = txt.String()
	sum := sha256.Sum256(txt.Bytes())
	mine := verdict{Verdict: string(res.Report.Verdict()), ReportHash: fmt.Sprintf("%x", sum)}
	vb, _ := json.Marshal(mine)
	if err := s.Send(msgVerdict, vb); err != nil {
		return nil, fmt.Errorf("pairing: send verdict: %w", err)
	}
	raw, err := recv(msgVerdict)
	if err != nil {
		return nil, err
	}
	var theirs verdict
	if err := json.Unmarshal(raw, &theirs); err != nil || (theirs.Verdict != string(compare.Match) && theirs.Verdict != string(compare.Mismatch)) {
		return nil, fmt.Errorf("pairing: peer's verdict is malformed: %q", raw)
	}
	res.PeerSays = theirs.Verdict
	res.PeerAgrees = theirs == mine
	res.Match = res.PeerAgrees && mine.Verdict == string(compare.Match)
	// Say bye and wait for the peer's, so neither side closes the session
	// while the other still waits for a verdict.
	if err := s.Send(msgBye, nil); err == nil {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ctx = bctx
		recv(msgBye)
	}
	return res, nil
}

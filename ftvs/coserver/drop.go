package coserver

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The drop notice: a primary that stops waiting for its secondary (the
// links fell silent) releases outputs the secondary never applied, so that
// secondary must never go live on its log. The primary tells it at once over
// the management network (POST /drop, authenticated with the pair key);
// the secondary then refuses to go live until it has rejoined from a
// snapshot. Over a partition that also cuts the management network the
// notice cannot arrive; the LAN probe covers that case (the primary's VS
// answers it).

type dropNotice struct {
	Node   int    `json:"node"`
	Seq    uint64 `json:"seq"`
	TimeMS int64  `json:"time_ms"`
	Nonce  string `json:"nonce"`
	MAC    string `json:"mac"`
}

func (n *dropNotice) sum(key []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "ftvs-drop v1|%d|%d|%d|%s", n.Node, n.Seq, n.TimeMS, n.Nonce)
	return hex.EncodeToString(m.Sum(nil))
}

// parseDrop decodes and authenticates a drop notice from the peer.
func parseDrop(b []byte, key []byte, self int, now time.Time) (*dropNotice, error) {
	var n dropNotice
	if err := decodePeerNotice("drop notice", b, &n, key, self, now); err != nil {
		return nil, err
	}
	return &n, nil
}

func (n *dropNotice) envelope() (int, int64, string, string) { return n.Node, n.TimeMS, n.Nonce, n.MAC }

// peerNotice is a notice one CoServer posts to the other over the
// management network (drop, control): JSON, signed with the pair key.
type peerNotice interface {
	envelope() (node int, timeMS int64, nonce, mac string)
	sum(key []byte) string
}

// decodePeerNotice decodes b strictly into n and checks what every notice
// must hold: sent by the peer, a 16-byte nonce, the pair key's MAC, and a
// time within 10 s of ours (replays are the caller's nonce check).
func decodePeerNotice(what string, b []byte, n peerNotice, key []byte, self int, now time.Time) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(n); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	node, timeMS, nonce, mac := n.envelope()
	if node != 3-self {
		return fmt.Errorf("%s from node %d, want the peer %d", what, node, 3-self)
	}
	if len(nonce) != 32 {
		return fmt.Errorf("%s: nonce is not 16 bytes of hex", what)
	}
	if !hmac.Equal([]byte(n.sum(key)), []byte(mac)) {
		return fmt.Errorf("%s: bad MAC (wrong pair key?)", what)
	}
	if d := now.Sub(time.UnixMilli(timeMS)); d > 10*time.Second || d < -10*time.Second {
		return fmt.Errorf("%s: time is %s off", what, d.Round(time.Millisecond))
	}
	return nil
}

// nonceSet remembers the nonces of the peer's notices for a minute (longer
// than decodePeerNotice's 10 s time window), so none is accepted twice.
type nonceSet struct {
	mu     sync.Mutex
	nonces map[string]time.Time
}

// fresh records nonce and reports whether it was not seen before.
func (s *nonceSet) fresh(nonce string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nonces == nil {
		s.nonces = map[string]time.Time{}
	}
	for k, t := range s.nonces { //detcheck:orderless (shell code; expiry only)
		if time.Since(t) > time.Minute {
			delete(s.nonces, k)
		}
	}
	if _, seen := s.nonces[nonce]; seen {
		return false
	}
	s.nonces[nonce] = time.Now()
	return true
}

// handleDrop serves POST /drop on the status endpoint.
func (d *Daemon) handleDrop(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4096))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	n, err := parseDrop(b, d.cfg.Key(), d.cfg.Node, time.Now())
	if err == nil && !d.drops.fresh(n.Nonce) {
		err = errors.New("drop notice: replayed nonce")
	}
	if err != nil {
		d.log.Warn("coserver: drop notice refused", "from", r.RemoteAddr, "err", err)
		http.Error(w, "refused", http.StatusForbidden)
		return
	}
	if node := d.node.Load(); node != nil && node.Status().Seq > n.Seq {
		// We applied inputs past the drop: we rejoined since.
		d.addEvent("drop-notice-stale", n.Seq, "already rejoined")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	d.dropped.Store(true)
	d.addEvent("dropped", n.Seq, "the primary went on alone at its seq "+strconv.FormatUint(n.Seq, 10)+": this log is stale until a snapshot")
	w.WriteHeader(http.StatusNoContent)
}

// sendDrop tells the peer's daemon that this primary no longer waits for it.
func (d *Daemon) sendDrop(seq uint64) {
	peer := d.cfg.Management.Peer
	if peer == "" {
		return
	}
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	n := dropNotice{Node: d.cfg.Node, Seq: seq, TimeMS: time.Now().UnixMilli(), Nonce: hex.EncodeToString(nb[:])}
	n.MAC = n.sum(d.cfg.Key())
	body, _ := json.Marshal(&n)
	c := http.Client{Timeout: d.cfg.Timeouts.Management}
	resp, err := c.Post("http://"+peer+"/drop", "application/json", bytes.NewReader(body))
	if err != nil {
		d.addEvent("drop-notice", seq, "not delivered: "+err.Error())
		return
	}
	resp.Body.Close()
	d.addEvent("drop-notice", seq, "delivered: "+resp.Status)
}

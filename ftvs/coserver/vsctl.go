package coserver

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ftvs/ftvs/ftvs/coserver/config"
	"github.com/ftvs/ftvs/ftvs/lockstep"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// The operator's pair-wide controls: stopping and starting the VS, and a
// resync on demand.
//
// Stop: both CoServers leave lockstep and serve only their status and the
// manager API (role vs-stopped); no frame leaves for the VS MAC. The
// secondary leaves first and the primary goes on alone until it has seen
// its peer go (its disks' generations then say it holds the newest data),
// then it stops too; each closes its disk copies clean. The stop survives
// restarts (a file in state_dir): an operator stopped the service, and a
// power cut must not start it behind their back. A CoServer that was down
// during the stop adopts it when it starts and finds its peer stopped.
//
// Start: a fresh boot of the VS from its disks and config, with the last
// primary (newest copies) as the fresh primary and the other joining it.
// There is no resume: the VS's memory (connections, sessions) lives only
// in the two processes, so once both left nothing is left to resume.
//
// Resync: the copy of the CoServer that is not the primary is made a resync
// target (the regions the last online verify found different, or all of
// it) and its daemon rejoins: the disks meet again and ftvs/mirror copies
// the marked regions from the primary's copy before the snapshot hand-over.

const (
	// VSStoppedFile, in state_dir, keeps the VS stopped across restarts.
	VSStoppedFile      = "vs-stopped"
	vsStartedFile      = "vs-started"       // time of the operator's last start
	freshPrimaryFile   = "vs-fresh-primary" // the node that boots the VS after a start
	resyncRequestFile  = "resync-request.json"
	discardRequestFile = "split-brain-discard.json"
	roleVSStopped      = "vs-stopped"
)

type vsStop struct {
	At          time.Time `json:"at"`
	LastPrimary int       `json:"last_primary"`
}

// VSStopped reports whether the operator stopped the VS.
func VSStopped(cfg *config.Config) bool {
	_, ok := readVSStop(cfg)
	return ok
}

func readVSStop(cfg *config.Config) (vsStop, bool) {
	var s vsStop
	b, err := os.ReadFile(filepath.Join(cfg.StateDir, VSStoppedFile))
	if err != nil {
		return s, false
	}
	_ = json.Unmarshal(b, &s)
	return s, true
}

func writeStateFile(cfg *config.Config, name string, b []byte) error {
	if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(cfg.StateDir, name+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(cfg.StateDir, name))
}

func writeVSStop(cfg *config.Config, s vsStop) error {
	b, _ := json.Marshal(s)
	if err := writeStateFile(cfg, VSStoppedFile, b); err != nil {
		return fmt.Errorf("record the VS stop in state_dir: %w", err)
	}
	return nil
}

func readVSStarted(cfg *config.Config) time.Time {
	b, err := os.ReadFile(filepath.Join(cfg.StateDir, vsStartedFile))
	if err != nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, string(bytes.TrimSpace(b)))
	return t
}

// recordVSStart ends the stop: the start time (the peer compares it with
// its own stop), the fresh primary, and the stop file removed last.
func recordVSStart(cfg *config.Config, at time.Time, freshPrimary int) error {
	if err := writeStateFile(cfg, vsStartedFile, []byte(at.UTC().Format(time.RFC3339Nano)+"\n")); err != nil {
		return fmt.Errorf("start VS: %w", err)
	}
	if freshPrimary == 1 || freshPrimary == 2 {
		if err := writeStateFile(cfg, freshPrimaryFile, []byte(strconv.Itoa(freshPrimary)+"\n")); err != nil {
			return fmt.Errorf("start VS: %w", err)
		}
	}
	if err := os.Remove(filepath.Join(cfg.StateDir, VSStoppedFile)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("start VS: %w", err)
	}
	return nil
}

// freshPrimary says whether this node starts as primary when both nodes
// start together (a fresh pair): node 1, unless a VS start named the last
// primary (its copies are the newest). The start's choice is used once.
func (d *Daemon) freshPrimary() bool {
	p := filepath.Join(d.cfg.StateDir, freshPrimaryFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return d.cfg.Node == 1
	}
	_ = os.Remove(p)
	n, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || (n != 1 && n != 2) {
		return d.cfg.Node == 1
	}
	d.addEvent("role", 0, "VS start: node "+strconv.Itoa(n)+" was the last primary and boots the VS")
	return n == d.cfg.Node
}

// AdoptPeerStop runs before a CoServer starts: when its peer reports the
// VS stopped after this node's last start, the operator stopped the pair
// while this node was away, and it stays stopped too.
func AdoptPeerStop(cfg *config.Config, log *slog.Logger) {
	if cfg.Management.Peer == "" || VSStopped(cfg) || OutOfService(cfg) {
		return
	}
	st, err := FetchStatus(cfg.Management.Peer, time.Second, false)
	if err != nil || !st.VSStopped || !st.VSStoppedAt.After(readVSStarted(cfg)) {
		return
	}
	if err := writeVSStop(cfg, vsStop{At: st.VSStoppedAt, LastPrimary: st.Node}); err != nil {
		log.Error("coserver: adopting the peer's VS stop", "err", err)
		return
	}
	log.Warn("coserver: the peer reports the VS stopped by the operator; staying stopped", "stopped_at", st.VSStoppedAt)
}

// ctlNotice is a control one CoServer's daemon asks of the other's, over
// the management network (POST /ctl on management.listen), authenticated
// with the pair key as the drop notice is.
type ctlNotice struct {
	Node        int        `json:"node"`
	Action      string     `json:"action"` // vs-stop, vs-start, resync
	Disk        string     `json:"disk,omitempty"`
	Ranges      [][2]int64 `json:"ranges,omitempty"`
	AtMS        int64      `json:"at_ms"`
	LastPrimary int        `json:"last_primary,omitempty"`
	TimeMS      int64      `json:"time_ms"`
	Nonce       string     `json:"nonce"`
	MAC         string     `json:"mac"`
}

func (n *ctlNotice) envelope() (int, int64, string, string) { return n.Node, n.TimeMS, n.Nonce, n.MAC }

func (n *ctlNotice) sum(key []byte) string {
	r, _ := json.Marshal(n.Ranges)
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "ftvs-ctl v1|%d|%s|%s|%s|%d|%d|%d|%s", n.Node, n.Action, n.Disk, r, n.AtMS, n.LastPrimary, n.TimeMS, n.Nonce)
	return hex.EncodeToString(m.Sum(nil))
}

// ctlState is the daemon's side of these controls.
type ctlState struct {
	stopRun  atomic.Pointer[context.CancelFunc] // ends Run (cmd/ftvs then serves the stopped VS)
	stopping atomic.Bool
	exe      atomic.Pointer[string]
	// startedAt is the operator's last VS start, read at New: a running
	// daemon never records another (a start re-executes a stopped one).
	startedAt time.Time

	mu       sync.Mutex
	mismatch map[string][][2]int64 // per disk: the last online verify's differing ranges

	nonceSet // the peer's control notices already taken
}

// SetRunCancel gives the daemon the cancel function of Run's context: a VS
// stop ends Run cleanly (copies flushed and closed clean) and the caller
// then serves the stopped VS (RunOutOfService).
func (d *Daemon) SetRunCancel(cancel context.CancelFunc) { d.ctl.stopRun.Store(&cancel) }

// parseCtl decodes and authenticates a control notice from the peer.
func parseCtl(b []byte, key []byte, self int, now time.Time) (*ctlNotice, error) {
	var n ctlNotice
	if err := decodePeerNotice("control notice", b, &n, key, self, now); err != nil {
		return nil, err
	}
	switch n.Action {
	case "vs-stop", "vs-start", "resync", "discard":
	default:
		return nil, fmt.Errorf("control notice: action %q: want vs-stop, vs-start, resync or discard", n.Action)
	}
	return &n, nil
}

// sendCtl asks the peer's daemon for a control.
func sendCtl(cfg *config.Config, n ctlNotice) error {
	peer := cfg.Management.Peer
	if peer == "" {
		return errors.New("management.peer is not set")
	}
	var nb [16]byte
	_, _ = rand.Read(nb[:])
	n.Node, n.TimeMS, n.Nonce = cfg.Node, time.Now().UnixMilli(), hex.EncodeToString(nb[:])
	n.MAC = n.sum(cfg.Key())
	body, _ := json.Marshal(&n)
	c := http.Client{Timeout: max(cfg.Timeouts.Management, 2*time.Second)}
	resp, err := c.Post("http://"+peer+"/ctl", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s to CoServer %d: %w", n.Action, 3-cfg.Node, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s to CoServer %d: %s: %s", n.Action, 3-cfg.Node, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

// serveCtl authenticates a notice and hands it to apply (its error is the
// answer: 409 with the reason).
func serveCtl(cfg *config.Config, c *ctlState, log *slog.Logger, apply func(*ctlNotice) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		n, err := parseCtl(b, cfg.Key(), cfg.Node, time.Now())
		if err == nil && !c.fresh(n.Nonce) {
			err = errors.New("control notice: replayed nonce")
		}
		if err != nil {
			log.Warn("coserver: control notice refused", "from", r.RemoteAddr, "err", err)
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		if err := apply(n); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// handleCtl serves POST /ctl on a running daemon.
func (d *Daemon) handleCtl(w http.ResponseWriter, r *http.Request) {
	serveCtl(d.cfg, &d.ctl, d.log, func(n *ctlNotice) error {
		switch n.Action {
		case "vs-stop":
			if err := writeVSStop(d.cfg, vsStop{At: time.UnixMilli(n.AtMS).UTC(), LastPrimary: n.LastPrimary}); err != nil {
				return err
			}
			d.addEvent("vs-stop", 0, "the operator stopped the VS (at CoServer "+strconv.Itoa(n.Node)+")")
			go d.stopVS()
		case "vs-start":
			// Already running: the peer started while we were not stopped.
		case "resync":
			return d.requestResync(n.Disk, n.Ranges)
		case "discard":
			d.log.Warn("coserver: split brain resolved keeping the peer's data: discarding this VS and rejoining")
			d.discardAndRejoin(n.Node)
		}
		return nil
	})(w, r)
}

// discardRequest names the copies whose split-brain changes are discarded
// at the next start (discard-my-data, as ftvs vdisk resolve does).
type discardRequest struct {
	Disks []string `json:"disks"`
}

// discardAndRejoin drops this node's VS (a re-execution) after recording
// which of its disk copies are blocked by a split brain: they are marked
// discard-my-data before they are opened again.
func (d *Daemon) discardAndRejoin(survivor int) {
	var names []string
	if d.disks != nil {
		for i, m := range d.disks.ms {
			if strings.HasPrefix(m.Blocked(), "split brain") {
				names = append(names, d.cfg.VS.Disks[i].Name)
			}
		}
	}
	detail := fmt.Sprintf("keeping CoServer %d's data: this node's VS is discarded", survivor)
	if len(names) > 0 {
		b, _ := json.Marshal(discardRequest{Disks: names})
		if err := writeStateFile(d.cfg, discardRequestFile, b); err != nil {
			d.addEvent("split-brain-resolved", 0, "recording the discard: "+err.Error())
			return
		}
		detail += fmt.Sprintf(", its copies of %v are overwritten from the peer's", names)
	}
	d.addEvent("split-brain-resolved", 0, detail)
	d.reexec("split brain resolved")
}

// stopVS ends this daemon's Run for a VS stop. The secondary leaves at
// once; the primary waits until it has gone on alone (peer gone: its
// copies' generations now say they are the newest), bounded.
func (d *Daemon) stopVS() {
	if !d.ctl.stopping.CompareAndSwap(false, true) {
		return
	}
	n := d.node.Load()
	if n != nil && n.Status().Role == lockstep.RolePrimary {
		deadline := time.Now().Add(d.cfg.Timeouts.PeerDead + 10*time.Second)
		for time.Now().Before(deadline) && (d.sess.Status().PeerAlive || n.Status().Peer != lockstep.PeerNone) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	var seq uint64
	if n != nil {
		seq = n.Status().Seq
	}
	d.addEvent("vs-stopped", seq, "leaving lockstep; disks flushed and closed clean")
	d.log.Warn("coserver: stopping the VS (operator)", "seq", seq)
	if f := d.ctl.stopRun.Load(); f != nil {
		(*f)()
		return
	}
	d.reexec("VS stop")
}

// reexec replaces the process with the daemon's executable (the stop or
// resync request in state_dir says what it does next).
func (d *Daemon) reexec(why string) {
	exe := ""
	if p := d.ctl.exe.Load(); p != nil {
		exe = *p
	}
	reexec(exe, d.log, why, nil)
}

// reexec replaces the process with exe (this executable when empty) a
// moment later, so the API call that asked for it is answered first; before,
// if not nil, runs just before the exec.
func reexec(exe string, log *slog.Logger, why string, before func()) {
	if exe == "" {
		exe, _ = os.Executable()
	}
	go func() {
		time.Sleep(200 * time.Millisecond) // answer the API call first
		if before != nil {
			before()
		}
		log.Warn("coserver: re-executing", "exe", exe, "why", why)
		err := syscall.Exec(exe, os.Args, os.Environ())
		log.Error("coserver: re-exec failed; exiting so a supervisor restarts it", "err", err)
		os.Exit(1)
	}()
}

// resyncRequest is a resync this node's copy takes at its next start.
type resyncRequest struct {
	Disk   string     `json:"disk"`
	Ranges [][2]int64 `json:"ranges,omitempty"` // none: the whole copy
}

// requestResync makes this node's copy of disk a resync target: the
// request is recorded in state_dir and the daemon re-executes; before the
// copy is opened again ApplyResyncRequest marks the regions and makes it
// Inconsistent, so it rejoins as the target and never goes live meanwhile.
func (d *Daemon) requestResync(disk string, ranges [][2]int64) error {
	if _, err := d.diskIndex(disk); err != nil {
		return err
	}
	if d.isPrimary() {
		return fmt.Errorf("resync %s: CoServer %d is the primary; its copy is the source", disk, d.cfg.Node)
	}
	if !d.sess.Status().PeerAlive {
		return fmt.Errorf("resync %s: the peer is not reachable over the CoServer links: no copy to resync from", disk)
	}
	b, _ := json.Marshal(resyncRequest{Disk: disk, Ranges: ranges})
	if err := writeStateFile(d.cfg, resyncRequestFile, b); err != nil {
		return fmt.Errorf("resync %s: %w", disk, err)
	}
	what := "the whole copy"
	if len(ranges) > 0 {
		what = fmt.Sprintf("%d ranges the last verify found different", len(ranges))
	}
	d.addEvent("resync-requested", 0, fmt.Sprintf("%s: %s from CoServer %d; rejoining", disk, what, 3-d.cfg.Node))
	d.reexec("resync of " + disk)
	return nil
}

func (d *Daemon) diskIndex(disk string) (int, error) {
	var names []string
	for i, dc := range d.cfg.VS.Disks {
		if dc.Name == disk && d.disks != nil && i < len(d.disks.ms) {
			return i, nil
		}
		names = append(names, dc.Name)
	}
	return -1, fmt.Errorf("no disk %q in vs.disks (have %v)", disk, names)
}

// ApplyDiskRequests runs before the daemon opens its disks and carries out
// what the operator asked of this node's copies: a split-brain discard
// (discard-my-data) and a resync (applyResyncRequest).
func ApplyDiskRequests(cfg *config.Config, log *slog.Logger) error {
	p := filepath.Join(cfg.StateDir, discardRequestFile)
	if b, err := os.ReadFile(p); err == nil {
		var req discardRequest
		if err := json.Unmarshal(b, &req); err != nil {
			_ = os.Remove(p)
			return fmt.Errorf("split-brain discard request %s: %w (removed)", p, err)
		}
		for _, dc := range cfg.VS.Disks {
			if !slices.Contains(req.Disks, dc.Name) {
				continue
			}
			if err := updateCopy(dc, func(vd *vdisk.Disk) error {
				return vd.Update(func(m *vdisk.Metadata) { *m = vdisk.MarkDiscard(*m) })
			}); err != nil {
				return fmt.Errorf("split-brain discard of %s: %w", dc.Name, err)
			}
			log.Warn("coserver: this copy's split-brain changes are discarded at the disks' meeting", "disk", dc.Name)
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("split-brain discard request: %w", err)
		}
		stayAway(cfg)
	}
	return applyResyncRequest(cfg, log)
}

// stayAway holds a node that re-executed to rejoin until the primary has
// declared it lost: a node back within the peer-silence timeout is
// "restarted" to the primary, and the disks' meeting at that peer-up can
// fail on the flap and is only retried at the next one.
func stayAway(cfg *config.Config) {
	time.Sleep(2*cfg.Timeouts.PeerDead + 500*time.Millisecond)
}

// applyResyncRequest: a pending resync request marks the regions to copy on
// this node's copy (durably, in its on-disk bitmap) and makes it
// Inconsistent. At the peer-up the mirrors meet, and ftvs/mirror's Decide
// makes this copy the target of a bitmap resync of those marks (unioned
// with the source's).
func applyResyncRequest(cfg *config.Config, log *slog.Logger) error {
	p := filepath.Join(cfg.StateDir, resyncRequestFile)
	b, err := os.ReadFile(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("resync request: %w", err)
	}
	var req resyncRequest
	if err := json.Unmarshal(b, &req); err != nil {
		_ = os.Remove(p)
		return fmt.Errorf("resync request %s: %w (removed)", p, err)
	}
	for _, dc := range cfg.VS.Disks {
		if dc.Name != req.Disk {
			continue
		}
		if err := markForResync(dc, req.Ranges); err != nil {
			return fmt.Errorf("resync request for %s: %w", req.Disk, err)
		}
		log.Warn("coserver: this copy is a resync target", "disk", req.Disk, "ranges", len(req.Ranges))
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("resync request: %w", err)
	}
	stayAway(cfg)
	return nil
}

func markForResync(dc config.Disk, ranges [][2]int64) error {
	return updateCopy(dc, func(vd *vdisk.Disk) error {
		var err error
		if len(ranges) == 0 {
			err = vd.MarkAll()
		} else {
			err = vd.MarkRanges(ranges)
		}
		if err != nil {
			return fmt.Errorf("mark: %w", err)
		}
		if err := vd.Update(func(m *vdisk.Metadata) { m.State = vdisk.Inconsistent }); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
		return nil
	})
}

// updateCopy opens a copy offline (the daemon has not opened it yet) as
// the daemon does (a whole file or a byte range of a disk), applies f and
// flushes.
func updateCopy(dc config.Disk, f func(*vdisk.Disk) error) error {
	dev, err := openCopy(dc)
	if err != nil {
		return err
	}
	defer dev.Close()
	vd, err := vdisk.Open(dev)
	if err != nil {
		return err
	}
	if err := f(vd); err != nil {
		return err
	}
	return dev.Flush()
}

// watchPeerStart ends a VS stop when the peer runs the VS again since a
// start after our stop (it was started while this node was away or the
// start notice was lost): this node then joins it.
func watchPeerStart(ctx context.Context, cfg *config.Config, o ManageOptions, stop vsStop) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st, err := FetchStatus(cfg.Management.Peer, time.Second, false)
		if err != nil || st.VSStopped || !st.VSStartedAt.After(stop.At) {
			continue
		}
		if st.Role != "primary" && st.Role != "secondary" && st.Role != "joining" {
			continue
		}
		if err := recordVSStart(cfg, st.VSStartedAt, 0); err != nil {
			o.Log.Error("coserver: joining the peer's VS start", "err", err)
			continue
		}
		o.Log.Warn("coserver: the peer runs the VS again (started by the operator); joining it")
		reexec(o.Exe, o.Log, "VS started at the peer", nil)
		return
	}
}

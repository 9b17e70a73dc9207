package coserver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/link"
	"github.com/ftvs/ftvs/ftvs/lockstep"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/mirror"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// disks are this node's copies of the mirrored virtual disks (vs.disks),
// wired as ftvs/mirror's package doc lists: link routing, lockstep's
// BeforeAck and go-live guard, going alone, peer back, hand-over, stop.
type disks struct {
	d    *Daemon
	devs []copyDev
	vds  []*vdisk.Disk
	ms   []*mirror.Mirror

	mu        sync.Mutex
	connected chan struct{} // closed when Connect returned on every mirror since the last peer-up
	running   bool          // a Connect round runs
	again     bool          // a peer-up came during it: run another
	joinHeld  bool          // the primary holds a join request until the disks met
	joinSent  time.Time     // the joiner's outstanding join request (zero: none)
	connCtx   context.Context
	// stale: this node's lockstep ran (or it went on alone) since the last
	// Connect round: a join must meet the peer's disks again first.
	stale atomic.Bool
	// diverged: lockstep found the secondary diverged; the snapshot that
	// follows first brings its disks to this node's content.
	diverged atomic.Bool
	// failFinish: test hook (failFinishEnv): so many resync sources'
	// FinishResync fail at the hand-over.
	failFinish atomic.Int32
}

// linkSend is the mirrors' view of the link: sends only; the daemon's
// delivery loop hands them their messages (Handle), so Run never reads.
type linkSend struct{ d *Daemon }

func (l linkSend) Send(typ uint8, p []byte) error { return l.d.sess.Send(typ, p) }
func (l linkSend) Incoming() <-chan link.Delivery { return nil }

func newGen() uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) | 1
}

// openDisks opens every configured copy (exclusively: one daemon per copy).
func openDisks(d *Daemon) (*disks, error) {
	ds := &disks{d: d, connected: make(chan struct{})}
	n, err := failFinishFromEnv()
	if err != nil {
		return nil, err
	}
	ds.failFinish.Store(n)
	for i, dc := range d.cfg.VS.Disks {
		dev, err := openCopy(dc)
		if err != nil {
			ds.close()
			return nil, fmt.Errorf("vs.disks[%d] %s: %w", i, dc.Path, err)
		}
		ds.devs = append(ds.devs, dev)
		var bd blockdev.Device = dev
		if trigger, err := diskFaultFromEnv(dc.Name); err != nil {
			ds.close()
			return nil, err
		} else if trigger != "" {
			if bd, err = newFaultSwitch(dev, trigger); err != nil {
				ds.close()
				return nil, fmt.Errorf("vs.disks[%d] %s: %w", i, dc.Path, err)
			}
		}
		vd, err := vdisk.Open(bd)
		if err != nil {
			ds.close()
			return nil, fmt.Errorf("vs.disks[%d] %s: %w", i, dc.Path, err)
		}
		ds.vds = append(ds.vds, vd)
		name := dc.Name
		m, err := mirror.New(mirror.Config{Disk: vd, Link: linkSend{d}, TypeBase: mirror.DefaultTypeBase + uint8(2*i),
			NewGen: newGen, ResyncRate: dc.ResyncRate,
			OnEvent: func(e mirror.Event) {
				if e.Kind == mirror.EventResyncDone && strings.HasPrefix(e.Reason, "source") { // the target reports it too
					d.figs.resyncDone(i)
				}
				d.addEvent("disk-"+e.Kind.String(), 0, name+": "+e.Reason)
				d.log.Warn("coserver: virtual disk", "disk", name, "event", e.Kind.String(), "reason", e.Reason)
			}})
		if err != nil {
			ds.close()
			return nil, fmt.Errorf("vs.disks[%d]: %w", i, err)
		}
		ds.ms = append(ds.ms, m)
	}
	return ds, nil
}

func (ds *disks) run(ctx context.Context) {
	ds.mu.Lock()
	ds.connCtx = ctx
	ds.mu.Unlock()
	for _, m := range ds.ms {
		go m.Run(ctx, false)
	}
}

// route hands a mirror's message to it (true: not for lockstep); link
// events go to every mirror and on to lockstep (false).
func (ds *disks) route(dl link.Delivery) bool {
	if dl.Event != nil {
		for _, m := range ds.ms {
			m.Handle(dl)
		}
		if dl.Event.Kind == link.EventPeerUp {
			ds.peerUp()
		}
		return false
	}
	for _, m := range ds.ms {
		if m.IsMine(dl.Type) {
			m.Handle(dl)
			return true
		}
	}
	return false
}

// peerUp runs Connect on every mirror, off the delivery loop (a peer-up
// during a round runs another after it: the round may have failed on the
// flap); a joiner's join request waits for it (awaitConnected).
func (ds *disks) peerUp() { ds.connect(true) }

// ensureConnect starts a Connect round unless one runs: before a join
// after this node's lockstep ran (stale), on either side.
func (ds *disks) ensureConnect() { ds.connect(false) }

func (ds *disks) connect(again bool) {
	if len(ds.ms) == 0 {
		return
	}
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if ds.running {
		ds.again = ds.again || again
		return
	}
	ds.running = true
	select {
	case <-ds.connected:
		ds.connected = make(chan struct{})
	default:
	}
	ctx := ds.connCtx
	if ctx == nil {
		ctx = context.Background()
	}
	go ds.rounds(ctx)
}

// rounds runs Connect rounds until one ends with no peer-up during it. A
// round that failed for a reason that may pass (link lost mid-resync, the
// source's round failed or ran none toward us) is run again while the link
// hears the peer: each side starts rounds on its own link events, and a
// drop that only one side saw gives the other no peer-up to retry at.
func (ds *disks) rounds(ctx context.Context) {
	backoff := connectRetryMin
	for {
		err := ds.connectAll(ctx)
		ds.mu.Lock()
		if ds.again && ctx.Err() == nil {
			ds.again = false
			ds.mu.Unlock()
			continue
		}
		if err != nil && retryConnect(err) && ctx.Err() == nil && ds.d.peerUp.Load() {
			ds.mu.Unlock()
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
			}
			backoff = min(2*backoff, connectRetryMax)
			continue
		}
		ds.running = false
		if err == nil {
			ds.stale.Store(false)
			close(ds.connected)
		}
		ds.mu.Unlock()
		return
	}
}

// connectRetryMin and connectRetryMax bound the wait between failed rounds.
const (
	connectRetryMin = 500 * time.Millisecond
	connectRetryMax = 8 * time.Second
)

// retryConnect: split brain, refusals and a detached copy wait for the
// operator; anything else is retried.
func retryConnect(err error) bool {
	return !errors.Is(err, vdisk.ErrSplitBrain) && !errors.Is(err, vdisk.ErrRefused) && !errors.Is(err, mirror.ErrDetached)
}

// connectAll runs Connect on every mirror in order; the first error ends it.
func (ds *disks) connectAll(ctx context.Context) error {
	for i, m := range ds.ms {
		dec, err := m.Connect(ctx)
		name := ds.d.cfg.VS.Disks[i].Name
		if err != nil {
			ds.d.addEvent("disk-connect", 0, fmt.Sprintf("%s: %v", name, err))
			ds.d.log.Warn("coserver: virtual disk connect failed", "disk", name, "err", err)
			return err
		}
		ds.d.addEvent("disk-connect", 0, fmt.Sprintf("%s: %+v", name, dec))
	}
	return nil
}

// awaitConnected blocks until the mirrors met the peer (or ctx ends); a
// stale node starts a Connect round first.
func (ds *disks) awaitConnected(ctx context.Context) error {
	if len(ds.ms) == 0 {
		return nil
	}
	if ds.stale.Load() {
		ds.ensureConnect()
	}
	ds.mu.Lock()
	c := ds.connected
	ds.mu.Unlock()
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ds *disks) devices(cfgIdx []int) []blockdev.Device {
	var out []blockdev.Device
	for _, i := range cfgIdx {
		out = append(out, ds.ms[i])
	}
	return out
}

// freshPairRole picks this node's role when both nodes are deciding (a
// cold start of the pair) and the copies say which: the VS must start on
// the newer copies. A node whose copy is a resync source is primary at
// once; a node whose copy became a resync target joins. wait: the disks'
// Connect round has not told yet (starting the VS on a stale copy would
// serve stale data and write over what the peer holds); a split brain
// keeps it waiting for the operator. Role 0 and no wait: no disks, or the
// copies are in sync: the pair's usual rule decides.
func (ds *disks) freshPairRole() (r lockstep.Role, why string, wait bool) {
	if len(ds.ms) == 0 {
		return 0, "", false
	}
	for _, m := range ds.ms {
		if m.Resyncing() {
			return lockstep.RolePrimary, "fresh pair: this node holds the newer copies (resync source)", false
		}
	}
	ds.mu.Lock()
	c := ds.connected
	ds.mu.Unlock()
	select {
	case <-c:
	default:
		return 0, "fresh pair: the disks are meeting the peer's to learn which copies are newer", true
	}
	for i, m := range ds.ms {
		if st := m.Disk().Metadata().State; st != vdisk.UpToDate {
			return lockstep.RoleJoining, fmt.Sprintf("fresh pair: disk %s is %s (the peer's copy is newer)", ds.d.cfg.VS.Disks[i].Name, st), false
		}
	}
	return 0, "", false
}

func (ds *disks) beforeAck(uint64) error {
	var errs []error
	for _, m := range ds.ms {
		errs = append(errs, m.FlushPending())
	}
	return errors.Join(errs...)
}

func (ds *disks) mayGoLive() (bool, string) {
	for i, m := range ds.ms {
		if ok, why := m.MayGoLive(); !ok {
			return false, "disk " + ds.d.cfg.VS.Disks[i].Name + ": " + why
		}
	}
	return true, ""
}

// goAlone: the guard said yes; before the VS's next write.
func (ds *disks) goAlone() error {
	var errs []error
	for _, m := range ds.ms {
		errs = append(errs, m.SetDeferFlush(false), m.PeerLost())
	}
	return errors.Join(errs...)
}

func (ds *disks) peerLost() error {
	var errs []error
	for _, m := range ds.ms {
		errs = append(errs, m.PeerLost())
	}
	return errors.Join(errs...)
}

func (ds *disks) startLockstep(secondary bool) error {
	var errs []error
	for _, m := range ds.ms {
		errs = append(errs, m.StartLockstep())
		if secondary {
			errs = append(errs, m.SetDeferFlush(true))
		}
	}
	return errors.Join(errs...)
}

// close flushes and marks the copies clean (a clean stop), then closes.
func (ds *disks) close() error {
	var errs []error
	for i, vd := range ds.vds {
		if i < len(ds.ms) {
			errs = append(errs, ds.ms[i].Flush())
		}
		errs = append(errs, vd.CloseClean())
	}
	for _, dev := range ds.devs {
		errs = append(errs, dev.Close())
	}
	return errors.Join(errs...)
}

// resyncingReplica is the machine as lockstep's Replica: a snapshot for a
// joiner first finishes the mirrors' resync (PrepareSnapshot: final pass
// while paused); a restore first reloads the boot disk's store (bootFiles), whose copy the
// resync just brought to the snapshot's point.
type resyncingReplica struct {
	*machine.Machine
	ds   *disks
	boot *bootFiles // nil: no boot disk
}

// Restore reloads the boot disk before the machine's state: the services'
// restore may read it, and the store's caches must be the disk's, exactly
// as on the primary, for the replicas' outputs to stay identical.
func (r resyncingReplica) Restore(b []byte) error {
	if r.boot != nil {
		if err := r.boot.load(); err != nil {
			return err
		}
	}
	return r.Machine.Restore(b)
}

// PrepareSnapshot runs in the primary's snapshot pause (lockstep's
// SnapshotPreparer): after a divergence it first brings the secondary's
// disks to this node's content, then it ends every mirror's resync (final
// pass, EndResync: the joiner's copies become UpToDate). If either fails
// the join is refused: no snapshot, so a joiner whose copy may still be
// Inconsistent never enters lockstep; the disks meet again (a new Connect
// round) and the join request is handed to the node after it
// (EventSnapshotRefused in diskEvent).
func (r resyncingReplica) PrepareSnapshot() error {
	if r.ds.diverged.Swap(false) {
		for i, m := range r.ds.ms {
			name := r.ds.d.cfg.VS.Disks[i].Name
			t0 := time.Now()
			st, err := m.ResyncDiverged(context.Background())
			if err != nil {
				r.ds.diverged.Store(true) // the next snapshot tries again
				r.ds.d.addEvent("disk-resync-diverged", 0, fmt.Sprintf("%s: %v", name, err))
				r.ds.d.log.Warn("coserver: resync after a divergence", "disk", name, "err", err)
				return fmt.Errorf("disk %s: resync after a divergence: %w", name, err)
			}
			r.ds.d.addEvent("disk-resync-diverged", 0, fmt.Sprintf("%s: after a divergence: %d bytes compared equal, %d copied in %s",
				name, st.Skipped, st.Copied, time.Since(t0).Round(time.Millisecond)))
		}
	}
	for i, m := range r.ds.ms {
		name := r.ds.d.cfg.VS.Disks[i].Name
		if err := r.ds.finishResync(m); err != nil {
			r.ds.d.addEvent("disk-resync", 0, fmt.Sprintf("%s: finish: %v", name, err))
			r.ds.d.log.Warn("coserver: finish resync: join refused", "disk", name, "err", err)
			return fmt.Errorf("disk %s: finish resync: %w", name, err)
		}
	}
	return nil
}

// finishResync is mirror.FinishResync, or the test hook's failure.
func (ds *disks) finishResync(m *mirror.Mirror) error {
	if ds.failFinish.Load() > 0 && m.Resyncing() {
		ds.failFinish.Add(-1)
		return fmt.Errorf("%s: test hook: FinishResync fails", failFinishEnv)
	}
	return m.FinishResync(context.Background())
}

// joinRefused: the snapshot for a join was refused (PrepareSnapshot). The
// disks must meet again before the next one, and the joiner's request is
// held until they did, as holdJoin does for a request that comes while
// this node is stale. A secondary dropped by the refusal (a divergence)
// asks again itself; holdJoin takes its request as a repeat.
func (ds *disks) joinRefused() {
	ds.stale.Store(true)
	ds.mu.Lock()
	ds.joinHeld = false
	ctx := ds.connCtx
	ds.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	ds.holdJoin(ctx, link.Delivery{Type: lockstepMsgJoin})
}

// diskEvent applies a lockstep event to the mirrors; it runs on the node's
// goroutine before the next input is stepped.
func (d *Daemon) diskEvent(e lockstep.Event) {
	if len(d.disks.ms) == 0 {
		return
	}
	var err error
	switch e.Kind {
	case lockstep.EventGoLive:
		d.disks.stale.Store(true)
		err = d.disks.goAlone()
	case lockstep.EventPeerLost:
		d.disks.stale.Store(true)
		err = d.disks.peerLost()
	case lockstep.EventSnapshotSent:
		// Any later join needs the disks to meet again: the writes from
		// here on are on the new secondary's disk only if it follows.
		d.disks.stale.Store(true)
		d.disks.mu.Lock()
		d.disks.joinHeld = false
		d.disks.mu.Unlock()
		err = d.disks.startLockstep(false)
	case lockstep.EventDivergence:
		// The snapshot about to be taken resynchronises the disks first
		// (resyncingReplica.Snapshot).
		d.disks.diverged.Store(true)
		return
	case lockstep.EventSnapshotRefused:
		d.disks.joinRefused()
		return
	case lockstep.EventRestored:
		d.disks.stale.Store(true)
		d.disks.mu.Lock()
		d.disks.joinSent = time.Time{}
		d.disks.mu.Unlock()
		err = d.disks.startLockstep(true)
	default:
		return
	}
	if err != nil {
		d.addEvent("disk-error", e.Seq, e.Kind.String()+": "+err.Error())
		d.log.Error("coserver: virtual disks", "event", e.Kind.String(), "err", err)
	}
}

// holdJoin: on the primary, a joiner's request waits while a Connect round
// runs or this node went on alone since the last one (its resync bulk must
// be done before the snapshot); it is then handed to the node.
func (ds *disks) holdJoin(ctx context.Context, dl link.Delivery) bool {
	if len(ds.ms) == 0 || dl.Event != nil || dl.Type != lockstepMsgJoin {
		return false
	}
	ds.mu.Lock()
	busy, held := ds.running, ds.joinHeld
	if busy || ds.stale.Load() {
		ds.joinHeld = true
	}
	ds.mu.Unlock()
	if held {
		// A joiner repeats its request (peer-up, stale role): a second
		// snapshot right after the first would skip the writes between
		// them on the joiner's disk. One held request is enough.
		return true
	}
	if !busy && !ds.stale.Load() {
		return false
	}
	// joinHeld stays set until the node sent the snapshot (diskEvent):
	// requests that come meanwhile are repeats of this one.
	go func() {
		if ds.awaitConnected(ctx) != nil {
			return
		}
		select {
		case ds.d.nodeCh <- dl:
		case <-ctx.Done():
		}
	}()
	return true
}

// joinRepeat is how long a joiner's join request stays outstanding before
// lockstep may repeat it.
const joinRepeat = 2 * time.Second

// sendJoin gates the joiner's join request: it waits for the disks, and a
// repeat while one is outstanding is dropped (each join is a snapshot, and
// a second one a few inputs later would skip their writes on this disk).
func (ds *disks) sendJoin(ctx context.Context, send func() error) error {
	if len(ds.ms) == 0 {
		return send()
	}
	if err := ds.awaitConnected(ctx); err != nil {
		return err
	}
	ds.mu.Lock()
	if !ds.joinSent.IsZero() && time.Since(ds.joinSent) < joinRepeat {
		ds.mu.Unlock()
		return nil
	}
	ds.joinSent = time.Now()
	ds.mu.Unlock()
	return send()
}

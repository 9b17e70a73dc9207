package coserver

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// figures are the runtime's figures the manager shows beyond lockstep's
// status: the output-hold histogram, the VS's per-service requests, the
// failovers, the disks' resync rate and the witness as this node last saw it.
type figures struct {
	hold holdHist

	// svc is the VS's service counters, read on the node's goroutine (in
	// Emit: the machine is not safe for concurrent use) at most every
	// svcEvery; the primary's are the VS's.
	svc     atomic.Pointer[map[string]uint64]
	svcLast atomic.Int64 // unix ns of the last read

	failovers atomic.Uint64

	mu        sync.Mutex
	rates     map[int]*rateMeter // per vs.disks index
	syncStart map[int]int64      // marked bytes when the running resync began
	done      map[int]uint64     // resyncs finished as the source
	witness   WitnessStatus
}

const svcEvery = 100 * time.Millisecond

// holdBounds are the output-hold histogram's buckets (seconds): the ack
// round trip on a crossover cable is tens of microseconds; a loaded pair
// or a slow link reaches milliseconds.
var holdBounds = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1}

type holdHist struct {
	buckets [14]atomic.Uint64 // per bound, non-cumulative; the last is +Inf
	count   atomic.Uint64
	sumNS   atomic.Uint64
}

func (h *holdHist) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(holdBounds) && s > holdBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.count.Add(1)
	h.sumNS.Add(uint64(d))
}

// HoldHistogram is the output-hold histogram in the status document:
// cumulative counts per upper bound (seconds), as Prometheus keeps them.
type HoldHistogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	SumS   float64   `json:"sum_s"`
}

func (h *holdHist) snapshot() HoldHistogram {
	out := HoldHistogram{Bounds: append([]float64(nil), holdBounds...), Counts: make([]uint64, len(holdBounds))}
	var cum uint64
	for i := range holdBounds {
		cum += h.buckets[i].Load()
		out.Counts[i] = cum
	}
	out.Count = h.count.Load()
	out.SumS = float64(h.sumNS.Load()) / 1e9
	return out
}

// noteServices reads the machine's service counters; call it from the
// node's goroutine only. FTP counts commands (its requests); only the
// services the VS runs are listed.
func (f *figures) noteServices(m *machine.Machine, mc *machine.Config) {
	now := time.Now().UnixNano()
	if last := f.svcLast.Load(); now-last < int64(svcEvery) {
		return
	}
	f.svcLast.Store(now)
	c := m.Counters()
	svc := map[string]uint64{}
	if mc.HTTP.Enabled {
		svc["http"] = c.HTTP.Requests
	}
	if mc.FTP.Enabled {
		svc["ftp"] = c.FTP.Commands
	}
	if mc.NBD.Enabled {
		svc["nbd"] = c.NBD.Requests
	}
	f.svc.Store(&svc)
}

func (f *figures) services() map[string]uint64 {
	if p := f.svc.Load(); p != nil {
		return *p
	}
	return nil
}

// rateMeter turns a growing byte count into a rate over the last few
// seconds (status is polled about once a second).
type rateMeter struct {
	at    time.Time
	bytes uint64
	bps   int64
}

func (f *figures) rate(disk int, copied uint64, now time.Time) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rates == nil {
		f.rates = map[int]*rateMeter{}
	}
	r := f.rates[disk]
	if r == nil {
		f.rates[disk] = &rateMeter{at: now, bytes: copied}
		return 0
	}
	dt := now.Sub(r.at)
	switch {
	case copied < r.bytes:
		r.at, r.bytes, r.bps = now, copied, 0
	case dt >= 500*time.Millisecond:
		r.bps = int64(float64(copied-r.bytes) / dt.Seconds())
		r.at, r.bytes = now, copied
	case dt > 5*time.Second:
		r.bps = 0
	}
	return r.bps
}

// WitnessStatus is the witness as this node last saw it. Only the primary
// asks for the lease (a secondary asking would take it), so a secondary
// reports Checked false and the manager reads the primary's view.
type WitnessStatus struct {
	Address   string    `json:"address"`
	Checked   bool      `json:"checked"`   // this node asked it at least once
	Reachable bool      `json:"reachable"` // the last request had an authenticated answer
	Holder    bool      `json:"holder"`    // this node holds the lease
	LastError string    `json:"last_error,omitempty"`
	Last      time.Time `json:"last,omitzero"`
}

func (f *figures) noteWitness(addr string, granted bool, err error, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.witness = WitnessStatus{Address: addr, Checked: true, Reachable: err == nil, Holder: granted && err == nil, Last: at.UTC()}
	if err != nil {
		f.witness.LastError = err.Error()
	}
}

func (f *figures) witnessStatus(addr string) WitnessStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.witness
	w.Address = addr
	return w
}

// DiskStatus is this node's copy of one virtual disk.
type DiskStatus struct {
	Name     string  `json:"name"`
	State    string  `json:"state"` // UpToDate, Outdated, Inconsistent
	Attached bool    `json:"attached"`
	Syncing  bool    `json:"syncing"`  // a resync between the copies runs (either way)
	Source   bool    `json:"source"`   // this copy is the resync's source
	Progress float64 `json:"progress"` // source: share of the marked regions copied
	RateBps  int64   `json:"rate_bps"`
	// ResyncedBytes is what this node's resyncs copied since it started;
	// ResyncsDone counts the resyncs it finished as the source.
	ResyncedBytes uint64 `json:"resynced_bytes"`
	ResyncsDone   uint64 `json:"resyncs_done"`
	Blocked       string `json:"blocked,omitempty"` // why it may not go live (split brain, refusal)
}

func diskState(s vdisk.State) string { return s.String() }

// addFigures fills the status's manager figures.
func (d *Daemon) addFigures(st *Status) {
	f := &d.figs
	st.OutputHold = f.hold.snapshot()
	st.Services = f.services()
	st.Failovers = f.failovers.Load()
	st.VSStartedAt = d.ctl.startedAt
	if d.cfg.Witness != "" {
		w := f.witnessStatus(d.cfg.Witness)
		st.Witness = &w
	}
	if d.disks == nil {
		return
	}
	d.disks.mu.Lock()
	connecting := d.disks.running
	d.disks.mu.Unlock()
	now := time.Now()
	for i, m := range d.disks.ms {
		md := m.Disk().Metadata()
		rs := m.ResyncStats()
		copied := uint64(max(rs.Copied, 0))
		ds := DiskStatus{Name: d.cfg.VS.Disks[i].Name, State: diskState(md.State), Attached: !m.Detached(),
			Source: m.Resyncing(), ResyncedBytes: copied, ResyncsDone: f.resyncsDone(i), Blocked: m.Blocked()}
		ds.Syncing = ds.Source || (connecting && st.PeerAlive && md.State != vdisk.UpToDate)
		ds.RateBps = f.rate(i, copied, now)
		if ds.Source {
			_, dirty := m.Disk().Marks()
			ds.Progress = f.progress(i, dirty)
		} else {
			f.progress(i, -1)
		}
		st.ResyncBytes += copied
		st.Disks = append(st.Disks, ds)
	}
}

// progress is the share of the marked bytes copied since the resync
// began (dirty < 0: no resync, forget the start).
func (f *figures) progress(disk int, dirty int64) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncStart == nil {
		f.syncStart = map[int]int64{}
	}
	if dirty < 0 {
		delete(f.syncStart, disk)
		return 0
	}
	start := max(f.syncStart[disk], dirty)
	f.syncStart[disk] = start
	if start == 0 {
		return 1
	}
	return 1 - float64(dirty)/float64(start)
}

func (f *figures) resyncDone(disk int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		f.done = map[int]uint64{}
	}
	f.done[disk]++
}

func (f *figures) resyncsDone(disk int) uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.done[disk]
}

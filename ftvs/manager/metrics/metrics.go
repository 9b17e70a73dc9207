// Package metrics exposes the pair's figures to Prometheus: a collector that
// reads the manager's state model at scrape time, so the metrics and the
// status API always agree.
package metrics

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ftvs/ftvs/ftvs/manager/state"
)

// Collector turns a state snapshot into metrics.
type Collector struct {
	snap func() state.Snapshot

	logPos, lag, up, role, linkUp, linkRTT, frames, bytes, linkBytes *prometheus.Desc
	divergences, failovers, resync, requests, hold, disk, syncProg   *prometheus.Desc
	witness, vsServing, events                                       *prometheus.Desc
}

// NewCollector reads snap at every scrape (state.Model.Current fits).
func NewCollector(snap func() state.Snapshot) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("ftvs_"+name, help, labels, nil)
	}
	return &Collector{snap: snap,
		logPos:      d("log_position", "Last input sequenced (primary) or applied (secondary)."),
		lag:         d("log_lag_inputs", "Inputs executed by the primary and not yet acknowledged by the peer."),
		up:          d("coserver_up", "1 when the CoServer is healthy or degraded, 0 when lost.", "node"),
		role:        d("coserver_role", "1 for the CoServer's current role.", "node", "role"),
		linkUp:      d("link_up", "1 when the CoServer link is up.", "link"),
		linkRTT:     d("link_rtt_seconds", "Round-trip time of the CoServer link.", "link"),
		frames:      d("frames_total", "VS frames through the redirected port.", "direction"),
		bytes:       d("bytes_total", "VS bytes through the redirected port.", "direction"),
		linkBytes:   d("link_bytes_total", "Bytes over the CoServer links.", "direction"),
		divergences: d("divergences_total", "Replica output divergences detected."),
		failovers:   d("failovers_total", "Times this CoServer went live after its peer failed."),
		resync:      d("resync_bytes_total", "Bytes copied by virtual-disk resyncs."),
		requests:    d("service_requests_total", "Requests served by the VS, per service.", "service"),
		hold:        d("output_hold_seconds", "How long outputs waited for the peer's acknowledgement."),
		disk:        d("disk_copy_state", "1 for the state of each virtual disk copy.", "disk", "node", "state"),
		syncProg:    d("disk_sync_progress_ratio", "Resync progress of a virtual disk copy (0..1).", "disk", "node"),
		witness:     d("witness_reachable", "1 when the witness answers."),
		vsServing:   d("vs_serving", "1 when the VS is running and its outputs leave."),
		events:      d("events_recent", "Events held in the recent-event ring."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.logPos, c.lag, c.up, c.role, c.linkUp, c.linkRTT, c.frames, c.bytes, c.linkBytes,
		c.divergences, c.failovers, c.resync, c.requests, c.hold, c.disk, c.syncProg, c.witness, c.vsServing, c.events} {
		ch <- d
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.snap()
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	ctr := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	g(c.logPos, float64(s.VS.LogPosition))
	g(c.lag, float64(s.VS.Lag))
	g(c.vsServing, b2f(s.VS.Running && s.VS.Serving))
	for _, cs := range s.CoServers {
		n := strconv.Itoa(cs.Node)
		g(c.up, b2f(cs.Health != state.Failed && cs.Health != state.Unknown), n)
		if cs.Role != "" {
			g(c.role, 1, n, cs.Role)
		}
	}
	seen := map[string]bool{}
	for _, l := range s.Links {
		if seen[l.Name] {
			continue // duplicate label sets make the scrape invalid
		}
		seen[l.Name] = true
		g(c.linkUp, b2f(l.Up), l.Name)
		g(c.linkRTT, float64(l.RTTUS)/1e6, l.Name)
	}
	k := s.Counters
	ctr(c.frames, k.FramesIn, "in")
	ctr(c.frames, k.FramesOut, "out")
	ctr(c.bytes, k.BytesIn, "in")
	ctr(c.bytes, k.BytesOut, "out")
	ctr(c.linkBytes, k.LinkBytesIn, "in")
	ctr(c.linkBytes, k.LinkBytesOut, "out")
	ctr(c.divergences, k.Divergences)
	ctr(c.failovers, k.Failovers)
	ctr(c.resync, k.ResyncBytes)
	svcs := make([]string, 0, len(k.ServiceRequests))
	for name := range k.ServiceRequests {
		svcs = append(svcs, name)
	}
	sort.Strings(svcs)
	for _, name := range svcs {
		ctr(c.requests, k.ServiceRequests[name], name)
	}
	if h := k.OutputHold; len(h.Bounds) == len(h.Counts) {
		buckets := make(map[float64]uint64, len(h.Bounds))
		for i, b := range h.Bounds {
			buckets[b] = h.Counts[i]
		}
		if m, err := prometheus.NewConstHistogram(c.hold, h.Count, h.Sum, buckets); err == nil {
			ch <- m
		}
	}
	seenDisk := map[string]bool{}
	for _, d := range s.Disks {
		n := strconv.Itoa(d.Node)
		if seenDisk[d.Disk+"/"+n] {
			continue
		}
		seenDisk[d.Disk+"/"+n] = true
		for _, st := range []string{state.UpToDate, state.Outdated, state.Inconsistent, state.Diskless} {
			g(c.disk, b2f(d.State == st), d.Disk, n, st)
		}
		g(c.syncProg, d.Progress, d.Disk, n)
	}
	if s.Witness.Configured {
		g(c.witness, b2f(s.Witness.Reachable))
	}
	g(c.events, float64(len(s.Events)))
}

// Registry returns a registry with the collector and the Go runtime and
// process collectors.
func Registry(c *Collector) *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the registry in the Prometheus exposition format.
func Handler(r *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(r, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

package metrics

import (
	"bytes"
	"io"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/manager/state"
)

func sample() state.Snapshot {
	return state.Snapshot{
		CoServers: []state.CoServer{{Node: 1, Role: "primary", Health: state.OK}, {Node: 2, Role: "lost", Health: state.Failed}},
		Links:     []state.Link{{Name: "link1", Up: true, RTTUS: 180}, {Name: "link2", Up: false}},
		VS:        state.VS{Running: true, Serving: true, LogPosition: 123456, Lag: 7},
		Disks:     []state.DiskCopy{{Disk: "vd0", Node: 1, State: state.UpToDate}, {Disk: "vd0", Node: 2, State: state.Inconsistent, Syncing: true, Progress: 0.25}},
		Witness:   state.Witness{Configured: true, Reachable: true},
		Counters: state.Counters{FramesIn: 10, FramesOut: 20, BytesIn: 1000, BytesOut: 2000000, Divergences: 1, Failovers: 2, ResyncBytes: 1 << 30,
			ServiceRequests: map[string]uint64{"http": 42, "ftp": 3},
			OutputHold:      state.Histogram{Bounds: []float64{0.0001, 0.001, 0.01}, Counts: []uint64{5, 9, 10}, Count: 11, Sum: 0.05}},
		Events: []state.Event{{Kind: "coserver-lost"}},
	}
}

func scrape(t *testing.T) string {
	t.Helper()
	snap := sample()
	h := Handler(Registry(NewCollector(func() state.Snapshot { return snap })))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func TestExpositionHasTheRuntimeFigures(t *testing.T) {
	out := scrape(t)
	for _, want := range []string{
		"ftvs_log_position 123456", "ftvs_log_lag_inputs 7", `ftvs_coserver_up{node="2"} 0`, `ftvs_coserver_role{node="1",role="primary"} 1`,
		`ftvs_link_rtt_seconds{link="link1"} 0.00018`, `ftvs_link_up{link="link2"} 0`, `ftvs_frames_total{direction="out"} 20`,
		`ftvs_bytes_total{direction="out"} 2e+06`, "ftvs_divergences_total 1", "ftvs_failovers_total 2", "ftvs_resync_bytes_total 1.073741824e+09",
		`ftvs_service_requests_total{service="http"} 42`, `ftvs_output_hold_seconds_bucket{le="0.001"} 9`, `ftvs_output_hold_seconds_bucket{le="+Inf"} 11`,
		`ftvs_disk_copy_state{disk="vd0",node="2",state="Inconsistent"} 1`, `ftvs_disk_sync_progress_ratio{disk="vd0",node="2"} 0.25`,
		"ftvs_witness_reachable 1", "go_goroutines",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q", want)
		}
	}
}

// TestPromtoolAcceptsExposition runs Prometheus's own linter (Debian package
// prometheus) over a scrape.
func TestPromtoolAcceptsExposition(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	out := scrape(t)
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	var msg bytes.Buffer
	cmd.Stdout, cmd.Stderr = &msg, &msg
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, msg.String())
	}
	// promtool must also reject broken input, or the check above proves nothing.
	bad := exec.Command(bin, "check", "metrics")
	bad.Stdin = strings.NewReader("# TYPE x counter\nx{a=\"1\" 1\n")
	if bad.Run() == nil {
		t.Fatal("promtool accepted a malformed exposition")
	}
}

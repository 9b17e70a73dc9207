package machine_test

import (
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/machine"
)

// BenchmarkMachineDownload streams a 64 MiB file from the machine to the
// client stack with TSO super-segments and 4 MiB buffers, and reports the
// machine's own cost: bytes per second of CPU time spent inside Step
// (machine-MB/s), beside the total including the test client.
func BenchmarkMachineDownload(b *testing.B) {
	cfg := vsConfig(65535 - 100)
	cfg.SendBuf, cfg.RecvBuf = 4<<20, 1<<20
	const size = 64 << 20
	var inStep time.Duration
	b.SetBytes(size)
	for i := 0; i < b.N; i++ {
		w := newWorld(&testing.T{}, cfg, 0)
		w.noLog = true
		var got int64
		c := w.dial("GET /big64.bin HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n")
		c.sink = func(p []byte) { got += int64(len(p)) }
		w.stepHook = func(in machine.Input) []machine.Output {
			t0 := time.Now()
			out := w.m.Step(in)
			inStep += time.Since(t0)
			return out
		}
		w.run(w.allDone, 600e9)
		if got < size {
			b.Fatalf("got %d bytes", got)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/inStep.Seconds()/1e6, "machine-MB/s")
}

// BenchmarkStateHash is the cost of Snapshot+hash of a machine in the
// middle of the recorded loss session.
func BenchmarkStateHash(b *testing.B) {
	t := &testing.T{}
	lg := readLogs(t)["http-loss-tso.log"]
	m, err := machine.New(lg.Config, lg.Files)
	if err != nil {
		b.Fatal(err)
	}
	for _, in := range lg.Inputs[:len(lg.Inputs)/2] {
		m.Step(in)
	}
	b.SetBytes(int64(len(m.Snapshot())))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m.StateHash()
	}
}

// BenchmarkSmallRequests: 50 keep-alive clients each pipeline 20 requests
// for a small file over a 100 µs wire; reports requests per second of CPU
// inside Step.
func BenchmarkSmallRequests(b *testing.B) {
	cfg := vsConfig(0)
	const clients, perClient = 50, 20
	var inStep time.Duration
	for i := 0; i < b.N; i++ {
		w := newWorld(&testing.T{}, cfg, 0)
		w.noLog = true
		w.delay = 100e3
		req := ""
		for k := 0; k < perClient-1; k++ {
			req += "GET /index.html HTTP/1.1\r\nHost: vs\r\n\r\n"
		}
		req += "GET /index.html HTTP/1.1\r\nHost: vs\r\nConnection: close\r\n\r\n"
		for c := 0; c < clients; c++ {
			w.dial(req)
		}
		w.stepHook = func(in machine.Input) []machine.Output {
			t0 := time.Now()
			out := w.m.Step(in)
			inStep += time.Since(t0)
			return out
		}
		w.run(w.allDone, 600e9)
		if n := w.m.Counters().HTTP.Responses2xx; n != clients*perClient {
			b.Fatalf("%d responses", n)
		}
	}
	b.ReportMetric(float64(clients*perClient*b.N)/inStep.Seconds(), "machine-req/s")
}

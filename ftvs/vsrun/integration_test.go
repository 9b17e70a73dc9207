package vsrun_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/port"
	"github.com/ftvs/ftvs/ftvs/vsrun/internal/vstest"
)

// curl runs curl in the client namespace with sane time limits.
func curl(t *testing.T, tp *vstest.Topo, args ...string) string {
	t.Helper()
	return tp.Client.MustRun("curl", append([]string{"-sS", "--fail", "--connect-timeout", "10", "--max-time", "300"}, args...)...)
}

func kinds() []port.Kind { return []port.Kind{port.AFPacket, port.TAP} }

// TestPingAndSmallFile: ARP, ICMP echo and one HTTP GET through each port kind.
func TestPingAndSmallFile(t *testing.T) {
	for _, k := range kinds() {
		t.Run(string(k), func(t *testing.T) {
			dir := vstest.Dir(t)
			sum := vstest.WriteFile(t, filepath.Join(dir, "small.bin"), 100_000, 1)
			tp := vstest.Start(t, vstest.Options{Kind: k}, dir)
			out := tp.Client.MustRun("ping", "-c", "3", "-i", "0.2", "-W", "2", vstest.VSIP)
			if !strings.Contains(out, "3 received") {
				t.Fatalf("ping: %s", out)
			}
			got := filepath.Join(t.TempDir(), "small.bin")
			curl(t, tp, "-o", got, vstest.URL("small.bin"))
			if s := vstest.FileSHA256(t, got); s != sum {
				t.Fatalf("sha256 %s, want %s", s, sum)
			}
			code := curl(t, tp, "-o", "/dev/null", "-w", "%{http_code}", "--head", vstest.URL("small.bin"))
			if code != "200" {
				t.Fatalf("HEAD: status %s", code)
			}
			st := tp.Solo.Driver.Stats()
			if st.Frames == 0 || st.FramesOut == 0 {
				t.Fatalf("driver stats %+v", st)
			}
		})
	}
}

// TestDownload1GiB: curl downloads a 1 GiB pseudo-random file; sha256 must
// match. The VS's outgoing super-segments must have gone out as GSO.
func TestDownload1GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB transfer skipped in -short")
	}
	dir := vstest.Dir(t)
	sum := vstest.WriteFile(t, filepath.Join(dir, "big.bin"), 1<<30, 2)
	tp := vstest.Start(t, vstest.Options{Kind: port.Default}, dir)
	start := time.Now()
	out := tp.Client.MustRun("sh", "-c", "curl -sS --fail --connect-timeout 10 --max-time 600 "+vstest.URL("big.bin")+" | sha256sum")
	if got := strings.Fields(out); len(got) == 0 || got[0] != sum {
		t.Fatalf("sha256 of the download %q, want %s", out, sum)
	}
	st, ps := tp.Solo.Driver.Stats(), tp.Solo.Port.Stats()
	t.Logf("1 GiB in %v; driver %+v; port %+v", time.Since(start), st, ps)
	if ps.TxGSO == 0 {
		t.Errorf("no GSO frame went out for a 1 GiB download: %+v", ps)
	}
}

// TestParallelClients: 50 concurrent curl transfers of mixed sizes, each
// checked byte for byte.
func TestParallelClients(t *testing.T) {
	dir := vstest.Dir(t)
	sizes := []int64{0, 1, 1000, 1460, 4096, 65536, 100_000, 1 << 20, 3<<20 + 17, 8 << 20}
	sums := map[string]string{}
	for i, sz := range sizes {
		name := fmt.Sprintf("f%d.bin", i)
		sums[name] = vstest.WriteFile(t, filepath.Join(dir, name), sz, uint64(10+i))
	}
	tp := vstest.Start(t, vstest.Options{Kind: port.Default}, dir)
	outDir := t.TempDir()
	args := []string{"-Z", "--parallel-max", "50", "--parallel-immediate"}
	want := map[string]string{}
	for c := 0; c < 50; c++ {
		name := fmt.Sprintf("f%d.bin", c%len(sizes))
		dst := filepath.Join(outDir, fmt.Sprintf("c%d-%s", c, name))
		want[dst] = sums[name]
		args = append(args, "-o", dst, vstest.URL(name))
	}
	curl(t, tp, args...)
	for dst, sum := range want {
		if got := vstest.FileSHA256(t, dst); got != sum {
			t.Errorf("%s: sha256 %s, want %s", filepath.Base(dst), got, sum)
		}
	}
}

// TestRangeResume: a rate-limited download is killed part-way; curl -C -
// resumes it with a Range request (206) and the result is whole.
func TestRangeResume(t *testing.T) {
	dir := vstest.Dir(t)
	sum := vstest.WriteFile(t, filepath.Join(dir, "r.bin"), 20<<20, 3)
	tp := vstest.Start(t, vstest.Options{Kind: port.Default}, dir)
	dst := filepath.Join(t.TempDir(), "r.bin")
	p := tp.Client.Start("curl", "-sS", "--limit-rate", "4M", "-o", dst, vstest.URL("r.bin"))
	netnstest.WaitFor(20*time.Second, func() bool {
		st, err := os.Stat(dst)
		return err == nil && st.Size() > 2<<20
	})
	_ = p.Process.Kill()
	_ = p.Wait()
	st, err := os.Stat(dst)
	if err != nil || st.Size() == 0 || st.Size() >= 20<<20 {
		t.Fatalf("interrupted download has %v bytes (err %v): want a part", st.Size(), err)
	}
	code := curl(t, tp, "-C", "-", "-o", dst, "-w", "%{http_code}", vstest.URL("r.bin"))
	if code != "206" {
		t.Fatalf("resume answered %s, want 206", code)
	}
	if got := vstest.FileSHA256(t, dst); got != sum {
		t.Fatalf("resumed file sha256 %s, want %s", got, sum)
	}
	// An unsatisfiable range gets 416.
	code = tp.Client.MustRun("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-r", "999999999-", vstest.URL("r.bin"))
	if code != "416" {
		t.Fatalf("range past the end answered %s, want 416", code)
	}
}

// TestImpairedPath: 1% loss, reordering and 20 ms delay on both ends (tc
// netem, or the userspace relay on kernels without sch_netem) still deliver
// every byte, to one client and to several at once; ping still answers.
func TestImpairedPath(t *testing.T) {
	dir := vstest.Dir(t)
	sum := vstest.WriteFile(t, filepath.Join(dir, "w.bin"), 8<<20, 4)
	small := vstest.WriteFile(t, filepath.Join(dir, "s.bin"), 300_000, 5)
	imp := &netnstest.Impairment{Delay: 20 * time.Millisecond, Loss: 0.01, Reorder: 0.05, Seed: 7}
	tp := vstest.Start(t, vstest.Options{Kind: port.Default, Impair: imp}, dir)
	t.Logf("impairment by netem: %v", tp.UsedNetem)
	out := tp.Client.MustRun("ping", "-c", "20", "-i", "0.05", "-W", "2", vstest.VSIP)
	if strings.Contains(out, " 0 received") {
		t.Fatalf("ping: %s", out)
	}
	got := curl(t, tp, "-o", "-", vstest.URL("w.bin"))
	if s := sha(got); s != sum {
		t.Fatalf("sha256 %s, want %s (%d bytes)", s, sum, len(got))
	}
	outDir := t.TempDir()
	args := []string{"-Z", "--parallel-max", "10"}
	for c := 0; c < 10; c++ {
		args = append(args, "-o", filepath.Join(outDir, fmt.Sprint(c)), vstest.URL("s.bin"))
	}
	curl(t, tp, args...)
	for c := 0; c < 10; c++ {
		if s := vstest.FileSHA256(t, filepath.Join(outDir, fmt.Sprint(c))); s != small {
			t.Fatalf("client %d: sha256 %s, want %s", c, s, small)
		}
	}
	if tp.Relay != nil {
		rs := tp.Relay.Stats()
		t.Logf("relay: %+v", rs)
		if rs.Lost == 0 || rs.Reordered == 0 {
			t.Fatalf("the relay lost %d and reordered %d frames: the path was not impaired", rs.Lost, rs.Reordered)
		}
	}
}

// TestLinkFlap: the VS's interface goes down and up again; the driver keeps
// running and serves afterwards, for each port kind.
func TestLinkFlap(t *testing.T) {
	for _, k := range kinds() {
		t.Run(string(k), func(t *testing.T) {
			dir := vstest.Dir(t)
			sum := vstest.WriteFile(t, filepath.Join(dir, "x.bin"), 200_000, 9)
			tp := vstest.Start(t, vstest.Options{Kind: k}, dir)
			curl(t, tp, "-o", "/dev/null", vstest.URL("x.bin"))
			tp.VS.MustRun("ip", "link", "set", tp.VSIface, "down")
			time.Sleep(300 * time.Millisecond)
			tp.VS.MustRun("ip", "link", "set", tp.VSIface, "up")
			got := curl(t, tp, "-o", "-", "--retry", "3", "--retry-connrefused", vstest.URL("x.bin"))
			if s := sha(got); s != sum {
				t.Fatalf("after the flap: sha256 %s, want %s", s, sum)
			}
			t.Logf("port %+v", tp.Solo.Port.Stats())
		})
	}
}

package nbd_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/port"
	ftpsvc "github.com/ftvs/ftvs/ftvs/services/ftp"
	nbdsvc "github.com/ftvs/ftvs/ftvs/services/nbd"
	"github.com/ftvs/ftvs/ftvs/vsrun"
)

// TestServicesBench prints, for scripts/bench.d/services.sh (FTVS_BENCH=1):
// fio 4 KiB random read and write at queue depth 16 on the solo VS's NBD
// export and on nbdkit's file plugin serving the same backing file from the
// same veth end, and FTP against HTTP download rates of one file from the
// same VS. Nothing is asserted.
func TestServicesBench(t *testing.T) {
	if os.Getenv("FTVS_BENCH") != "1" {
		t.Skip("benchmark: run by scripts/bench.d/services.sh (FTVS_BENCH=1)")
	}
	size := int64(256 << 20)
	if s, err := strconv.ParseInt(os.Getenv("FTVS_BENCH_BYTES"), 10, 64); err == nil && s > 0 {
		size = s / 4096 * 4096
	}
	runtimeSec := "8"
	env := netnstest.New(t, "fs5", "fio", "nbdkit", "curl")
	vs, cl := env.NS("vs"), env.NS("cl")
	env.Veth(vs, "v0", cl, "c0")
	cl.Addr("c0", "10.80.0.2/24")
	vs.Addr("v0", "10.80.0.3/24") // nbdkit's address on the same veth end
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	disk := filepath.Join(dir, "disk.img")
	for _, p := range []string{disk, filepath.Join(root, "big.bin")} {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = byte(i*131 + i>>8)
		}
		for off := int64(0); off < size; off += int64(len(buf)) {
			f.Write(buf[:min(int64(len(buf)), size-off)])
		}
		f.Close()
	}
	cfg := vsrun.SoloConfig{
		Iface: "v0", PortKind: port.AFPacket, MAC: [6]byte{2, 0xf5, 0, 0, 0, 3}, IP: [4]byte{10, 80, 0, 1},
		PrefixLen: 24, Root: root, ISNKey: [16]byte{'b'},
		FTP: &ftpsvc.Config{Anonymous: true, AnonymousWrite: true}, FTPWrite: true,
		NBD: &nbdsvc.Config{Exports: []nbdsvc.Export{{Name: "disk"}}}, NBDFiles: []string{disk},
	}
	vsrun.TuneGC()
	var solo *vsrun.Solo
	if err := vs.Do(func() (err error) { solo, err = vsrun.Open(cfg); return }); err != nil {
		t.Fatal(err)
	}
	vs.WaitLinkUp("v0")
	cl.WaitLinkUp("c0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- solo.Run(ctx) }()
	defer func() { cancel(); <-done; solo.Close() }()
	pidfile := filepath.Join(dir, "nbdkit.pid")
	vs.MustRun("nbdkit", "--ipaddr", "10.80.0.3", "--port", "10809", "--pidfile", pidfile, "file", "file="+disk)
	defer func() {
		if b, err := os.ReadFile(pidfile); err == nil {
			exec.Command("kill", strings.TrimSpace(string(b))).Run()
		}
	}()
	time.Sleep(300 * time.Millisecond)

	fio := func(uri, rw string) float64 {
		out := cl.MustRun("fio", "--name=b", "--ioengine=nbd", "--uri="+uri, "--rw="+rw, "--bs=4k", "--iodepth=16",
			"--size="+strconv.FormatInt(size, 10), "--time_based", "--runtime="+runtimeSec, "--output-format=json")
		var r struct {
			Jobs []struct {
				Read, Write struct{ IOPS float64 }
			}
		}
		if i := strings.IndexByte(out, '{'); i >= 0 {
			out = out[i:]
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Jobs) == 0 {
			t.Fatalf("fio output: %v\n%s", err, out)
		}
		if rw == "randread" {
			return r.Jobs[0].Read.IOPS
		}
		return r.Jobs[0].Write.IOPS
	}
	if prof := os.Getenv("FTVS_BENCH_CPUPROFILE"); prof != "" {
		f, err := os.Create(prof)
		if err != nil {
			t.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		fio("nbd://10.80.0.1/disk", "randread")
		pprof.StopCPUProfile()
		f.Close()
	}
	// The machine is shared: runs alternate between the two servers and
	// the median of three is printed, with the spread.
	med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
	rws := []string{"randread", "randwrite"}
	if os.Getenv("FTVS_BENCH_ONLY") == "ftp" {
		rws = nil
	}
	for _, rw := range rws {
		var vs, kit []float64
		for i := 0; i < 3; i++ {
			vs = append(vs, fio("nbd://10.80.0.1/disk", rw))
			kit = append(kit, fio("nbd://10.80.0.3/", rw))
		}
		v, k := med(vs), med(kit)
		fmt.Printf("nbd fio 4k %-9s qd16 (median of 3): VS %6.0f IOPS [%.0f..%.0f]  nbdkit file %6.0f IOPS [%.0f..%.0f]  ratio %.2f\n",
			rw, v, vs[0], vs[2], k, kit[0], kit[2], v/k)
	}

	rate := func(url string) float64 {
		before := solo.Driver.Stats()
		defer func() {
			a := solo.Driver.Stats()
			fmt.Printf("  %s: in %d frames, out %d frames (%d GSO), ticks %d, rounds %d\n", url, a.Frames-before.Frames,
				a.FramesOut-before.FramesOut, a.GSOOut-before.GSOOut, a.Ticks-before.Ticks, a.ReadRounds-before.ReadRounds)
		}()
		out := cl.MustRun("curl", "-sS", "--fail", "--max-time", "300", "-o", "/dev/null", "-w", "%{speed_download}", url)
		v, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
		return v
	}
	var ftp, http []float64
	for i := 0; i < 5; i++ {
		ftp = append(ftp, rate("ftp://10.80.0.1/big.bin"))
		http = append(http, rate("http://10.80.0.1/big.bin"))
	}
	fmt.Printf("download runs MB/s: FTP %.0f  HTTP %.0f\n", ftp, http)
	f, h := med(ftp), med(http)
	fmt.Printf("download %d MiB (median of 5): FTP %.0f MB/s  HTTP %.0f MB/s  ratio %.2f\n", size>>20, f/1e6, h/1e6, f/h)
	var up []float64
	for i := 0; i < 3; i++ {
		out := cl.MustRun("curl", "-sS", "--fail", "--max-time", "300", "-T", disk, "-o", "/dev/null", "-w", "%{speed_upload}",
			"ftp://10.80.0.1/up.bin")
		v, _ := strconv.ParseFloat(strings.TrimSpace(out), 64)
		up = append(up, v)
	}
	fmt.Printf("FTP upload %d MiB into the VS's directory (median of 3): %.0f MB/s\n", size>>20, med(up)/1e6)
	fmt.Printf("nbd counters: %+v\n", solo.Machine.Counters().NBD)
}

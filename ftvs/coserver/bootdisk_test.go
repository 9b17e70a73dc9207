package coserver_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev/filedev"
	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/vbootdisk"
	"github.com/ftvs/ftvs/ftvs/vbootdisk/format"
	"github.com/ftvs/ftvs/ftvs/vdisk"
	"github.com/ftvs/ftvs/installer/layout"
)

// withBootDisk gives both nodes a boot disk: a `ftvs vdisk create` copy
// whose data area holds the same FAT32 (formatted reproducibly, as the
// installer does) with the served file and an upload directory under /www,
// and configs that serve /www from it with FTP write access (user u) and
// HTTP PUT under /upload/ instead of vs.content.
func (p *pair) withBootDisk(t *testing.T, dataMiB int) (copies [3]string) {
	t.Helper()
	big, err := os.ReadFile(filepath.Join(p.dir, "www", p.file))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"www/" + p.file:       big,
		"www/small.txt":       []byte("small\n"),
		"www/upload/README":   []byte("PUT here\n"),
		"ftvs/vs.yaml":        []byte("ip: " + vsIP + "/24\n"),
		"www/index.html":      []byte("<h1>served from the mirrored boot disk</h1>\n"),
		"www/deep/er/x.txt":   []byte("deep\n"),
		"www/Mixed Case.html": bytes.Repeat([]byte("m"), 5000),
	}
	uuid := "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	stamp := layout.PairStamp([]byte(p.key), "ftvs-vd-boot")
	for i := 1; i <= 2; i++ {
		copies[i] = filepath.Join(p.dir, fmt.Sprintf("boot%d.vdisk", i))
		if out, err := exec.Command(ftvsBin, "vdisk", "create", "--size", fmt.Sprintf("%dMiB", dataMiB), "--node", fmt.Sprint(i), "--uuid", uuid, copies[i]).CombinedOutput(); err != nil {
			t.Fatalf("vdisk create: %v: %s", err, out)
		}
		f, err := filedev.Open(copies[i], filedev.Options{})
		if err != nil {
			t.Fatal(err)
		}
		vd, err := vdisk.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := format.FormatStamped(vd, "FTVS-VS", files, stamp); err != nil {
			t.Fatalf("format the boot disk: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		cfg := p.config(i)
		for _, r := range [][2]string{
			{"services: {http: {port: 80}, ftp: {port: 21}}",
				"services: {http: {port: 80, upload_prefix: /upload/}, ftp: {port: 21, users: [{name: u, password: pw, write: true}]}}"},
			{"  content: " + filepath.Join(p.dir, "www") + "\n",
				"  disks:\n    - {name: boot, path: " + copies[i] + ", boot: true, serve_dir: /www}\n"},
		} {
			if !strings.Contains(cfg, r[0]) {
				t.Fatalf("config has no %q", r[0])
			}
			cfg = strings.Replace(cfg, r[0], r[1], 1)
		}
		if err := os.WriteFile(p.cfgPath(i), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return copies
}

// txWatch samples the client's transmitted bytes (an upload's progress)
// until stopped: the longest time it did not grow after a mark.
type txWatch struct {
	p    *pair
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	last int64
	grew time.Time
	mark time.Time
	max  time.Duration // longest no-growth interval that ended after mark
}

func (p *pair) txBytes() int64 {
	out, err := p.cli.Run("cat", "/sys/class/net/eth0/statistics/tx_bytes")
	if err != nil {
		return 0
	}
	var n int64
	fmt.Sscan(strings.TrimSpace(out), &n)
	return n
}

func (p *pair) watchTx() *txWatch {
	w := &txWatch{p: p, stop: make(chan struct{}), done: make(chan struct{}), last: p.txBytes(), grew: time.Now()}
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			n, now := p.txBytes(), time.Now()
			w.mu.Lock()
			if n > w.last+4096 { // more than ACKs and ARP
				if !w.mark.IsZero() && now.After(w.mark) {
					w.max = max(w.max, now.Sub(w.grew))
				}
				w.last, w.grew = n, now
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *txWatch) sent() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *txWatch) markNow() {
	w.mu.Lock()
	w.mark = time.Now()
	w.mu.Unlock()
}

func (w *txWatch) end() time.Duration {
	close(w.stop)
	<-w.done
	return w.max
}

// bootFileSum reads path from the FAT32 in a stopped node's boot disk copy.
func bootFileSum(t *testing.T, copy, path string) (string, int64) {
	t.Helper()
	f, err := filedev.Open(copy, filedev.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vd, err := vdisk.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	st, err := vbootdisk.Open(vd)
	if err != nil {
		t.Fatalf("%s: %v", copy, err)
	}
	fi, err := st.Stat(path)
	if err != nil {
		t.Fatalf("%s: %s: %v", copy, path, err)
	}
	h, buf := sha256.New(), make([]byte, 1<<20)
	for off := int64(0); off < fi.Size; {
		n, err := st.ReadAt(path, buf[:min(int64(len(buf)), fi.Size-off)], off)
		if n == 0 && err != nil {
			t.Fatalf("%s: read %s at %d: %v", copy, path, off, err)
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	return hex.EncodeToString(h.Sum(nil)), fi.Size
}

// TestBootDiskPair: HTTP and FTP serve the mirrored FAT32 boot disk.
// (a) an HTTP download from it survives the primary's kill; (b) an FTP
// upload (curl -T) of 32 MiB into it survives the new primary's kill and
// reads back whole; (c) after the node rejoins (resync of what the
// survivor wrote alone, then the snapshot and a reload of its store), an
// HTTP PUT goes through the pair, and once both stop, `ftvs vdisk verify`
// finds the two copies identical and each FAT32 holds the uploads.
func TestBootDiskPair(t *testing.T) {
	p := newPair(t, pairOpts{sizeMiB: 48, prefix: "fbd"})
	copies := p.withBootDisk(t, 160)
	p.startPair()
	if out := p.cli.MustRun("curl", "-sS", "--fail", "--max-time", "20", "http://"+vsIP+"/index.html"); !strings.Contains(out, "mirrored boot disk") {
		t.Fatalf("GET /index.html from the boot disk: %q", out)
	}

	// (a) Download, primary (node 1) killed.
	rx0 := p.rxBytes()
	d := p.download(p.file, "--limit-rate", "16M")
	p.waitProgress(rx0, 0.4)
	at := time.Now()
	p.kill(1)
	p.waitRole(2, "primary", "", 10*time.Second)
	p.check(d, "boot disk download, primary killed")
	t.Logf("download: client stall around the kill %s", d.res.StallAround(at, 2*time.Second).Round(time.Millisecond))

	p.start(1)
	p.waitRole(2, "primary", "synced", 60*time.Second)
	p.waitRole(1, "secondary", "", 10*time.Second)

	// (b) FTP upload, primary (now node 2) killed half-way.
	const upSize = 32 << 20
	up := filepath.Join(p.dir, "upload.bin")
	upSum := writeRandom(t, up, upSize)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	w := p.watchTx()
	tx0 := w.sent()
	curl := p.cli.Cmd(ctx, "curl", "-sS", "--fail", "--max-time", "170", "--limit-rate", "8M",
		"--ftp-create-dirs", "-T", up, "ftp://u:pw@"+vsIP+"/in/upload.bin")
	var curlOut bytes.Buffer
	curl.Stdout, curl.Stderr = &curlOut, &curlOut
	t0 := time.Now()
	if err := curl.Start(); err != nil {
		t.Fatal(err)
	}
	curlDone := make(chan error, 1)
	go func() { curlDone <- curl.Wait() }()
	if !netnstest.WaitFor(60*time.Second, func() bool { return w.sent()-tx0 >= upSize*4/10 }) {
		t.Fatalf("the upload did not reach 40%%")
	}
	w.markNow()
	p.kill(2)
	p.waitRole(1, "primary", "", 10*time.Second)
	if err := <-curlDone; err != nil {
		t.Fatalf("FTP upload after the primary was killed: %v: %s", err, curlOut.String())
	}
	upStall := w.end()
	t.Logf("FTP upload of %d MiB (rate-limited to 8 MB/s) through the kill: %.2fs, longest client stall after the kill %s",
		upSize>>20, time.Since(t0).Seconds(), upStall.Round(time.Millisecond))
	for _, url := range []string{"http://" + vsIP + "/in/upload.bin", "ftp://u:pw@" + vsIP + "/in/upload.bin"} {
		g := p.fetch(url)
		<-g.done
		if g.err != nil || g.res.Bytes != upSize || hex.EncodeToString(g.res.Sum[:]) != upSum {
			t.Fatalf("GET %s after the upload: %d bytes, err %v %s; want %d bytes sha256 %s", url, g.res.Bytes, g.err, g.stderr.String(), upSize, upSum)
		}
	}

	// (c) Node 2 rejoins; HTTP PUT and an unlimited FTP upload in lockstep.
	p.start(2)
	p.waitRole(1, "primary", "synced", 60*time.Second)
	p.waitRole(2, "secondary", "", 10*time.Second)
	put := filepath.Join(p.dir, "put.bin")
	putSum := writeRandom(t, put, 3<<20)
	if code := p.cli.MustRun("curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}", "-T", put, "http://"+vsIP+"/upload/put.bin"); code != "201" {
		t.Fatalf("HTTP PUT through the pair: status %s", code)
	}
	g := p.fetch("http://" + vsIP + "/upload/put.bin")
	<-g.done
	if g.err != nil || hex.EncodeToString(g.res.Sum[:]) != putSum {
		t.Fatalf("GET the PUT file: %d bytes, err %v", g.res.Bytes, g.err)
	}
	t1 := time.Now()
	p.cli.MustRun("curl", "-sS", "--fail", "--max-time", "120", "-T", up, "ftp://u:pw@"+vsIP+"/in/again.bin")
	el := time.Since(t1)
	t.Logf("FTP upload of %d MiB through the pair in lockstep, unlimited: %.2fs, %.1f MB/s", upSize>>20, el.Seconds(), float64(upSize)/el.Seconds()/1e6)

	for i := 1; i <= 2; i++ {
		st, err := p.status(i)
		if err != nil {
			t.Fatal(err)
		}
		if st.Divergences != 0 {
			t.Errorf("node %d: %d divergences: the boot disk stores differ", i, st.Divergences)
		}
	}
	p.kill(1)
	p.kill(2)
	res, err := exec.Command(ftvsBin, "vdisk", "verify", copies[1], copies[2]).CombinedOutput()
	if err != nil {
		t.Fatalf("vdisk verify: the two boot disk copies differ: %v\n%s", err, res)
	}
	t.Logf("vdisk verify: %s", strings.TrimSpace(string(res)))
	for i := 1; i <= 2; i++ {
		for _, f := range []struct{ path, sum string }{{"www/in/upload.bin", upSum}, {"www/in/again.bin", upSum}, {"www/upload/put.bin", putSum}} {
			if sum, _ := bootFileSum(t, copies[i], f.path); sum != f.sum {
				t.Errorf("node %d's copy: %s sha256 %s, want %s", i, f.path, sum, f.sum)
			}
		}
	}
}

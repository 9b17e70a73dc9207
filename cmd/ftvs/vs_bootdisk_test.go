package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
	"github.com/ftvs/ftvs/ftvs/vbootdisk/format"
	"github.com/ftvs/ftvs/installer/layout"
)

// bootDiskImage formats a 48 MiB VS boot disk image holding files.
func bootDiskImage(t *testing.T, files map[string][]byte) string {
	t.Helper()
	dev, err := blockdev.NewMem(48<<20, 512)
	if err != nil {
		t.Fatal(err)
	}
	if err := format.FormatStamped(dev, "VSBOOT", files, layout.PairStamp([]byte("test pair key"), "ftvs-vd-boot")); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "boot.img")
	if err := os.WriteFile(img, dev.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestVSRunBootDisk serves a FAT32 boot disk image: HTTP GET with curl, FTP
// uploads with curl and lftp into the image; after the VS stops, fsck.fat
// accepts the image and mtools reads the uploads.
func TestVSRunBootDisk(t *testing.T) {
	vs, cl := vethPair(t, "fbd", "10.83.0.2/24", "curl", "lftp", "ping", "fsck.fat", "mtype")

	page := []byte("<h1>served from the boot disk</h1>\n")
	big := bytes.Repeat([]byte("0123456789abcdef"), 40_000) // 640 KB, many clusters
	img := bootDiskImage(t, map[string][]byte{"www/index.html": page, "www/big.bin": big, "ftvs/vs.yaml": []byte("ip: 10.83.0.1/24\n"),
		"upload/README": []byte("PUT here\n")})
	stop := runVS(t, vs, "--iface", "v0", "--mac", "02:f5:00:00:00:0b", "--ip", "10.83.0.1/24", "--boot-disk", img,
		"--ftp", "--ftp-user", "u:pw:rw", "--http-upload", "/upload/", "--http-max-upload", "10000000")
	if !waitFor(10*time.Second, func() bool { _, err := cl.Run("ping", "-c", "1", "-W", "1", "10.83.0.1"); return err == nil }) {
		t.Fatal("VS never answered ping")
	}
	if out := cl.MustRun(t, "curl", "-sS", "--fail", "--max-time", "30", "http://10.83.0.1/www/index.html"); out != string(page) {
		t.Fatalf("GET index.html: %q", out)
	}
	if out := cl.MustRun(t, "curl", "-sS", "--fail", "--max-time", "30", "http://10.83.0.1/www/big.bin"); out != string(big) {
		t.Fatalf("GET big.bin: %d bytes, want %d", len(out), len(big))
	}
	dir := t.TempDir()
	up1 := bytes.Repeat([]byte("uploaded with curl\n"), 30_000)
	up2 := bytes.Repeat([]byte("uploaded with lftp\n"), 1000)
	os.WriteFile(filepath.Join(dir, "up1"), up1, 0o644)
	os.WriteFile(filepath.Join(dir, "up2"), up2, 0o644)
	cl.MustRun(t, "curl", "-sS", "--fail", "--max-time", "30", "--ftp-create-dirs", "-T", filepath.Join(dir, "up1"), "ftp://u:pw@10.83.0.1/www/up/curl.txt")
	cl.MustRun(t, "lftp", "-u", "u,pw", "-e", "set net:max-retries 1; set net:timeout 20; set ftp:ssl-allow no; put "+filepath.Join(dir, "up2")+" -o \"/lftp upload.txt\"; bye", "10.83.0.1")
	// The uploads read back over HTTP while the VS runs.
	if out := cl.MustRun(t, "curl", "-sS", "--fail", "--max-time", "30", "http://10.83.0.1/www/up/curl.txt"); out != string(up1) {
		t.Fatalf("GET the curl upload: %d bytes, want %d", len(out), len(up1))
	}
	// HTTP PUT with curl -T: a new file (201, with curl's Expect:
	// 100-continue for a big body), a replacement (204), and refusals.
	up3 := bytes.Repeat([]byte("uploaded with curl -T over HTTP\n"), 100_000) // 3.2 MB
	os.WriteFile(filepath.Join(dir, "up3"), up3, 0o644)
	putURL := "http://10.83.0.1/upload/put.bin"
	if code := cl.MustRun(t, "curl", "-sS", "--max-time", "60", "-o", "/dev/null", "-w", "%{http_code}", "-T", filepath.Join(dir, "up3"), putURL); code != "201" {
		t.Fatalf("PUT new file: status %s", code)
	}
	if out := cl.MustRun(t, "curl", "-sS", "--fail", "--max-time", "60", putURL); out != string(up3) {
		t.Fatalf("GET the PUT file: %d bytes, want %d", len(out), len(up3))
	}
	if code := cl.MustRun(t, "curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-T", filepath.Join(dir, "up2"), putURL); code != "204" {
		t.Fatalf("PUT replacing: status %s", code)
	}
	for url, want := range map[string]string{"http://10.83.0.1/www/index.html": "403", "http://10.83.0.1/upload/no/dir.txt": "409"} {
		if code := cl.MustRun(t, "curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-T", filepath.Join(dir, "up2"), url); code != want {
			t.Fatalf("PUT %s: status %s, want %s", url, code, want)
		}
	}
	big2 := filepath.Join(dir, "big2")
	os.WriteFile(big2, make([]byte, 10_000_001), 0o644)
	if code := cl.MustRun(t, "curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-T", big2, "http://10.83.0.1/upload/big"); code != "413" {
		t.Fatalf("PUT over --http-max-upload: status %s", code)
	}
	stop()

	if out, err := exec.Command("fsck.fat", "-n", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.fat -n after uploads: %v\n%s", err, out)
	}
	for name, want := range map[string][]byte{"::/www/up/curl.txt": up1, "::/lftp upload.txt": up2, "::/www/index.html": page,
		"::/upload/put.bin": up2} {
		out, err := exec.Command("mtype", "-i", img, name).Output()
		if err != nil || !bytes.Equal(out, want) {
			t.Fatalf("mtype %s: %v (%d bytes, want %d)", name, err, len(out), len(want))
		}
	}
}

func TestVSRunBootDiskFlagErrors(t *testing.T) {
	dir := t.TempDir()
	base := []string{"vs", "run", "--iface", "eth9", "--mac", "02:00:00:00:00:01", "--ip", "10.0.0.2/24"}
	notFAT := filepath.Join(dir, "zero.img")
	os.WriteFile(notFAT, make([]byte, 1<<20), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "one of --root DIR and --boot-disk FILE"},
		{[]string{"--root", dir, "--boot-disk", notFAT}, "one of --root DIR and --boot-disk FILE"},
		{[]string{"--boot-disk", filepath.Join(dir, "none")}, "--boot-disk"},
		{[]string{"--boot-disk", dir}, "a directory"},
		{[]string{"--boot-disk", notFAT, "--record", filepath.Join(dir, "r.log"), "--nbd-export", "d=" + notFAT}, "--record"},
		{[]string{"--boot-disk", notFAT, "--iface", "lo"}, "boot disk " + notFAT},
		{[]string{"--root", dir, "--http-upload", "up/"}, "--http-upload"},
		{[]string{"--root", dir, "--http-upload", "/"}, "--http-upload"},
		{[]string{"--root", dir, "--http-upload", "/up/", "--http-max-upload", "-1"}, "--http-max-upload"},
		{[]string{"--root", dir, "--http-upload", "/up/", "--record", filepath.Join(dir, "r.log")}, "--record"},
	} {
		root := newRootCmd()
		root.SetArgs(append(append([]string(nil), base...), c.args...))
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		err := root.Execute()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want one naming %q", c.args, err, c.want)
		}
	}
}

var updateBootLog = flag.Bool("update-bootdisk-log", false, "write TestVSRunBootDiskRecorded's log to testdata/machine/vs-bootdisk.log")

// TestVSRunBootDiskRecorded records a real curl session (a 1.2 MiB GET and
// an HTTP PUT) served from a boot disk with --record, then replays the log
// into two fresh machines, each on its own copy of the recorded image:
// outputs agree at every step, state hashes at the end, and both copies
// hold the upload. With -update-bootdisk-log the log becomes
// testdata/machine/vs-bootdisk.log (replayed by ftvs/machine's tests).
func TestVSRunBootDiskRecorded(t *testing.T) {
	vs, cl := vethPair(t, "fbr", "10.84.0.2/24", "curl", "ping")
	zero := make([]byte, 1_200_000) // zero clusters: the log stays small
	img := bootDiskImage(t, map[string][]byte{"www/zero.bin": zero, "www/index.html": []byte("<h1>recorded</h1>\n"), "upload/README": []byte("PUT here\n")})
	logPath := filepath.Join(t.TempDir(), "session.log")
	stop := runVS(t, vs, "--iface", "v0", "--mac", "02:f5:00:00:00:0c", "--ip", "10.84.0.1/24", "--boot-disk", img,
		"--http-upload", "/upload/", "--isn-key", "000102030405060708090a0b0c0d0e0f", "--record", logPath)
	if !waitFor(10*time.Second, func() bool { _, err := cl.Run("ping", "-c", "1", "-W", "1", "10.84.0.1"); return err == nil }) {
		t.Fatal("VS never answered ping")
	}
	if out := cl.MustRun(t, "curl", "-sS", "--fail", "--max-time", "30", "http://10.84.0.1/www/zero.bin"); out != string(zero) {
		t.Fatalf("GET zero.bin: %d bytes", len(out))
	}
	up := bytes.Repeat([]byte("recorded upload\n"), 4000)
	upFile := filepath.Join(t.TempDir(), "up")
	os.WriteFile(upFile, up, 0o644)
	if code := cl.MustRun(t, "curl", "-sS", "--max-time", "30", "-o", "/dev/null", "-w", "%{http_code}", "-T", upFile, "http://10.84.0.1/upload/up.bin"); code != "201" {
		t.Fatalf("PUT: status %s", code)
	}
	time.Sleep(200 * time.Millisecond) // the last ACKs and FINs into the log
	stop()

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := inputlog.Read(bytes.NewReader(raw), logPath)
	if err != nil {
		t.Fatal(err)
	}
	if lg.BootDisk == nil {
		t.Fatal("the log holds no boot disk")
	}
	ms, err := lg.Replay(2)
	if err != nil {
		t.Fatal(err)
	}
	if c := ms[0].Counters().HTTP; c.BodyBytes < 1<<20 || c.Responses2xx < 2 {
		t.Fatalf("the replay did not carry the session: %+v", c)
	}
	for i, m := range ms {
		got := make([]byte, len(up)+1)
		n, _ := m.Env().Files.ReadAt("upload/up.bin", got, 0)
		if !bytes.Equal(got[:n], up) {
			t.Fatalf("replica %d's boot disk holds %d bytes of the upload, want %d", i, n, len(up))
		}
	}
	t.Logf("replayed %d inputs from a %d-byte log", len(lg.Inputs), len(raw))
	if *updateBootLog {
		dst := filepath.Join("..", "..", "testdata", "machine", "vs-bootdisk.log")
		if err := os.WriteFile(dst, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", dst)
	}
}

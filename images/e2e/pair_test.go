package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/images/e2e/qemuvm"
)

// diskSize is each machine's blank virtio disk: room for the layout of
// testdata/e2e/install.yaml (258 MiB) and no more.
const diskSize = 400 << 20

// Guest memory: the initramfs (about 17 MB unpacked, 4 MiB of VS
// content) lives in RAM next to the installer and the runtime; 512 MiB
// is plenty (1 GiB works too).
const memMiB = 512

// Bounds of each stage under TCG on a loaded 2-core machine.
const (
	bootTimeout    = 4 * time.Minute // power-on to the pairing verdict
	installTimeout = 3 * time.Minute // verdict to launch
	serveTimeout   = 3 * time.Minute // launch to the VS answering
	syncTimeout    = 4 * time.Minute // VS answering to the pair in lockstep
)

// machine is one QEMU CoServer of the pair.
type machine struct {
	vm   *qemuvm.VM
	disk string
}

// bios is what the machine's SMBIOS says; both machines share everything
// but the serial numbers unless a test changes the BIOS version.
func smbios(index int, biosVersion string) []string {
	return []string{
		"-smbios", "type=0,vendor=FTVS Firmware,version=" + biosVersion + ",date=03/14/2025",
		"-smbios", fmt.Sprintf("type=1,manufacturer=FTVS,product=E2E Server,version=1,serial=FE7-%d", index),
		"-smbios", fmt.Sprintf("type=2,manufacturer=FTVS,product=E2E Board,version=1,serial=FE7-B%d", index),
	}
}

// startPair powers on both machines of the test network with blank disks;
// machine b gets biosB as its BIOS version. With fromStick the machines
// boot the installer ISO written to a USB stick (SeaBIOS, the isohybrid
// MBR, isolinux), as an operator does; otherwise QEMU loads the kernel and
// initramfs directly (faster; the media paths have their own boot tests).
// Both machines get the same devices either way: the hardware match
// compares PCI slots.
func startPair(t *testing.T, seg *segments, biosB string, fromStick bool) [2]*machine {
	t.Helper()
	var ms [2]*machine
	dir := t.TempDir()
	for i, name := range []string{"a", "b"} {
		disk := filepath.Join(dir, "disk-"+name+".raw")
		f, err := os.Create(disk)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(diskSize); err != nil {
			t.Fatal(err)
		}
		f.Close()
		bios := "1.0"
		if i == 1 {
			bios = biosB
		}
		args := qemuvm.BaseArgs(memMiB)
		if fromStick {
			// The USB controller sits after the NICs (slot 0x10): the
			// roles test names the NICs' slots.
			args = append(args, "-device", "qemu-xhci,addr=0x10",
				"-drive", "if=none,id=stick,format=raw,readonly=on,file="+isoImage,
				"-device", "usb-storage,drive=stick,bootindex=1")
		} else {
			args = append(args, "-kernel", kern.Vmlinuz, "-initrd", initrd, "-append", bootCmdline)
		}
		args = append(args, "-drive", "file="+disk+",format=raw,if=virtio")
		args = append(args, smbios(i, bios)...)
		args = append(args, seg.nics(name, i)...)
		ms[i] = &machine{vm: qemuvm.Start(t, "machine "+name, seg.exec(), args...), disk: disk}
	}
	return ms
}

var (
	bannerRE   = regexp.MustCompile(`ftvs installer: started`)
	matchRE    = regexp.MustCompile(`verdict: MATCH`)
	mismatchRE = regexp.MustCompile(`verdict: MISMATCH`)
	stoppedRE  = regexp.MustCompile(`install failed: hardware mismatch`)
	writtenRE  = regexp.MustCompile(`written and verified by reading back`)
	launchRE   = regexp.MustCompile(`exec ftvs coserver --config`)
	startingRE = regexp.MustCompile(`coserver: starting.*role=(\w+)`)
	// The roles both machines must find by themselves (slot order:
	// crossover, production, crossover, management).
	roleREs = []*regexp.Regexp{
		regexp.MustCompile(`eth0 .*0000:00:03\.0 +coserver +crossover`),
		regexp.MustCompile(`eth1 .*0000:00:04\.0 +redirected +switched +hears ` + clientIP),
		regexp.MustCompile(`eth2 .*0000:00:05\.0 +coserver +crossover`),
		regexp.MustCompile(`eth3 .*0000:00:06\.0 +management +switched +hears ` + managerIP),
	}
)

// stage waits for re on both consoles and logs when each got there.
func stage(t *testing.T, ms [2]*machine, name string, re *regexp.Regexp, timeout time.Duration) {
	t.Helper()
	var at [2]time.Duration
	for i, m := range ms {
		at[i] = m.vm.WaitFor(t, re, timeout)
	}
	t.Logf("stage %-28s a %6.1fs  b %6.1fs after power-on", name+":", at[0].Seconds(), at[1].Seconds())
}

// TestPairInstallAndFailover is issue 7's end-to-end proof: two machines
// with the same SMBIOS boot the installer from the ISO on a USB stick, find their NIC roles, pair,
// pass the hardware match, lay out their blank disks and launch the
// runtime; a client on the production LAN downloads from the VS while the
// primary's QEMU process is killed, and gets the whole file.
func TestPairInstallAndFailover(t *testing.T) {
	needSetup(t)
	seg := newSegments(t, "pair")
	t0 := time.Now()
	ms := startPair(t, seg, "1.0", true)

	stage(t, ms, "installer started", bannerRE, bootTimeout)
	stage(t, ms, "hardware match", matchRE, bootTimeout)
	stage(t, ms, "disk laid out", writtenRE, installTimeout)
	stage(t, ms, "runtime launched", launchRE, installTimeout)
	for _, m := range ms {
		con := m.vm.Console()
		for _, re := range roleREs {
			if !re.MatchString(con) {
				t.Errorf("%s: the plan lacks the role %q", m.vm.Name, re)
			}
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), serveTimeout)
	defer cancel()
	for {
		page, err := exec.CommandContext(ctx, "ip", "netns", "exec", seg.ns, "curl", "-sf", "--max-time", "3", "http://"+vsIP+"/index.html").Output()
		if err == nil && strings.Contains(string(page), "ftvs virtual server "+vsIP) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the VS never served its page: %v", err)
		}
		time.Sleep(time.Second)
	}
	serving := time.Since(t0)
	t.Logf("stage %-28s %6.1fs after power-on (the unattended pair install)", "VS serving:", serving.Seconds())

	// Kill the primary: the harder case (the VS's outputs came from it).
	victim := ms[0]
	for _, m := range ms {
		if r := lastRole(m.vm.Console()); r == "primary" {
			victim = m
		}
	}
	// The pair is in lockstep only once the joiner's virtual disks met the
	// primary's: the initial full sync of the mirrored disks (the boot disk
	// the VS serves from and the data disk; checksums skip what matches)
	// comes before the joiner's snapshot.
	tSync := time.Now()
	for lastLockstep(victim.vm.Console()) != "peer-synced" {
		if time.Since(tSync) > syncTimeout {
			t.Fatalf("the pair was not in lockstep %s after the VS served (last lockstep event %q)", syncTimeout, lastLockstep(victim.vm.Console()))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("stage %-28s %6.1fs after power-on (initial sync of the mirrored disks, then the snapshot)", "pair in lockstep:", time.Since(t0).Seconds())
	t.Logf("roles: a %q, b %q; killing %s", lastRole(ms[0].vm.Console()), lastRole(ms[1].vm.Console()), victim.vm.Name)

	// A rate-limited download: the kill lands mid-transfer.
	got := filepath.Join(t.TempDir(), "blob.bin")
	curl := exec.Command("ip", "netns", "exec", seg.ns, "curl", "-sS", "--fail", "--limit-rate", "256k",
		"--max-time", "240", "-o", got, "http://"+vsIP+"/blob.bin")
	var curlErr bytes.Buffer
	curl.Stderr = &curlErr
	tDown := time.Now()
	if err := curl.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- curl.Wait() }()
	t.Cleanup(func() { curl.Process.Kill() })
	var killedAt int64
	for killedAt == 0 {
		select {
		case err := <-done:
			t.Fatalf("the download ended before the kill (%v): %s", err, curlErr.String())
		case <-time.After(100 * time.Millisecond):
		}
		// The kill must find the pair in lockstep: a secondary still
		// rejoining is rightly not allowed to go live.
		if fi, err := os.Stat(got); err == nil && fi.Size() >= blobSize/4 && lastLockstep(victim.vm.Console()) == "peer-synced" {
			killedAt = fi.Size()
			victim.vm.Kill()
		}
	}
	events := lockstepRE.FindAllString(victim.vm.Console(), -1)
	t.Logf("primary's lockstep events before the kill: %v", events)
	for _, e := range events {
		if strings.Contains(e, "divergence") {
			t.Errorf("the replicas diverged before the kill (the runtime resynchronised them): %s", divergenceRE.FindString(victim.vm.Console()))
		}
	}
	t.Logf("killed %s's QEMU at %d of %d bytes (%.1fs into the download)", victim.vm.Name, killedAt, blobSize, time.Since(tDown).Seconds())
	// The client's view of the failover: the longest time the file did
	// not grow after the kill.
	killTime, lastGrowth, lastSize := time.Now(), time.Now(), killedAt
	var stall time.Duration
	deadline := time.After(5 * time.Minute)
	for finished := false; !finished; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the download failed after the kill: %v: %s", err, curlErr.String())
			}
			finished = true
		case <-deadline:
			t.Fatal("the download did not finish within 5 minutes of the kill")
		case <-time.After(50 * time.Millisecond):
			if fi, err := os.Stat(got); err == nil && fi.Size() > lastSize {
				stall = max(stall, time.Since(lastGrowth))
				lastSize, lastGrowth = fi.Size(), time.Now()
			}
		}
	}
	t.Logf("stage %-28s %6.1fs (4 MiB at most 256 KiB/s); longest stall after the kill %.2fs, finished %.1fs after it",
		"download complete:", time.Since(tDown).Seconds(), stall.Seconds(), time.Since(killTime).Seconds())
	if sum := fileSHA256(t, got); sum != blobSum {
		t.Fatalf("downloaded file sha256 %s, want %s", sum, blobSum)
	}
	survivor := ms[0]
	if victim == ms[0] {
		survivor = ms[1]
	}
	if survivor.vm.Exited() {
		t.Fatalf("%s exited too", survivor.vm.Name)
	}
	t.Logf("%s served the rest: sha256 %s", survivor.vm.Name, blobSum)
	for _, m := range ms {
		t.Logf("runtime events on %s:\n%s", m.vm.Name, strings.Join(eventRE.FindAllString(m.vm.Console(), -1), "\n"))
	}
	sameLayout(t, ms)
}

var eventRE = regexp.MustCompile(`(?m)^time=\S+ level=\w+ msg=.*$`)

// sameLayout checks with sgdisk that both disks hold a valid GPT with the
// same partitions (GUIDs aside).
func sameLayout(t *testing.T, ms [2]*machine) {
	t.Helper()
	sg, err := exec.LookPath("sgdisk")
	if err != nil {
		t.Logf("sgdisk not installed (Debian package gdisk): partition tables not compared")
		return
	}
	parts := regexp.MustCompile(`(?m)^\s+\d+\s+\d+\s+\d+.*$`)
	var tables [2]string
	for i, m := range ms {
		if out, err := exec.Command(sg, "-v", m.disk).CombinedOutput(); err != nil || !strings.Contains(string(out), "No problems found") {
			t.Errorf("%s: sgdisk -v: %v\n%s", m.vm.Name, err, out)
		}
		out, err := exec.Command(sg, "-p", m.disk).Output()
		if err != nil {
			t.Fatalf("%s: sgdisk -p: %v", m.vm.Name, err)
		}
		tables[i] = strings.Join(parts.FindAllString(string(out), -1), "\n")
	}
	if strings.Count(tables[0], "\n") != 3 || tables[0] != tables[1] {
		t.Errorf("partition tables differ or are not 4 partitions:\n%s\n---\n%s", tables[0], tables[1])
	}
	t.Logf("both disks: GPT verified by sgdisk, same 4 partitions:\n%s", tables[0])
}

var (
	lockstepRE   = regexp.MustCompile(`msg="lockstep ([\w-]+)"`)
	divergenceRE = regexp.MustCompile(`msg="lockstep divergence".*`)
)

// lastLockstep is the runtime's last lockstep event ("peer-synced",
// "peer-lost", "snapshot-sent", ...).
func lastLockstep(console string) string {
	m := lockstepRE.FindAllStringSubmatch(console, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// lastRole is the role in the runtime's last "coserver: starting" line.
func lastRole(console string) string {
	m := startingRE.FindAllStringSubmatch(console, -1)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1][1]
}

// TestBIOSMismatchStopsBoth: machine b's SMBIOS has another BIOS version.
// Both installers stop at the hardware match with the difference on both
// serial consoles, and neither disk is written.
func TestBIOSMismatchStopsBoth(t *testing.T) {
	needSetup(t)
	seg := newSegments(t, "bios")
	ms := startPair(t, seg, "1.1", false)

	stage(t, ms, "installer started", bannerRE, bootTimeout)
	stage(t, ms, "hardware mismatch", mismatchRE, bootTimeout)
	stage(t, ms, "install stopped", stoppedRE, time.Minute)
	diff := regexp.MustCompile(`! fatal +bios\.version: "1\.(0" vs "1\.1|1" vs "1\.0)"`)
	var reports []string
	for _, m := range ms {
		con := m.vm.Console()
		if !diff.MatchString(con) {
			t.Errorf("%s: the console does not report the BIOS version difference", m.vm.Name)
		}
		if launchRE.MatchString(con) || writtenRE.MatchString(con) {
			t.Errorf("%s: went on past the mismatch", m.vm.Name)
		}
		i, j := strings.Index(con, "A: node 1"), strings.Index(con, "verdict: MISMATCH")
		if i >= 0 && j > i {
			reports = append(reports, con[i:j])
		}
	}
	if len(reports) != 2 || reports[0] != reports[1] {
		t.Errorf("the two consoles do not show the same report")
	}
	for _, m := range ms {
		m.vm.Kill() // nothing can still be in flight to the disk
		blank(t, m)
	}
}

// blank fails unless the machine's disk file is still all zeros at its
// original size.
func blank(t *testing.T, m *machine) {
	t.Helper()
	f, err := os.Open(m.disk)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	var n int64
	for {
		k, err := f.Read(buf)
		if !bytes.Equal(buf[:k], zero[:k]) {
			t.Errorf("%s: disk written near offset %d", m.vm.Name, n)
			return
		}
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != diskSize {
		t.Errorf("%s: disk is %d bytes, was %d", m.vm.Name, n, diskSize)
	}
}

func fileSHA256(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

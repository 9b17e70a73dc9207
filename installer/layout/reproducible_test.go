package layout

import (
	"bytes"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
)

// formatImage formats a fresh 48 MiB image file and returns its bytes.
func formatImage(t *testing.T, files Files, st Stamp) (string, []byte) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fat.img")
	b, err := file.CreateFromPath(p, 48<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := FormatFAT32Stamped(b, 0, 48<<20, "VSBOOT", files, st); err != nil {
		t.Fatal(err)
	}
	b.Close()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, data
}

func stampFiles() Files {
	return Files{
		"ftvs/vs.yaml":           []byte("ip: 192.168.50.10/24\n"),
		"www/index.html":         []byte("<h1>ftvs</h1>\n"),
		"www/img/A Long Name.js": bytes.Repeat([]byte("x"), 5000),
		"www/deep/er/still.txt":  []byte("deep\n"),
		"README.TXT":             []byte("read me\n"),
		"www/empty.txt":          nil, // go-diskfs gives it a cluster; stampFAT32 frees it
	}
}

// Two formats with the same inputs under different clocks (go-diskfs reads
// SOURCE_DATE_EPOCH as its clock; the second format also runs more than a
// second later) are byte-identical, pass fsck.fat and carry the stamp.
func TestFormatIsReproducible(t *testing.T) {
	st := PairStamp([]byte("0123456789abcdef0123456789abcdef"), "ftvs-vd-boot")
	t.Setenv("SOURCE_DATE_EPOCH", "1500000000")
	img, a := formatImage(t, stampFiles(), st)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000001")
	_, b := formatImage(t, stampFiles(), st)
	os.Unsetenv("SOURCE_DATE_EPOCH") // the wall clock, a second or more later
	time.Sleep(1100 * time.Millisecond)
	_, c := formatImage(t, stampFiles(), st)
	for i, other := range [][]byte{b, c} {
		if !bytes.Equal(a, other) {
			n := 0
			for n < len(a) && a[n] == other[n] {
				n++
			}
			t.Fatalf("format %d differs from the first at byte %d", i+2, n)
		}
	}
	if got := binary.LittleEndian.Uint32(a[67:]); got != st.VolumeID {
		t.Errorf("volume ID %08x, want %08x", got, st.VolumeID)
	}
	if !bytes.Equal(a[67:71], a[6*512+67:6*512+71]) {
		t.Errorf("backup boot sector has another volume ID")
	}
	// A different pair key gives another volume ID and nothing else.
	_, d := formatImage(t, stampFiles(), PairStamp([]byte("another key"), "ftvs-vd-boot"))
	if bytes.Equal(a, d) {
		t.Fatal("two pair keys gave the same disk")
	}
	if fsck, err := exec.LookPath("fsck.fat"); err == nil {
		out, err := exec.Command(fsck, "-n", img).CombinedOutput()
		if err != nil {
			t.Fatalf("fsck.fat -n: %v\n%s", err, out)
		}
	} else {
		t.Log("fsck.fat absent: skipped")
	}
	if mdir, err := exec.LookPath("mdir"); err == nil {
		out, err := exec.Command(mdir, "-i", img, "::/www/deep/er").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "2000-01-01") {
			t.Fatalf("mdir (want the stamp's date 2000-01-01): %v\n%s", err, out)
		}
		out, err = exec.Command("minfo", "-i", img, "::").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "serial number: "+volID(st.VolumeID)) {
			t.Fatalf("minfo (want serial %s): %v\n%s", volID(st.VolumeID), err, out)
		}
	}
}

func volID(v uint32) string {
	const hex = "0123456789ABCDEF"
	s := make([]byte, 0, 8)
	for i := 28; i >= 0; i -= 4 {
		s = append(s, hex[v>>uint(i)&0xf])
	}
	return string(s)
}

func TestStampOutsideFATRange(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fat.img")
	b, err := file.CreateFromPath(p, 48<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	err = FormatFAT32Stamped(b, 0, 48<<20, "X", nil, Stamp{Time: time.Unix(0, 0)})
	if err == nil || !strings.Contains(err.Error(), "1980-2107") {
		t.Fatalf("1970 stamp: %v", err)
	}
}

// Both CoServers' installs write the same VS boot disk data area.
func TestBothNodesWriteTheSameBootDisk(t *testing.T) {
	p := plan(t)
	c := content()
	t.Setenv("SOURCE_DATE_EPOCH", "1600000000")
	img1 := diskImage(t, 1<<30)
	if err := Apply(img1, p, c, opts(false)); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1600086400")
	img2 := diskImage(t, 1<<30)
	o2 := opts(false)
	o2.Node = 2
	if err := Apply(img2, p, c, o2); err != nil {
		t.Fatal(err)
	}
	for _, pt := range p.Parts {
		if pt.Kind != KindVDisk || pt.Label == "" {
			continue
		}
		a, b := sum(t, extract(t, img1, pt)), sum(t, extract(t, img2, pt))
		if a != b {
			t.Fatalf("partition %d (%s): the two nodes' FAT data areas differ", pt.Index, pt.Name)
		}
		return
	}
	t.Fatal("the plan has no FAT virtual disk")
}

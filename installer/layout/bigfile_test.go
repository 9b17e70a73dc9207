package layout

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// Files of several clusters, and sizes around sector and cluster edges,
// read back exactly (and mtools agrees on their sizes).
func TestFileSizesReadBack(t *testing.T) {
	p := plan(t)
	img := diskImage(t, 1<<30)
	files := Files{}
	for _, n := range []int{0, 1, 511, 512, 513, 2926, 4096, 4097, 70000} {
		files[strings.Repeat("f", 1+n%7)+"/"+itoa(n)+".bin"] = bytes.Repeat([]byte{byte(n)}, n)
	}
	if err := Apply(img, p, Content{System: files}, opts(false)); err != nil {
		t.Fatal(err)
	}
	if mdir, err := exec.LookPath("mdir"); err == nil {
		part := extract(t, img, p.Parts[1])
		out, err := exec.Command(mdir, "-i", part, "-/", "::/").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "70000") || !strings.Contains(string(out), "2926") {
			t.Fatalf("mdir: %v\n%s", err, out)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

package install

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/ftvs/ftvs/installer/config"
)

// Files staged for the VS (StateDir/vs-content, or VSFiles) go onto the
// boot disk under www/, which the runtime serves; the index page and the
// VS's config are there too. The runtime config is written with mode 0600
// (it holds the pair key).
func TestVSFilesGoOntoTheBootDisk(t *testing.T) {
	c, err := config.Parse("c.yaml", []byte(`version: 1
addresses: {management: [10.0.0.11/24, 10.0.0.12/24]}
disk: {target: /dev/null}
virtual_disks: [{name: boot, size: 100MiB}]
vs: {mac: "02:f7:00:00:00:01", ip: 192.168.50.10/24}
`))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	staged := filepath.Join(dir, "vs-content")
	os.MkdirAll(filepath.Join(staged, "sub"), 0o755)
	os.WriteFile(filepath.Join(staged, "blob.bin"), []byte("blob"), 0o644)
	os.WriteFile(filepath.Join(staged, "sub", "x.txt"), []byte("x"), 0o644)
	for _, o := range []Options{{StateDir: dir}, {StateDir: t.TempDir(), VSFiles: staged}} {
		r := &runner{o: o}
		content, err := r.content(c, nil, []byte("rc"), make([]byte, 32))
		if err != nil {
			t.Fatal(err)
		}
		vs := content.VSBoot
		if !bytes.Equal(vs["www/blob.bin"], []byte("blob")) || !bytes.Equal(vs["www/sub/x.txt"], []byte("x")) ||
			len(vs["www/index.html"]) == 0 || len(vs["ftvs/vs.yaml"]) == 0 || len(vs) != 4 {
			t.Fatalf("options %+v: boot disk files %v", o, keys(vs))
		}
	}
	r := &runner{o: Options{StateDir: t.TempDir()}}
	if content, err := r.content(c, nil, []byte("rc"), make([]byte, 32)); err != nil || len(content.VSBoot) != 2 {
		t.Fatalf("nothing staged: %v, %v", keys(content.VSBoot), err)
	}
	path, err := r.writeState([]byte("rc"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("runtime config %s: %v %v", path, fi, err)
	}
}

func keys[V any](m map[string]V) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	return k
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// withStorage adds an FTP section with users, NBD and one disk to the example.
func withStorage(t *testing.T) string {
	t.Helper()
	good := example(t)
	src := addStorage(good)
	if src == good {
		t.Fatal("example has no content line")
	}
	return src
}

func addStorage(good string) string {
	src := strings.Replace(good, "  content: .", `  content: .
  disks:
    - {name: data, path: /dev/vg0/data, export: data, resync_rate: 100000000}
    - {name: boot, path: /dev/vg0/boot}`, 1)
	src = strings.Replace(src, "  services:\n", `  services:
    nbd: {}
    ftp:
      port: 2121
      anonymous: false
      pasv_ports: 31000-31009
      users:
        - {name: alice, password: secret}
`, 1)
	return src
}

func TestStorageSectionsDecode(t *testing.T) {
	c, err := Parse("node1.yaml", []byte(withStorage(t)))
	if err != nil {
		t.Fatal(err)
	}
	f := c.VS.Services.FTP
	if f == nil || f.Port != 2121 || f.AnonymousOK() || f.PasvMin != 31000 || f.PasvMax != 31009 || len(f.Users) != 1 || f.Users[0].Write {
		t.Fatalf("ftp %+v", f)
	}
	if n := c.VS.Services.NBD; n == nil || n.Port != 10809 {
		t.Fatalf("nbd %+v", n)
	}
	if len(c.VS.Disks) != 2 || c.VS.Disks[0].Export != "data" || c.VS.Disks[0].ResyncRate != 100000000 || c.VS.Disks[1].Path != "/dev/vg0/boot" {
		t.Fatalf("disks %+v", c.VS.Disks)
	}
}

func TestBadStorageNamesLineAndField(t *testing.T) {
	good := withStorage(t)
	cases := []struct{ name, from, to, want string }{
		{"pasv", "pasv_ports: 31000-31009", "pasv_ports: 31009-31000", "field vs.services.ftp.pasv_ports: \"31009-31000\" is not a port range"},
		{"user no password", ", password: secret}", "}", "field vs.services.ftp.users[0]: needs exactly one of password and password_sha256"},
		{"anonymous user", "name: alice", "name: ftp", "field vs.services.ftp.users[0].name"},
		{"disk path", "path: /dev/vg0/boot", "path: \"\"", "field vs.disks[1].path: is missing"},
		{"disk twice", "name: boot", "name: data", "field vs.disks[1].name: \"data\" is given twice"},
		{"nbd without export", "export: data, ", "", "field vs.services.nbd: is enabled but no vs.disks entry names an export"},
		{"export without nbd", "    nbd: {}\n", "", "field vs.disks: names NBD exports but vs.services.nbd is not enabled"},
		{"user write", "password: secret}", "password: secret, write: true}", "field vs.services.ftp.users[0].write: needs the boot disk"},
		{"rate", "resync_rate: 100000000", "resync_rate: -1", "field vs.disks[0].resync_rate"},
	}
	for _, c := range cases {
		src := strings.Replace(good, c.from, c.to, 1)
		if src == good {
			t.Fatalf("%s: replacement %q not found", c.name, c.from)
		}
		_, err := Parse("node1.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "node1.yaml:") {
			t.Errorf("%s: err = %v\n want it to contain %q and a line", c.name, err, c.want)
		}
	}
}

// withBoot turns the storage example's "boot" disk into the boot disk and
// drops vs.content.
func withBoot(t *testing.T) string {
	t.Helper()
	src := strings.Replace(withStorage(t), "{name: boot, path: /dev/vg0/boot}", "{name: boot, path: /dev/vg0/boot, boot: true, serve_dir: /www}", 1)
	src = strings.Replace(src, "  content: .\n", "", 1)
	src = strings.Replace(src, "{name: alice, password: secret}", "{name: alice, password: secret, write: true}", 1)
	src = strings.Replace(src, "    http:\n      port: 80\n", "    http: {port: 8080, upload_prefix: /upload/}\n", 1)
	if strings.Contains(src, "content:") || !strings.Contains(src, "boot: true") || !strings.Contains(src, "upload_prefix") {
		t.Fatalf("example not turned into a boot disk config:\n%s", src)
	}
	return src
}

func TestBootDiskDecodes(t *testing.T) {
	c, err := Parse("node1.yaml", []byte(withBoot(t)))
	if err != nil {
		t.Fatal(err)
	}
	if i := c.BootDisk(); i != 1 || c.VS.Disks[i].ServeDir != "/www" || c.VS.Content != "" {
		t.Fatalf("boot disk %d, disks %+v", i, c.VS.Disks)
	}
	if h := c.VS.Services.HTTP; h == nil || h.Port != 8080 || h.UploadPrefix != "/upload/" {
		t.Fatalf("http %+v", h)
	}
	if !c.VS.Services.FTP.Users[0].Write {
		t.Fatal("the FTP user lost write access")
	}
}

func TestBadBootDiskNamesLineAndField(t *testing.T) {
	good := withBoot(t)
	cases := []struct{ name, from, to, want string }{
		{"two boot disks", "export: data, resync_rate", "export: data, read_only: true, boot: true, resync_rate", "field vs.disks[1].boot: vs.disks[0] is the boot disk already"},
		{"exported read-write", "path: /dev/vg0/boot, boot: true", "path: /dev/vg0/boot, export: boot, boot: true", "field vs.disks[1].export: exports the boot disk read-write"},
		{"serve_dir dirty", "serve_dir: /www", "serve_dir: /www/../etc", "field vs.disks[1].serve_dir: \"/www/../etc\" is not a clean absolute path"},
		{"serve_dir relative", "serve_dir: /www", "serve_dir: www", "field vs.disks[1].serve_dir"},
		{"serve_dir without boot", "export: data, resync_rate", "export: data, serve_dir: /x, resync_rate", "field vs.disks[0].serve_dir: is only for the boot disk"},
		{"content and boot", "  disks:\n", "  content: .\n  disks:\n", "field vs.content: is given together with a boot disk"},
		{"upload without boot", ", boot: true, serve_dir: /www}", "}\n  content: .", "field vs.services.http.upload_prefix: needs the boot disk"},
		{"upload prefix", "upload_prefix: /upload/", "upload_prefix: upload", "field vs.services.http.upload_prefix"},
	}
	for _, c := range cases {
		src := strings.Replace(good, c.from, c.to, 1)
		if src == good {
			t.Fatalf("%s: replacement %q not found", c.name, c.from)
		}
		_, err := Parse("node1.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "node1.yaml:") {
			t.Errorf("%s: err = %v\n want it to contain %q and a line", c.name, err, c.want)
		}
	}
	// HTTP and FTP with neither a boot disk nor vs.content.
	src := strings.Replace(withStorage(t), "  content: .\n", "", 1)
	if _, err := Parse("node1.yaml", []byte(src)); err == nil || !strings.Contains(err.Error(), "field vs.content: is missing") {
		t.Errorf("no store: err = %v", err)
	}
}

// FuzzParseStorage starts from the example with the storage sections, so
// mutations reach their validation.
func FuzzParseStorage(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "coserver", "node1.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(addStorage(string(b))))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse("fuzz.yaml", b)
	})
}

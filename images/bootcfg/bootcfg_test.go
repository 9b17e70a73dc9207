package bootcfg

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromCmdline(t *testing.T) {
	cases := []struct {
		cmdline string
		ok      bool
		kind    Kind
		str     string
		errHas  string
	}{
		{"console=ttyS0 quiet", false, None, "none", ""},
		{"console=ttyS0 ftvs.config=tftp://10.0.2.2/install.conf quiet", true, Network, "tftp://10.0.2.2/install.conf", ""},
		{"ftvs.config=http://10.0.2.2:8080/a/b.conf", true, Network, "http://10.0.2.2:8080/a/b.conf", ""},
		{"ftvs.config=media:/ftvs/install.conf", true, Media, "media:/ftvs/install.conf", ""},
		{`ftvs.config="/etc/ftvs/x y.conf"`, true, Local, "/etc/ftvs/x y.conf", ""},
		{"ftvs.config=file:///etc/a.conf", true, Local, "/etc/a.conf", ""},
		{"ftvs.config=/a ftvs.config=/b", true, Local, "/b", ""},
		{"ftvs.config=", true, None, "", "empty"},
		{"ftvs.config=https://x/y", true, None, "", "https is not supported"},
		{"ftvs.config=ftp://x/y", true, None, "", `unknown scheme "ftp"`},
		{"ftvs.config=http:///y", true, None, "", "no host"},
		{"ftvs.config=tftp://10.0.2.2/", true, None, "", "names no file"},
		{"ftvs.config=media:relative", true, None, "", "must be absolute"},
	}
	for _, c := range cases {
		src, ok, err := FromCmdline(c.cmdline)
		if ok != c.ok {
			t.Errorf("%q: ok = %v", c.cmdline, ok)
		}
		if c.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), c.errHas) || !strings.Contains(err.Error(), Param) {
				t.Errorf("%q: err = %v, want one naming %s and %q", c.cmdline, err, Param, c.errHas)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.cmdline, err)
			continue
		}
		if src.Kind != c.kind || src.String() != c.str {
			t.Errorf("%q: got %v %q, want %v %q", c.cmdline, src.Kind, src.String(), c.kind, c.str)
		}
	}
}

func TestSplitCmdline(t *testing.T) {
	got := SplitCmdline("  a=1 b=\"x y\"\tc \"\" d\n")
	want := []string{"a=1", "b=x y", "c", "", "d"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

func FuzzFromCmdline(f *testing.F) {
	for _, s := range []string{
		"console=ttyS0 ftvs.config=tftp://10.0.2.2/install.conf",
		"ftvs.config=media:/ftvs/install.conf",
		`ftvs.config="http://h:1/a b"`,
		"ftvs.config=%zz",
		"ftvs.config==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		src, ok, err := FromCmdline(s)
		if err != nil || !ok {
			return
		}
		switch src.Kind {
		case Network:
			if src.URL == nil || src.URL.Host == "" {
				t.Fatalf("network source without host from %q", s)
			}
		case Local, Media:
			if !strings.HasPrefix(src.Path, "/") {
				t.Fatalf("relative path %q from %q", src.Path, s)
			}
		default:
			t.Fatalf("kind %v from %q", src.Kind, s)
		}
	})
}

func TestLoadLocalAndEmbedded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "install.conf")
	if err := os.WriteFile(p, []byte("mode: unattended\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := Load(context.Background(), Source{Kind: Local, Path: p}, "", io.Discard)
	if err != nil || string(b) != "mode: unattended\n" {
		t.Fatalf("Load local = %q, %v", b, err)
	}
	b, err = Load(context.Background(), Source{Kind: Embedded}, p, io.Discard)
	if err != nil || len(b) == 0 {
		t.Fatalf("Load embedded = %q, %v", b, err)
	}
	if _, err := Load(context.Background(), Source{Kind: Local, Path: filepath.Join(dir, "missing")}, "", io.Discard); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: err = %v", err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, make([]byte, MaxConfigSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(context.Background(), Source{Kind: Local, Path: big}, "", io.Discard); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized config: err = %v", err)
	}
	if os.Getuid() != 0 {
		unreadable := filepath.Join(dir, "unreadable")
		os.WriteFile(unreadable, []byte("x"), 0o000)
		if _, err := Load(context.Background(), Source{Kind: Local, Path: unreadable}, "", io.Discard); err == nil {
			t.Error("unreadable config loaded")
		}
	}
}

func TestDigest(t *testing.T) {
	if got := Digest([]byte("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("Digest(abc) = %s", got)
	}
}

package yamlconf

import (
	"errors"
	"strings"
	"testing"
)

type sample struct {
	Name  string `yaml:"name"`
	Port  int    `yaml:"port"`
	Links []struct {
		Iface string `yaml:"interface"`
	} `yaml:"links"`
}

func TestLoadAndLines(t *testing.T) {
	src := "name: vs\nport: 80\nlinks:\n  - interface: eth1\n  - interface: eth2\n"
	var s sample
	d, err := Load("c.yaml", []byte(src), &s)
	if err != nil {
		t.Fatal(err)
	}
	if s.Port != 80 || len(s.Links) != 2 || s.Links[1].Iface != "eth2" {
		t.Fatalf("decoded %+v", s)
	}
	if got := d.Line("links[1].interface"); got != 5 {
		t.Fatalf("line of links[1].interface = %d, want 5", got)
	}
	if d.Has("missing") || d.Line("links[7]") != 0 {
		t.Fatal("absent field found")
	}
	msg := d.Errorf("port", "must be below %d", 10).Error()
	if msg != "c.yaml:2: field port: must be below 10" {
		t.Fatalf("got %q", msg)
	}
}

func TestErrorsNameLine(t *testing.T) {
	cases := map[string]struct{ src, want string }{
		"unknown field": {"name: a\nprot: 80\n", "c.yaml:2: field prot is not a known field"},
		"wrong type":    {"name: a\nport: eighty\n", "c.yaml:2: cannot unmarshal"},
		"syntax":        {"name: [a\n", "c.yaml:"},
		"empty":         {"  \n", "c.yaml: file is empty"},
		"two documents": {"name: a\n---\nname: b\n", "more than one YAML document"},
	}
	for name, c := range cases {
		var s sample
		_, err := Load("c.yaml", []byte(c.src), &s)
		var ce *Error
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, c.want)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("name: vs\nport: 80\nlinks:\n  - interface: eth1\n"))
	f.Add([]byte("port: [1, 2]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sample
		d, err := Load("f.yaml", b, &s)
		if err == nil {
			_ = d.Line("links[0].interface")
		}
	})
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func example(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "coserver", "node1.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestExampleLoads(t *testing.T) {
	c, err := Parse("node1.yaml", []byte(example(t)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Node != 1 || len(c.Links) != 2 || c.Links[1].Interface != "cs1b" || len(c.Key()) != 32 {
		t.Fatalf("decoded %+v", c)
	}
	if c.Timeouts.Heartbeat != 20*time.Millisecond || c.Timeouts.SplitBrain != defaultTimeouts.SplitBrain {
		t.Fatalf("timeouts %+v", c.Timeouts)
	}
	if c.VS.Services.HTTP.Port != 80 || c.Redirected.Port != "afpacket" {
		t.Fatalf("vs %+v", c.VS)
	}
}

func TestBadConfigsNameLineAndField(t *testing.T) {
	good := example(t)
	cases := []struct{ name, from, to, want string }{
		{"node", "node: 1", "node: 3", "node1.yaml:3: field node: is 3"},
		{"unknown field", "state_dir:", "statedir:", "node1.yaml:29: field statedir is not a known field"},
		{"wrong type", "node: 1", "node: one", "node1.yaml:3: cannot unmarshal"},
		{"short key", "pair_key: 5f1c", "pair_key: 5f1c\n#", "node1.yaml:4: field pair_key: is 2 bytes"},
		{"two roles", "interface: prod1", "interface: cs1a", "node1.yaml:13: field redirected.interface: interface cs1a already has a role"},
		{"bad mac", "mac: 02:f7:00:00:00:01", "mac: 01:f7:00:00:00:01", "node1.yaml:19: field vs.mac: 01:f7:00:00:00:01 is a multicast"},
		{"gateway outside", "gateway: 10.97.0.1", "gateway: 10.96.0.1", "node1.yaml:21: field vs.gateway: 10.96.0.1 is not inside 10.97.0.0/24"},
		{"bad peer", "peer: 10.99.2.2:7700", "peer: 10.99.2.2", "node1.yaml:11: field links[1].peer"},
		{"heartbeats", "peer_dead: 120ms", "peer_dead: 30ms", "field timeouts.peer_dead: is 30ms"},
		{"bad port", "port: afpacket", "port: pcap", "field redirected.port"},
		{"no content", "content: .", "content: /nonexistent/dir", "field vs.content"},
	}
	for _, c := range cases {
		src := strings.Replace(good, c.from, c.to, 1)
		if src == good {
			t.Fatalf("%s: replacement %q not found", c.name, c.from)
		}
		_, err := Parse("node1.yaml", []byte(src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v\n want it to contain %q", c.name, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("node: 1\n"))
	f.Add([]byte("links: [{interface: a, local: '1.2.3.4:5', peer: '1.2.3.5:5'}]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = Parse("fuzz.yaml", b)
	})
}

package alert

import (
	"strings"
	"testing"

	"github.com/ftvs/ftvs/internal/yamlconf"
)

type file struct {
	Alerts Config `yaml:"alerts"`
}

func load(t testing.TB, src string) ([]Channel, error) {
	var f file
	d, err := yamlconf.Load("c.yaml", []byte(src), &f)
	if err != nil {
		return nil, err
	}
	_, ch, err := f.Alerts.Build(d, "alerts", "cs1")
	return ch, err
}

func TestConfigBuildsEveryChannel(t *testing.T) {
	src := `alerts:
  rate_limit: {per_kind: 5, window: 30s}
  snmp:
    - {target: "127.0.0.1:162", version: "2c", community: public}
    - target: "127.0.0.1:162"
      version: "3"
      user: ftvs
      auth: {protocol: SHA256, passphrase: "auth-pass-1"}
      priv: {protocol: AES, passphrase: "priv-pass-1"}
  email:
    - {server: "127.0.0.1:587", from: "a@b.c", to: ["ops@b.c"]}
  webhooks:
    - {url: "http://127.0.0.1:9/x", headers: {Authorization: "Bearer t"}}
  syslog:
    - {network: tcp, address: "127.0.0.1:514", facility: local3}
`
	ch, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ch) != 5 {
		t.Fatalf("%d channels", len(ch))
	}
	if s := ch[4].(*Syslog); s.Facility != 19 || s.Hostname != "cs1" {
		t.Fatalf("syslog %+v", s)
	}
	if s := ch[1].(*SNMP); string(s.EngineID) != string(DefaultEngineID("cs1")) {
		t.Fatalf("engine id %x", s.EngineID)
	}
}

func TestConfigErrorsNameLineAndField(t *testing.T) {
	cases := []struct{ src, want string }{
		{"alerts:\n  snmp:\n    - {target: nope, version: \"2c\", community: x}\n", "c.yaml:3: field alerts.snmp[0].target"},
		{"alerts:\n  snmp:\n    - target: \"h:1\"\n      version: \"1\"\n", "c.yaml:4: field alerts.snmp[0].version"},
		{"alerts:\n  snmp:\n    - target: \"h:1\"\n      version: \"3\"\n      user: u\n      auth: {protocol: SHA, passphrase: short}\n", "field alerts.snmp[0].auth.passphrase: is shorter"},
		{"alerts:\n  snmp:\n    - {target: \"h:1\", version: \"3\", user: u, auth: {protocol: XX, passphrase: longenough}}\n", "alerts.snmp[0].auth"},
		{"alerts:\n  email:\n    - server: \"h:25\"\n      from: a@b\n      to: [nobody]\n", "c.yaml:5: field alerts.email[0].to[0]"},
		{"alerts:\n  webhooks:\n    - url: ftp://x\n", "c.yaml:3: field alerts.webhooks[0].url"},
		{"alerts:\n  syslog:\n    - {network: udp, address: \"h:514\", facility: nope}\n", "alerts.syslog[0].facility"},
		{"alerts:\n  queue: -1\n", "c.yaml:2: field alerts.queue: is negative"},
		{"alerts:\n  sms: []\n", "c.yaml:2: field sms is not a known field"},
		{"alerts:\n  email:\n    - {server: \"h:25\", from: a@b, to: [c@d], password: x, password_file: /f}\n", "alerts.email[0].password_file: given together"},
		{"alerts:\n  email:\n    - {server: \"h:25\", from: a@b, to: [c@d], password_file: /nonexistent/x}\n", "alerts.email[0].password_file"},
	}
	for _, c := range cases {
		_, err := load(t, c.src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.src, err, c.want)
		}
	}
}

func FuzzConfig(f *testing.F) {
	f.Add("alerts:\n  snmp:\n    - {target: \"h:1\", version: \"3\", user: u}\n")
	f.Add("alerts:\n  syslog:\n    - {network: udp, address: \"h:514\"}\n  queue: 3\n")
	f.Fuzz(func(t *testing.T, src string) {
		if strings.Contains(src, "_file") || strings.Contains(src, "ca_file") {
			return // the fuzzer must not read arbitrary files
		}
		_, _ = load(t, src)
	})
}

package alert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/ftvs/ftvs/internal/yamlconf"
)

// Config is the `alerts:` section of the CoServer config. Secrets may be
// given inline or, better, as a file (the *_file fields).
//
//	alerts:
//	  rate_limit: {per_kind: 10, window: 1m}
//	  queue: 256
//	  retry: {attempts: 6, initial: 1s, max: 1m}
//	  snmp:
//	    - {target: "10.0.9.5:162", version: "2c", community: public}
//	    - target: "10.0.9.5:162"
//	      version: "3"
//	      user: ftvs
//	      auth: {protocol: SHA256, passphrase_file: /etc/ftvs/snmp-auth}
//	      priv: {protocol: AES, passphrase_file: /etc/ftvs/snmp-priv}
//	      engine_id: "80007ed90463733031"   # optional, hex
//	  email:
//	    - server: "mail.example.org:587"
//	      from: "ftvs@cs1.example.org"
//	      to: ["ops@example.org"]
//	      username: ftvs
//	      password_file: /etc/ftvs/smtp-pass
//	      ca_file: /etc/ftvs/mail-ca.pem   # optional; default: system roots
//	  webhooks:
//	    - url: "https://hooks.example.org/ftvs"
//	      headers: {Authorization: "Bearer ..."}
//	      ca_file: ""
//	  syslog:
//	    - {network: udp, address: "10.0.9.6:514", facility: daemon}
type Config struct {
	RateLimit struct {
		PerKind int           `yaml:"per_kind"`
		Window  time.Duration `yaml:"window"`
	} `yaml:"rate_limit"`
	Queue int `yaml:"queue"`
	Retry struct {
		Attempts int           `yaml:"attempts"`
		Initial  time.Duration `yaml:"initial"`
		Max      time.Duration `yaml:"max"`
	} `yaml:"retry"`
	SNMP     []SNMPConfig    `yaml:"snmp"`
	Email    []EmailConfig   `yaml:"email"`
	Webhooks []WebhookConfig `yaml:"webhooks"`
	Syslog   []SyslogConfig  `yaml:"syslog"`
}

// SNMPConfig is one trap receiver.
type SNMPConfig struct {
	Target        string `yaml:"target"`
	Version       string `yaml:"version"`
	Community     string `yaml:"community"`
	CommunityFile string `yaml:"community_file"`
	User          string `yaml:"user"`
	Auth          struct {
		Protocol       string `yaml:"protocol"`
		Passphrase     string `yaml:"passphrase"`
		PassphraseFile string `yaml:"passphrase_file"`
	} `yaml:"auth"`
	Priv struct {
		Protocol       string `yaml:"protocol"`
		Passphrase     string `yaml:"passphrase"`
		PassphraseFile string `yaml:"passphrase_file"`
	} `yaml:"priv"`
	EngineID string `yaml:"engine_id"`
	BaseOID  string `yaml:"base_oid"`
}

// EmailConfig is one mail route.
type EmailConfig struct {
	Server       string   `yaml:"server"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	CAFile       string   `yaml:"ca_file"`
}

// WebhookConfig is one JSON endpoint.
type WebhookConfig struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	CAFile  string            `yaml:"ca_file"`
}

// SyslogConfig is one syslog collector.
type SyslogConfig struct {
	Network  string `yaml:"network"`
	Address  string `yaml:"address"`
	Facility string `yaml:"facility"`
}

var facilities = map[string]int{"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23}

// Build checks the section (prefix is its path in the file, e.g. "alerts")
// and returns the dispatcher options and channels. host names this CoServer
// in the alerts. Errors name the line and the field.
func (c *Config) Build(d *yamlconf.Doc, prefix, host string) (Options, []Channel, error) {
	f := func(s string, a ...any) string { return prefix + "." + fmt.Sprintf(s, a...) }
	opt := Options{Queue: c.Queue, PerKind: c.RateLimit.PerKind, Window: c.RateLimit.Window,
		Attempts: c.Retry.Attempts, RetryInitial: c.Retry.Initial, RetryMax: c.Retry.Max}
	for _, n := range []struct {
		field string
		v     int64
	}{{"queue", int64(c.Queue)}, {"rate_limit.per_kind", int64(c.RateLimit.PerKind)}, {"rate_limit.window", int64(c.RateLimit.Window)},
		{"retry.attempts", int64(c.Retry.Attempts)}, {"retry.initial", int64(c.Retry.Initial)}, {"retry.max", int64(c.Retry.Max)}} {
		if n.v < 0 {
			return opt, nil, d.Errorf(f("%s", n.field), "is negative")
		}
	}
	if c.Queue > 1<<16 {
		return opt, nil, d.Errorf(f("queue"), "is %d; at most 65536", c.Queue)
	}
	var chans []Channel
	for i, s := range c.SNMP {
		p := f("snmp[%d]", i)
		if _, _, err := net.SplitHostPort(s.Target); err != nil {
			return opt, nil, d.Errorf(p+".target", "%q is not host:port", s.Target)
		}
		ch := &SNMP{Target: s.Target, Version: s.Version, Base: s.BaseOID}
		switch s.Version {
		case "2c":
			v, err := secret(d, p+".community", s.Community, s.CommunityFile)
			if err != nil {
				return opt, nil, err
			}
			if v == "" {
				return opt, nil, d.Errorf(p+".community", "is missing (or give community_file)")
			}
			ch.Community = v
		case "3":
			if s.User == "" {
				return opt, nil, d.Errorf(p+".user", "is missing (SNMPv3 needs a USM user)")
			}
			ch.User, ch.AuthProto, ch.PrivProto = s.User, s.Auth.Protocol, s.Priv.Protocol
			var err error
			if ch.AuthPass, err = secret(d, p+".auth.passphrase", s.Auth.Passphrase, s.Auth.PassphraseFile); err != nil {
				return opt, nil, err
			}
			if ch.PrivPass, err = secret(d, p+".priv.passphrase", s.Priv.Passphrase, s.Priv.PassphraseFile); err != nil {
				return opt, nil, err
			}
			if ch.AuthProto != "" && len(ch.AuthPass) < 8 {
				return opt, nil, d.Errorf(p+".auth.passphrase", "is shorter than 8 characters (USM refuses it)")
			}
			if ch.PrivProto != "" && len(ch.PrivPass) < 8 {
				return opt, nil, d.Errorf(p+".priv.passphrase", "is shorter than 8 characters (USM refuses it)")
			}
			if _, _, err := ch.usm(); err != nil {
				return opt, nil, d.Errorf(p+".auth", "%v", err)
			}
			ch.EngineID = DefaultEngineID(host)
			if s.EngineID != "" {
				id, err := hex.DecodeString(strings.TrimPrefix(s.EngineID, "0x"))
				if err != nil || len(id) < 5 || len(id) > 32 {
					return opt, nil, d.Errorf(p+".engine_id", "%q is not 5 to 32 bytes of hex", s.EngineID)
				}
				ch.EngineID = id
			}
		default:
			return opt, nil, d.Errorf(p+".version", "is %q; must be \"2c\" or \"3\"", s.Version)
		}
		chans = append(chans, ch)
	}
	for i, e := range c.Email {
		p := f("email[%d]", i)
		if _, _, err := net.SplitHostPort(e.Server); err != nil {
			return opt, nil, d.Errorf(p+".server", "%q is not host:port", e.Server)
		}
		if !strings.Contains(e.From, "@") {
			return opt, nil, d.Errorf(p+".from", "%q is not a mail address", e.From)
		}
		if len(e.To) == 0 {
			return opt, nil, d.Errorf(p+".to", "names no recipient")
		}
		for j, to := range e.To {
			if !strings.Contains(to, "@") {
				return opt, nil, d.Errorf(fmt.Sprintf("%s.to[%d]", p, j), "%q is not a mail address", to)
			}
		}
		pw, err := secret(d, p+".password", e.Password, e.PasswordFile)
		if err != nil {
			return opt, nil, err
		}
		tc, err := tlsFromCA(d, p+".ca_file", e.CAFile)
		if err != nil {
			return opt, nil, err
		}
		chans = append(chans, &Email{Server: e.Server, From: e.From, To: e.To, Username: e.Username, Password: pw, TLS: tc, HelloAs: host})
	}
	for i, w := range c.Webhooks {
		p := f("webhooks[%d]", i)
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return opt, nil, d.Errorf(p+".url", "%q is not an http(s) URL", w.URL)
		}
		tc, err := tlsFromCA(d, p+".ca_file", w.CAFile)
		if err != nil {
			return opt, nil, err
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil}}
		chans = append(chans, &Webhook{URL: w.URL, Header: w.Headers, Client: client})
	}
	for i, s := range c.Syslog {
		p := f("syslog[%d]", i)
		if s.Network != "udp" && s.Network != "tcp" {
			return opt, nil, d.Errorf(p+".network", "is %q; must be udp or tcp", s.Network)
		}
		if _, _, err := net.SplitHostPort(s.Address); err != nil {
			return opt, nil, d.Errorf(p+".address", "%q is not host:port", s.Address)
		}
		fac := 3
		if s.Facility != "" {
			v, ok := facilities[s.Facility]
			if !ok {
				return opt, nil, d.Errorf(p+".facility", "%q is not a facility (daemon, local0..local7, ...)", s.Facility)
			}
			fac = v
		}
		chans = append(chans, &Syslog{Network: s.Network, Addr: s.Address, Facility: fac, Hostname: host})
	}
	return opt, chans, nil
}

func secret(d *yamlconf.Doc, field, inline, file string) (string, error) {
	if inline != "" && file != "" {
		return "", d.Errorf(field+"_file", "given together with %s; use one", field[strings.LastIndex(field, ".")+1:])
	}
	if file == "" {
		return inline, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", d.Errorf(field+"_file", "%v", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func tlsFromCA(d *yamlconf.Doc, field, file string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if file == "" {
		return tc, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, d.Errorf(field, "%v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, d.Errorf(field, "%s holds no PEM certificate", file)
	}
	tc.RootCAs = pool
	return tc, nil
}

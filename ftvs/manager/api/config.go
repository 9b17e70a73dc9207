package api

import (
	"net"
	"time"

	"github.com/ftvs/ftvs/internal/yamlconf"
)

// Config is the `manager:` section of the CoServer config.
//
//	manager:
//	  listen: "10.0.8.1:8443"        # the management address; never 0.0.0.0
//	  state_dir: /var/lib/ftvs/manager
//	  token_file: ""                 # default: state_dir/api-token, generated
//	  tls:
//	    cert: ""                     # default: self-signed in state_dir
//	    key: ""
//	    client_ca: /etc/ftvs/operators-ca.pem   # optional: mTLS
//	  metrics: true                  # serve /metrics (behind the same auth)
//	  poll: 1s                       # how often the state model asks the daemon
//	  events: 200                    # recent events kept
type Config struct {
	Listen    string `yaml:"listen"`
	StateDir  string `yaml:"state_dir"`
	TokenFile string `yaml:"token_file"`
	TLS       struct {
		Cert     string `yaml:"cert"`
		Key      string `yaml:"key"`
		ClientCA string `yaml:"client_ca"`
	} `yaml:"tls"`
	Metrics *bool         `yaml:"metrics"`
	Poll    time.Duration `yaml:"poll"`
	Events  int           `yaml:"events"`
}

// DefaultStateDir is where the certificate and token are generated.
const DefaultStateDir = "/var/lib/ftvs/manager"

// Check validates the section (prefix: its path, e.g. "manager") and fills
// defaults. The listen address must be a specific address: the API belongs
// on the management network only, never on every interface.
func (c *Config) Check(d *yamlconf.Doc, prefix string) error {
	p := prefix + "."
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return d.Errorf(p+"listen", "%q is not host:port", c.Listen)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return d.Errorf(p+"listen", "%q listens on every interface; give the management address only", c.Listen)
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		return d.Errorf(p+"tls", "give both cert and key, or neither (self-signed)")
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.Poll < 0 || (c.Poll > 0 && c.Poll < 50*time.Millisecond) {
		return d.Errorf(p+"poll", "is %s; must be at least 50ms", c.Poll)
	}
	if c.Poll == 0 {
		c.Poll = time.Second
	}
	if c.Events < 0 || c.Events > 100000 {
		return d.Errorf(p+"events", "is %d; must be within 1..100000", c.Events)
	}
	if c.Metrics == nil {
		on := true
		c.Metrics = &on
	}
	return nil
}

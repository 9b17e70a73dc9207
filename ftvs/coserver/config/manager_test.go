package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// The manager and alert sections are optional, checked when present, and
// their errors name the line and the field like the rest of the file.
func TestManagerSections(t *testing.T) {
	base := example(t)
	c, err := Parse("node1.yaml", []byte(base))
	if err != nil || c.Manager.Listen != "" {
		t.Fatalf("no manager section: %v %+v", err, c)
	}
	c, err = Parse("node1.yaml", []byte(base+"manager: {listen: \"10.98.0.1:7444\"}\nalerts: {webhooks: [{url: \"http://10.98.0.9/hook\"}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Manager.StateDir != filepath.Join(c.StateDir, "manager") || len(c.Alerts.Webhooks) != 1 {
		t.Fatalf("manager %+v alerts %+v", c.Manager, c.Alerts)
	}
	for _, bad := range []struct{ src, want string }{
		{"manager: {listen: \"0.0.0.0:7444\"}\n", "manager.listen"},
		{"manager: {listen: \"10.98.0.1:7444\", poll: 1ms}\n", "manager.poll"},
		{"manager: {listen: \"10.98.0.1:7444\"}\nalerts: {webhooks: [{url: \"ftp://x\"}]}\n", "alerts.webhooks"},
	} {
		_, err := Parse("node1.yaml", []byte(base+bad.src))
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "node1.yaml:") {
			t.Errorf("%q: err = %v, want it to name node1.yaml's line and %s", bad.src, err, bad.want)
		}
	}
}

package alert

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SDID is the structured-data ID of the alert element. 32473 is the private
// enterprise number RFC 5612 reserves for documentation; a site with its own
// number can set Syslog.SDID.
const SDID = "ftvs@32473"

// Syslog sends RFC 5424 messages over UDP (one per datagram) or TCP
// (octet-counting framing, RFC 6587), with the alert in structured data.
type Syslog struct {
	Network  string // udp or tcp
	Addr     string // host:port
	Facility int    // 0..23; default 3 (daemon)
	Hostname string // default os.Hostname() at the daemon's choice; "-" if empty
	AppName  string // default "ftvs"
	SDID     string // default SDID

	mu   sync.Mutex
	conn net.Conn
}

// Name implements Channel.
func (s *Syslog) Name() string { return "syslog " + s.Network + "://" + s.Addr }

// Send implements Channel.
func (s *Syslog) Send(ctx context.Context, a Alert) error {
	msg := s.Format(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, s.Network, s.Addr)
		if err != nil {
			return fmt.Errorf("syslog %s: %w", s.Addr, err)
		}
		s.conn = c
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.conn.SetWriteDeadline(dl)
	} else {
		_ = s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	frame := msg
	if s.Network == "tcp" || strings.HasPrefix(s.Network, "tcp") {
		frame = strconv.Itoa(len(msg)) + " " + msg
	}
	if _, err := s.conn.Write([]byte(frame)); err != nil {
		s.conn.Close()
		s.conn = nil // redial on the retry
		return fmt.Errorf("syslog %s: %w", s.Addr, err)
	}
	return nil
}

// Close drops the connection.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// Format renders an alert as one RFC 5424 message (without framing).
func (s *Syslog) Format(a Alert) string {
	fac := s.Facility
	if fac <= 0 || fac > 23 {
		fac = 3
	}
	sev := map[Severity]int{Critical: 2, Warning: 4, Info: 6}[a.Severity]
	if sev == 0 {
		sev = 5
	}
	app, sdid, host := s.AppName, s.SDID, s.Hostname
	if app == "" {
		app = "ftvs"
	}
	if sdid == "" {
		sdid = SDID
	}
	if host == "" {
		host = a.Host
	}
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s %s - %s [%s", fac*8+sev, a.Time.UTC().Format("2006-01-02T15:04:05.000000Z"),
		header(host, 255), header(app, 48), header(string(a.Kind), 32), sdid)
	param := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, ` %s="%s"`, k, sdEscape(v))
		}
	}
	param("kind", string(a.Kind))
	param("severity", string(a.Severity))
	if a.Node != 0 {
		param("node", strconv.Itoa(a.Node))
	}
	param("component", a.Component)
	b.WriteString("] ")
	b.WriteString(noControls(a.Summary()))
	return b.String()
}

// noControls keeps one message on one line: receivers split on newlines
// even where RFC 5424 would allow them.
func noControls(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// header makes a header field legal: PRINTUSASCII, bounded, "-" when empty.
func header(s string, max int) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(out) < max; i++ {
		if c := s[i]; c > 32 && c < 127 {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return "-"
	}
	return string(out)
}

// sdEscape escapes '"', '\' and ']' in a PARAM-VALUE (RFC 5424 6.3.3).
func sdEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `]`, `\]`).Replace(noControls(v))
}

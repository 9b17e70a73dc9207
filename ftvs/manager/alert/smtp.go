package alert

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"time"
)

// Email sends each alert as a plain-text mail. STARTTLS is required: a
// server that does not offer it is refused (alerts say what is broken and
// where; they do not cross a network in clear).
type Email struct {
	Server   string // host:port (submission, usually 587)
	From     string
	To       []string
	Username string // empty: no AUTH
	Password string
	TLS      *tls.Config // ServerName defaults to the server's host
	HelloAs  string      // EHLO name; default "localhost"
}

// Name implements Channel.
func (e *Email) Name() string { return "email " + e.Server }

// Send implements Channel.
func (e *Email) Send(ctx context.Context, a Alert) error {
	host, _, err := net.SplitHostPort(e.Server)
	if err != nil {
		return Permanent(fmt.Errorf("email: server %q: %w", e.Server, err))
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", e.Server)
	if err != nil {
		return fmt.Errorf("email %s: %w", e.Server, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("email %s: %w", e.Server, err)
	}
	defer c.Close()
	hello := e.HelloAs
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return fmt.Errorf("email %s: EHLO: %w", e.Server, err)
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		return Permanent(fmt.Errorf("email %s: server does not offer STARTTLS", e.Server))
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if e.TLS != nil {
		cfg = e.TLS.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if err := c.StartTLS(cfg); err != nil {
		return fmt.Errorf("email %s: STARTTLS: %w", e.Server, err)
	}
	if e.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", e.Username, e.Password, host)); err != nil {
			return Permanent(fmt.Errorf("email %s: AUTH: %w", e.Server, err))
		}
	}
	if err := c.Mail(e.From); err != nil {
		return Permanent(fmt.Errorf("email %s: MAIL FROM %s: %w", e.Server, e.From, err))
	}
	for _, to := range e.To {
		if err := c.Rcpt(to); err != nil {
			return Permanent(fmt.Errorf("email %s: RCPT TO %s: %w", e.Server, to, err))
		}
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("email %s: DATA: %w", e.Server, err)
	}
	if _, err := w.Write(e.message(a)); err != nil {
		return fmt.Errorf("email %s: DATA: %w", e.Server, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("email %s: end of DATA: %w", e.Server, err)
	}
	return c.Quit()
}

func (e *Email) message(a Alert) []byte {
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	clean := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", clean(e.From), clean(strings.Join(e.To, ", ")))
	fmt.Fprintf(&b, "Subject: %s\r\n", clean(fmt.Sprintf("[ftvs] %s %s %s", strings.ToUpper(string(a.Severity)), a.Kind, a.Component)))
	fmt.Fprintf(&b, "Date: %s\r\nMessage-ID: <%s.ftvs@%s>\r\n", a.Time.Format(time.RFC1123Z), hex.EncodeToString(id), clean(header(a.Host, 64)))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
	fmt.Fprintf(&b, "X-FTVS-Kind: %s\r\n\r\n", a.Kind)
	fmt.Fprintf(&b, "%s\r\n\r\nkind:      %s\r\nseverity:  %s\r\ntime:      %s\r\nhost:      %s\r\n",
		clean(a.Summary()), a.Kind, a.Severity, a.Time.Format(time.RFC3339Nano), clean(a.Host))
	if a.Node != 0 {
		fmt.Fprintf(&b, "node:      %d\r\n", a.Node)
	}
	fmt.Fprintf(&b, "component: %s\r\ndetail:    %s\r\n", clean(a.Component), clean(a.Detail))
	return []byte(b.String())
}

package alert

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// sendAll delivers one alert of every kind through ch via a Dispatcher.
func sendAll(t *testing.T, ch Channel) *Dispatcher {
	t.Helper()
	d := NewDispatcher(Options{RetryInitial: 50 * time.Millisecond, Attempts: 8}, ch)
	ctx, cancel := context.WithCancel(context.Background())
	d.Start(ctx)
	t.Cleanup(func() { cancel(); d.Wait() })
	for i, k := range Kinds() {
		a := New(k, i%2+1, "comp-"+string(k), "detail of "+string(k)+` with "quotes" and ]`)
		a.Host = "cs1"
		if !d.Notify(a) {
			t.Fatalf("%s rate-limited", k)
		}
	}
	waitFor(t, func() bool {
		st := d.Stats().Channels[0]
		return st.Sent+st.Failed == uint64(len(Kinds()))
	})
	if st := d.Stats().Channels[0]; st.Failed != 0 {
		t.Fatalf("%s: %d alerts failed", ch.Name(), st.Failed)
	}
	return d
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startProcess runs a receiver until the test ends.
func startProcess(t *testing.T, out string, name string, args ...string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		f.Close()
	})
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func TestSNMPTrapsToSnmptrapd(t *testing.T) {
	bin, err := exec.LookPath("snmptrapd")
	if err != nil {
		bin = "/usr/sbin/snmptrapd"
		if _, err := os.Stat(bin); err != nil {
			t.Skip("snmptrapd not installed (Debian package snmptrapd)")
		}
	}
	dir := t.TempDir()
	engine := DefaultEngineID("ftvs-test")
	conf := filepath.Join(dir, "snmptrapd.conf")
	cfg := fmt.Sprintf("authCommunity log ftvs-v2c\ncreateUser -e %s ftvsuser SHA256 auth-pass-123 AES priv-pass-456\nauthUser log ftvsuser priv\n", EngineIDHex(engine))
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t, "udp")
	logf := filepath.Join(dir, "traps.log")
	t.Setenv("SNMP_PERSISTENT_DIR", dir)
	startProcess(t, filepath.Join(dir, "stdout"), bin, "-f", "-C", "-c", conf, "-m", "", "-M", dir, "-On",
		"-Lf", logf, "-F", "TRAP %P|%V\x1f%v\n", fmt.Sprintf("udp:127.0.0.1:%d", port))
	waitFor(t, func() bool { return strings.Contains(readFile(t, logf), "NET-SNMP version") })

	target := fmt.Sprintf("127.0.0.1:%d", port)
	sendAll(t, &SNMP{Target: target, Version: "2c", Community: "ftvs-v2c"})
	sendAll(t, &SNMP{Target: target, Version: "3", User: "ftvsuser", AuthProto: "SHA256", AuthPass: "auth-pass-123",
		PrivProto: "AES", PrivPass: "priv-pass-456", EngineID: engine})
	// A wrong community is not logged: proves snmptrapd checks it.
	sendAll(t, &SNMP{Target: target, Version: "2c", Community: "wrong"})

	var lines []string
	waitFor(t, func() bool {
		lines = nil
		for _, l := range strings.Split(readFile(t, logf), "\n") {
			if strings.HasPrefix(l, "TRAP ") {
				lines = append(lines, l)
			}
		}
		return len(lines) >= 2*len(Kinds())
	})
	time.Sleep(200 * time.Millisecond)
	log := readFile(t, logf)
	if strings.Contains(log, "wrong") {
		t.Fatalf("a trap with the wrong community was accepted:\n%s", log)
	}
	for _, k := range Kinds() {
		oid := TrapOID(MIBBase, k)
		var v2, v3 bool
		for _, l := range strings.Split(log, "\n") {
			if !strings.Contains(l, "= OID: ."+oid+"\x1f") {
				continue
			}
			if !strings.Contains(l, `detail of `+string(k)) {
				t.Errorf("trap %s lacks its detail varbind: %q", k, l)
			}
			v2 = v2 || strings.Contains(l, "SNMP v2c, community ftvs-v2c|")
			v3 = v3 || strings.Contains(l, "SNMP v3, user ftvsuser,")
		}
		if !v2 || !v3 {
			t.Errorf("kind %s (%s): v2c seen %v, v3 seen %v", k, oid, v2, v3)
		}
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// aiosmtpd is Debian's python3-aiosmtpd: a real RFC 5321 server which, given
// a certificate, refuses MAIL before STARTTLS.
func startAiosmtpd(t *testing.T, dir string, tlsArgs ...string) (addr, out string) {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import aiosmtpd").Run(); err != nil {
		t.Skip("python3-aiosmtpd not installed")
	}
	port := freePort(t, "tcp")
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	out = filepath.Join(dir, "smtp.out")
	startProcess(t, out, py, append([]string{"-u", "-m", "aiosmtpd", "-n", "-l", addr}, tlsArgs...)...)
	waitFor(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return addr, out
}

func TestEmailWithSTARTTLSToAiosmtpd(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	addr, out := startAiosmtpd(t, dir, "--tlscert", cert, "--tlskey", key)
	sendAll(t, &Email{Server: addr, From: "ftvs@cs1.example", To: []string{"ops@example.org"},
		TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	var got string
	waitFor(t, func() bool {
		got = readFile(t, out)
		return strings.Count(got, "MESSAGE FOLLOWS") >= len(Kinds())
	})
	for _, k := range Kinds() {
		if !strings.Contains(got, "X-FTVS-Kind: "+string(k)) || !strings.Contains(got, "detail:    detail of "+string(k)) {
			t.Errorf("mail for %s missing in:\n%s", k, got)
		}
	}
	// The server saw TLS: aiosmtpd adds the peer and refuses plain MAIL.
	if !strings.Contains(got, "Subject: [ftvs] CRITICAL coserver-lost") {
		t.Errorf("subject missing:\n%s", got)
	}
}

func TestEmailRefusesServerWithoutSTARTTLS(t *testing.T) {
	dir := t.TempDir()
	addr, _ := startAiosmtpd(t, dir)
	err := (&Email{Server: addr, From: "a@b", To: []string{"c@d"}}).Send(context.Background(), New(SplitBrain, 0, "", ""))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("err = %v, want a STARTTLS refusal", err)
	}
}

func TestEmailUntrustedCertificateFails(t *testing.T) {
	dir := t.TempDir()
	cert, key, _ := selfSigned(t, dir)
	addr, _ := startAiosmtpd(t, dir, "--tlscert", cert, "--tlskey", key)
	err := (&Email{Server: addr, From: "a@b", To: []string{"c@d"}}).Send(context.Background(), New(SplitBrain, 0, "", ""))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
}

func TestWebhookRetriesAndDeliversJSON(t *testing.T) {
	var mu sync.Mutex
	var received []Alert
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Authorization") != "Bearer hook" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if calls%3 == 1 { // every third call fails: the dispatcher must retry
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		var a Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		received = append(received, a)
	}))
	defer srv.Close()
	d := sendAll(t, &Webhook{URL: srv.URL, Header: map[string]string{"Authorization": "Bearer hook"}})
	mu.Lock()
	got := append([]Alert(nil), received...)
	mu.Unlock()
	if len(got) != len(Kinds()) {
		t.Fatalf("received %d alerts", len(got))
	}
	seen := map[Kind]bool{}
	for _, a := range got {
		seen[a.Kind] = true
		if a.Detail != "detail of "+string(a.Kind)+` with "quotes" and ]` || a.Severity != kinds[a.Kind].severity || a.Host != "cs1" {
			t.Errorf("alert %+v", a)
		}
	}
	if len(seen) != len(Kinds()) {
		t.Errorf("kinds %v", seen)
	}
	if d.Stats().Channels[0].Retries == 0 {
		t.Error("no retry counted after 503 answers")
	}
	if err := (&Webhook{URL: srv.URL}).Send(context.Background(), New(LinkLost, 0, "", "")); err == nil {
		t.Error("400 answer taken as success")
	}
}

// rfc5424 matches a syslog message: PRI VERSION TIMESTAMP HOST APP PROCID MSGID SD MSG.
var rfc5424 = regexp.MustCompile(`^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)) ([!-~]{1,255}) ([!-~]{1,48}) ([!-~]{1,128}) ([!-~]{1,32}) (-|(?:\[[!#-<>-\\^-~]{1,32}(?: [!#-<>-\\^-~]{1,32}="(?:[^"\\\]]|\\.)*")*\])+)(?: (.*))?$`)
var sdParam = regexp.MustCompile(`([!#-<>-\\^-~]{1,32})="((?:[^"\\\]]|\\.)*)"`)

type syslogMsg struct {
	pri                       int
	host, app, msgid, sd, msg string
	params                    map[string]string
}

func parse5424(s string) (syslogMsg, error) {
	m := rfc5424.FindStringSubmatch(s)
	if m == nil {
		return syslogMsg{}, fmt.Errorf("not RFC 5424: %q", s)
	}
	pri, _ := strconv.Atoi(m[1])
	out := syslogMsg{pri: pri, host: m[3], app: m[4], msgid: m[6], sd: m[7], msg: m[8], params: map[string]string{}}
	for _, p := range sdParam.FindAllStringSubmatch(m[7], -1) {
		out.params[p[1]] = strings.NewReplacer(`\"`, `"`, `\\`, `\`, `\]`, `]`).Replace(p[2])
	}
	return out, nil
}

func TestSyslogUDPAndTCP(t *testing.T) {
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			msgs := make(chan string, 64)
			var addr string
			if network == "udp" {
				pc, err := net.ListenPacket("udp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { pc.Close() })
				addr = pc.LocalAddr().String()
				go func() {
					buf := make([]byte, 4096)
					for {
						n, _, err := pc.ReadFrom(buf)
						if err != nil {
							return
						}
						msgs <- string(buf[:n])
					}
				}()
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				addr = ln.Addr().String()
				go func() {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					r := bufio.NewReader(c)
					for {
						lenStr, err := r.ReadString(' ')
						if err != nil {
							return
						}
						n, err := strconv.Atoi(strings.TrimSpace(lenStr))
						if err != nil || n > 8192 {
							msgs <- "bad frame length " + lenStr
							return
						}
						b := make([]byte, n)
						if _, err := io.ReadFull(r, b); err != nil {
							return
						}
						msgs <- string(b)
					}
				}()
			}
			s := &Syslog{Network: network, Addr: addr, Facility: 3}
			defer s.Close()
			sendAll(t, s)
			for _, k := range Kinds() {
				var raw string
				select {
				case raw = <-msgs:
				case <-time.After(30 * time.Second):
					t.Fatalf("no message for %s", k)
				}
				m, err := parse5424(raw)
				if err != nil {
					t.Fatal(err)
				}
				sev := map[Severity]int{Critical: 2, Warning: 4, Info: 6}[kinds[k].severity]
				if m.pri != 3*8+sev || m.msgid != string(k) || m.params["kind"] != string(k) || m.host != "cs1" ||
					m.params["component"] != "comp-"+string(k) || !strings.Contains(m.msg, `with "quotes" and ]`) {
					t.Errorf("message for %s: %+v from %q", k, m, raw)
				}
			}
		})
	}
}

func FuzzSyslogFormat(f *testing.F) {
	f.Add("coserver-lost", "coserver2", "detail", "cs1", 2)
	f.Add("x y", `a"]\b`, "\n\x00", "", 0)
	f.Fuzz(func(t *testing.T, kind, comp, detail, host string, node int) {
		a := Alert{Kind: Kind(kind), Severity: Warning, Time: time.Unix(1, 0), Host: host, Node: node, Component: comp, Detail: detail}
		s := (&Syslog{}).Format(a)
		if strings.ContainsAny(s, "\r\n") {
			t.Fatalf("control character in %q", s)
		}
		m, err := parse5424(s)
		if err != nil {
			t.Fatal(err)
		}
		if want := noControls(comp); m.params["component"] != want {
			t.Fatalf("component %q came back as %q", want, m.params["component"])
		}
	})
}

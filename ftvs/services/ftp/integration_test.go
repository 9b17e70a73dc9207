package ftp_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ftvs/ftvs/ftvs/internal/netnstest"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/port"
	ftpsvc "github.com/ftvs/ftvs/ftvs/services/ftp"
	"github.com/ftvs/ftvs/ftvs/vsrun"
)

const vsIP = "10.78.0.1"

// startVS runs a solo VS with FTP over root in a namespace, in-process, and
// returns the client namespace.
func startVS(t *testing.T, root string) *netnstest.NS { return startVSRec(t, root, nil) }

// startVSRec is startVS with the session's inputs handed to record (made
// from the machine's configuration once the VS is open).
func startVSRec(t *testing.T, root string, record func(machine.Config) func(machine.Input) error) *netnstest.NS {
	t.Helper()
	env := netnstest.New(t, "fs5", "lftp", "curl")
	vs, cl := env.NS("vs"), env.NS("cl")
	env.Veth(vs, "v0", cl, "c0")
	cl.Addr("c0", "10.78.0.2/24")
	cfg := vsrun.SoloConfig{
		Iface: "v0", PortKind: port.AFPacket, MAC: [6]byte{2, 0xf5, 0, 0, 0, 1}, IP: [4]byte{10, 78, 0, 1},
		PrefixLen: 24, Root: root, ISNKey: [16]byte{'f', 's', '5'},
		FTP: &ftpsvc.Config{Anonymous: true, PasvMin: 30000, PasvMax: 30009,
			Users: []ftpsvc.User{{Name: "alice", PasswordSHA256: ftpsvc.HashPassword("s3cret"), Write: true}}},
		FTPWrite: true,
		Event:    func(seq uint64, text string) { t.Logf("vs event at input %d: %s", seq, text) },
	}
	var rec func(machine.Input) error
	if record != nil {
		cfg.Record = func(in machine.Input) error { return rec(in) }
	}
	var solo *vsrun.Solo
	if err := vs.Do(func() error {
		var err error
		solo, err = vsrun.Open(cfg)
		return err
	}); err != nil {
		t.Fatalf("open the VS: %v", err)
	}
	vs.WaitLinkUp("v0")
	cl.WaitLinkUp("c0")
	if record != nil {
		rec = record(solo.Machine.Config())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- solo.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("VS driver: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("VS driver did not stop")
		}
		c := solo.Machine.Counters().FTP
		t.Logf("ftp counters: %+v", c)
		solo.Close()
	})
	return cl
}

func writePattern(t *testing.T, path string, size int64, seed uint64) string {
	t.Helper()
	b := make([]byte, size)
	for i := 0; i+8 <= len(b); i += 8 {
		x := seed ^ uint64(i)
		x = (x ^ x>>31) * 0x9e3779b97f4a7c15
		binary.LittleEndian.PutUint64(b[i:], x^x>>29)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return sum(t, path)
}

func sum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

const lftpSet = "set net:max-retries 1; set net:timeout 20; set ftp:ssl-allow no; "

// TestRealClients: lftp and curl against the VS's FTP service over a veth
// pair: listing, downloads checked by sha256, REST resume both ways,
// uploads, mkdir/rename/delete, and refusals.
func TestRealClients(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	if err := os.MkdirAll(filepath.Join(root, "pub"), 0o755); err != nil {
		t.Fatal(err)
	}
	bigSum := writePattern(t, filepath.Join(root, "pub", "big.bin"), 48<<20+123, 1)
	cl := startVS(t, root)
	out := t.TempDir()
	url := "ftp://" + vsIP + "/"
	alice := "ftp://alice:s3cret@" + vsIP + "/"

	t.Run("curl list and download", func(t *testing.T) {
		list := cl.MustRun("curl", "-sS", "--fail", "--max-time", "60", url+"pub/")
		if !strings.Contains(list, "big.bin") || !strings.Contains(list, "50331771") {
			t.Fatalf("LIST: %q", list)
		}
		names := cl.MustRun("curl", "-sS", "--fail", "-l", "--max-time", "60", url+"pub/")
		if strings.TrimSpace(names) != "big.bin" {
			t.Fatalf("NLST: %q", names)
		}
		got := filepath.Join(out, "curl.bin")
		cl.MustRun("curl", "-sS", "--fail", "--max-time", "300", "-o", got, url+"pub/big.bin")
		if s := sum(t, got); s != bigSum {
			t.Fatalf("curl download sha256 %s, want %s", s, bigSum)
		}
		// Resume: keep the first 10 MiB + 7, let curl REST the rest.
		if err := os.Truncate(got, 10<<20+7); err != nil {
			t.Fatal(err)
		}
		cl.MustRun("curl", "-sS", "--fail", "--max-time", "300", "-C", "-", "-o", got, url+"pub/big.bin")
		if s := sum(t, got); s != bigSum {
			t.Fatalf("curl resumed download sha256 %s, want %s", s, bigSum)
		}
	})

	t.Run("lftp download with resume", func(t *testing.T) {
		got := filepath.Join(out, "lftp.bin")
		cl.MustRun("lftp", "-e", lftpSet+"cd pub; cls -l; get big.bin -o "+got+"; quit", url)
		if s := sum(t, got); s != bigSum {
			t.Fatalf("lftp download sha256 %s, want %s", s, bigSum)
		}
		if err := os.Truncate(got, 3<<20+1); err != nil {
			t.Fatal(err)
		}
		cl.MustRun("lftp", "-e", lftpSet+"get -c pub/big.bin -o "+got+"; quit", url)
		if s := sum(t, got); s != bigSum {
			t.Fatalf("lftp get -c sha256 %s, want %s", s, bigSum)
		}
		ls := cl.MustRun("lftp", "-e", lftpSet+"cls -1 --sort=name pub; quit", url)
		if strings.TrimSpace(ls) != "pub/big.bin" {
			t.Fatalf("lftp cls (MLSD): %q", ls)
		}
	})

	t.Run("uploads and changes", func(t *testing.T) {
		src := filepath.Join(out, "up.bin")
		upSum := writePattern(t, src, 20<<20+5, 2)
		cl.MustRun("curl", "-sS", "--fail", "--max-time", "300", "--ftp-create-dirs", "-T", src, alice+"incoming/up.bin")
		if s := sum(t, filepath.Join(root, "incoming", "up.bin")); s != upSum {
			t.Fatalf("curl upload sha256 %s, want %s", s, upSum)
		}
		// Resumed upload: cut the server copy, curl -C - sends the rest (SIZE + APPE).
		if err := os.Truncate(filepath.Join(root, "incoming", "up.bin"), 5<<20+3); err != nil {
			t.Fatal(err)
		}
		cl.MustRun("curl", "-sS", "--fail", "--max-time", "300", "-C", "-", "-T", src, alice+"incoming/up.bin")
		if s := sum(t, filepath.Join(root, "incoming", "up.bin")); s != upSum {
			t.Fatalf("curl resumed upload sha256 %s, want %s", s, upSum)
		}
		cl.MustRun("lftp", "-e", lftpSet+"put "+src+" -o lftp-up.bin; mkdir d1; mv lftp-up.bin d1/moved.bin; quit", alice)
		if s := sum(t, filepath.Join(root, "d1", "moved.bin")); s != upSum {
			t.Fatalf("lftp put+mv sha256 %s, want %s", s, upSum)
		}
		cl.MustRun("lftp", "-e", lftpSet+"rm d1/moved.bin; rmdir d1; rm incoming/up.bin; quit", alice)
		for _, p := range []string{"d1", "incoming/up.bin"} {
			if _, err := os.Stat(filepath.Join(root, p)); !os.IsNotExist(err) {
				t.Fatalf("%s still exists after rm: %v", p, err)
			}
		}
		// Anonymous is read-only; a wrong password is refused.
		if o, err := cl.Run("curl", "-sS", "--fail", "--max-time", "60", "-T", src, url+"anon.bin"); err == nil {
			t.Fatalf("anonymous upload accepted: %s", o)
		}
		if o, err := cl.Run("curl", "-sS", "--fail", "--max-time", "60", "ftp://alice:wrong@"+vsIP+"/"); err == nil {
			t.Fatalf("wrong password accepted: %s", o)
		}
		// Active mode: the VS dials the client (curl EPRT, lftp PORT).
		act := filepath.Join(out, "active.bin")
		cl.MustRun("curl", "-sS", "--fail", "--max-time", "300", "-P", "-", "-o", act, url+"pub/big.bin")
		if s := sum(t, act); s != bigSum {
			t.Fatalf("active-mode curl download sha256 %s, want %s", s, bigSum)
		}
		ls := cl.MustRun("lftp", "-e", lftpSet+"set ftp:passive-mode off; put "+src+" -o act-up.bin; cls -1; quit", alice)
		if !strings.Contains(ls, "act-up.bin") {
			t.Fatalf("active-mode lftp listing: %q", ls)
		}
		if s := sum(t, filepath.Join(root, "act-up.bin")); s != upSum {
			t.Fatalf("active-mode lftp upload sha256 %s, want %s", s, upSum)
		}
	})
}

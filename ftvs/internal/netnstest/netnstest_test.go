package netnstest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net"
	"os"
	osexec "os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRelayCarriesKernelTCP: kernel TCP on both sides of an impaired relay
// (1% loss, 5% reordering, 20 ms each way) still moves 8 MiB intact, and
// the relay really did lose and reorder frames.
func TestRelayCarriesKernelTCP(t *testing.T) {
	env := New(t, "fv4", "ping")
	a, b := env.NS("a"), env.NS("b")
	l := env.ImpairedVeth(a, "a0", b, "b0", "wan", Impairment{Delay: 20 * time.Millisecond, Loss: 0.01, Reorder: 0.05, Seed: 1})
	a.Addr("a0", "10.88.0.1/24")
	b.Addr("b0", "10.88.0.2/24")
	if l.Netem {
		t.Skip("the kernel has netem: the relay is not used")
	}
	r := l.Relay

	out := a.MustRun("ping", "-c", "5", "-i", "0.1", "-W", "2", "10.88.0.2")
	if !strings.Contains(out, "received") || strings.Contains(out, " 0 received") {
		t.Fatalf("ping through the relay: %s", out)
	}
	t.Logf("ping: %s", out[strings.LastIndex(out, "rtt"):])

	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(i*31 + i>>11)
	}
	var ln net.Listener
	if err := b.Do(func() (err error) { ln, err = net.Listen("tcp4", "10.88.0.2:9000"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write(data)
	}()
	var c net.Conn
	if err := a.Do(func() (err error) { c, err = net.DialTimeout("tcp4", "10.88.0.2:9000", 10*time.Second); return }); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(120 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("received %d bytes, sha256 %x; want %d bytes, %x", len(got), sha256.Sum256(got), len(data), sha256.Sum256(data))
	}
	st := r.Stats()
	t.Logf("relay: %+v", st)
	if st.Lost == 0 || st.Reordered == 0 {
		t.Fatalf("relay lost %d, reordered %d: the path was not impaired", st.Lost, st.Reordered)
	}

	// Cut the link, then mend it.
	r.SetImpairment(Impairment{Loss: 1})
	if out, err := a.Run("ping", "-c", "2", "-i", "0.2", "-W", "1", "10.88.0.2"); err == nil {
		t.Fatalf("ping crossed a cut link: %s", out)
	}
	r.SetImpairment(Impairment{})
	a.MustRun("ping", "-c", "2", "-i", "0.2", "-W", "2", "10.88.0.2")
}

// TestCleanupRemovesNamespaces: what a test made is gone after it.
func TestCleanupRemovesNamespaces(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		env := New(t, "fv4")
		n := env.NS("x")
		name = n.Name
		n.Tap("t0")
	})
	out, err := run("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, name) {
		t.Fatalf("namespace %s survived its test", name)
	}
}

func run(name string, args ...string) (string, error) {
	out, err := osexec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// TestSweepRemovesOrphans: a namespace left by a dead process is removed by
// the next New; one of a live process is not, nor one of a live test whose
// prefix extends this one ("fv4r" + PID once read as PID "r...").
func TestSweepRemovesOrphans(t *testing.T) {
	Require(t)
	dead := "fv4.zzzzzz_0000-orphan" // PID 2176782335 does not exist
	live := "fv4." + strconv.FormatInt(int64(os.Getpid()), 36) + "_ffff-live"
	longer := "fv4r." + strconv.FormatInt(int64(os.Getpid()), 36) + "_ffff-live"
	for _, n := range []string{dead, live, longer} {
		if out, err := osexec.Command("ip", "netns", "add", n).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Cleanup(func() { _ = osexec.Command("ip", "netns", "del", n).Run() })
	}
	New(t, "fv4")
	out, err := run("ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, dead) {
		t.Fatal("orphaned namespace survived")
	}
	if !strings.Contains(out, live) || !strings.Contains(out, longer) {
		t.Fatal("a live process's namespace was removed")
	}
}

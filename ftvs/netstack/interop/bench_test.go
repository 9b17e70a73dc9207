//go:build linux

package interop

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/netstack"
)

const benchSize = 512 << 20

// curlTime downloads url with curl inside ns and returns curl's own
// transfer time in seconds.
func curlTime(b *testing.B, ns, url string) float64 {
	out, err := exec.Command("ip", "netns", "exec", ns, "curl", "-sS", "--max-time", "120", "-o", "/dev/null",
		"-w", "%{size_download} %{time_total}", url).CombinedOutput()
	if err != nil {
		b.Fatalf("curl: %v: %s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != strconv.Itoa(benchSize) {
		b.Fatalf("curl: %q", out)
	}
	sec, _ := strconv.ParseFloat(f[1], 64)
	return sec
}

// BenchmarkCurlStack: curl in a namespace downloads from the Stack over a
// TAP with TSO/checksum offload (the test loop is the shell).
func BenchmarkCurlStack(b *testing.B) {
	needB(b)
	e := newEnv(b, true, netstack.Config{TSOMax: 65000, ChecksumOffload: true})
	b.SetBytes(benchSize)
	b.ResetTimer()
	var sec float64
	for i := 0; i < b.N; i++ {
		sec += curlTime(b, e.ns, fmt.Sprintf("http://%s/%d", stackAddr(), benchSize))
	}
	b.ReportMetric(float64(benchSize)*8*float64(b.N)/sec/1e6, "Mbit/s")
}

// kernelBlast starts a Linux kernel TCP server (Go, serving the blast bytes)
// in one namespace and returns a second namespace joined to it by a veth
// pair, and the server's address.
func kernelBlast(tb testing.TB) (cliNS, addr string) {
	n := envSeq.Add(1)
	srvNS := fmt.Sprintf("fn2-k%d-%d", n, 1)
	cliNS = fmt.Sprintf("fn2-k%d-%d", n, 2)
	for _, ns := range []string{srvNS, cliNS} {
		runB(tb, "ip", "netns", "add", ns)
		tb.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	va, vb := fmt.Sprintf("fn2ka%d", n), fmt.Sprintf("fn2kb%d", n)
	runB(tb, "ip", "link", "add", va, "netns", srvNS, "type", "veth", "peer", "name", vb, "netns", cliNS)
	runB(tb, "ip", "-n", srvNS, "addr", "add", "10.78.0.1/24", "dev", va)
	runB(tb, "ip", "-n", cliNS, "addr", "add", "10.78.0.2/24", "dev", vb)
	runB(tb, "ip", "-n", srvNS, "link", "set", va, "up")
	runB(tb, "ip", "-n", cliNS, "link", "set", vb, "up")
	var ln net.Listener
	if err := inNS(srvNS, func() error {
		var err error
		ln, err = net.Listen("tcp", "10.78.0.1:80")
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveBlast(c)
		}
	}()
	return cliNS, "10.78.0.1"
}

// BenchmarkCurlKernel: the same download from a Linux kernel TCP server
// (Go, serving the same bytes) across a veth pair between two namespaces.
func BenchmarkCurlKernel(b *testing.B) {
	needB(b)
	cliNS, _ := kernelBlast(b)
	b.SetBytes(benchSize)
	b.ResetTimer()
	var sec float64
	for i := 0; i < b.N; i++ {
		sec += curlTime(b, cliNS, fmt.Sprintf("http://10.78.0.1/%d", benchSize))
	}
	b.ReportMetric(float64(benchSize)*8*float64(b.N)/sec/1e6, "Mbit/s")
}

// serveBlast answers one GET /N with N bytes of blastBlock, like the
// sockapi test service.
func serveBlast(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
	}
	f := strings.Fields(line)
	if len(f) < 2 {
		return
	}
	size, _ := strconv.ParseInt(strings.TrimPrefix(f[1], "/"), 10, 64)
	fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", size)
	for size > 0 {
		k := min(size, int64(len(blastBlock)))
		if _, err := c.Write(blastBlock[:k]); err != nil {
			return
		}
		size -= k
	}
}

func needB(b *testing.B) {
	b.Helper()
	for _, tool := range []string{"ip", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Skipf("%s not installed", tool)
		}
	}
}

func runB(b testing.TB, args ...string) {
	b.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

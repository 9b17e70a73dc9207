package machine_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/machine/inputlog"
)

func readLogs(t *testing.T) map[string]*inputlog.Log {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "..", "testdata", "machine", "*.log"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no recorded logs in testdata/machine (%v)", err)
	}
	logs := map[string]*inputlog.Log{}
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		lg, err := inputlog.Read(f, p)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		logs[filepath.Base(p)] = lg
	}
	return logs
}

// replayDigest runs a log through one machine and digests every output and
// the final state hash.
func replayDigest(lg *inputlog.Log) (string, error) {
	env, err := lg.Env()
	if err != nil {
		return "", err
	}
	m, err := machine.NewEnv(lg.Config, env)
	if err != nil {
		return "", err
	}
	h := fnv.New64a()
	for _, in := range lg.Inputs {
		for _, o := range m.Step(in) {
			var hdr [12]byte
			binary.LittleEndian.PutUint64(hdr[:], o.Seq)
			hdr[8], hdr[9] = byte(o.Kind), 0
			binary.LittleEndian.PutUint16(hdr[10:], o.GSO)
			h.Write(hdr[:])
			h.Write(o.Payload)
		}
	}
	c := m.Counters()
	return fmt.Sprintf("outputs=%016x state=%016x requests=%d ftp=%d nbd=%d", h.Sum64(), m.StateHash(), c.HTTP.Requests,
		c.FTP.Commands, c.NBD.Requests), nil
}

// Three machines replay each recorded session. Outputs and state hashes
// must agree at every step, while one replica is snapshotted and restored
// into a brand-new machine at random points.
func TestReplayRecordedSessions(t *testing.T) {
	for name, lg := range readLogs(t) {
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(int64(len(lg.Inputs))))
			var ms [3]*machine.Machine
			for i := range ms {
				env, err := lg.Env()
				if err != nil {
					t.Fatal(err)
				}
				m, err := machine.NewEnv(lg.Config, env)
				if err != nil {
					t.Fatal(err)
				}
				ms[i] = m
			}
			restores := 0
			for step, in := range lg.Inputs {
				out0 := ms[0].Step(in)
				for i := 1; i < len(ms); i++ {
					if err := sameOutputs(out0, ms[i].Step(in)); err != nil {
						t.Fatalf("input %d (seq %d): replica %d: %v", step, in.Seq, i, err)
					}
				}
				// Hashes every step for the replica that gets restored;
				// the third replica's outputs are compared every step and
				// its hash at the end (hashing is the slow part).
				h := ms[0].StateHash()
				if ms[2].StateHash() != h {
					t.Fatalf("input %d (seq %d): replica 2 state hash differs", step, in.Seq)
				}
				if rng.Intn(20) == 0 {
					// Disks and files are not in the snapshot: the
					// fresh machine takes over the replica's.
					fresh, err := machine.NewEnv(lg.Config, ms[2].Env())
					if err != nil {
						t.Fatal(err)
					}
					if err := fresh.Restore(ms[2].Snapshot()); err != nil {
						t.Fatalf("input %d: restore: %v", step, err)
					}
					if fresh.StateHash() != h {
						t.Fatalf("input %d: restored machine has another state hash", step)
					}
					ms[2] = fresh
					restores++
				}
			}
			if ms[1].StateHash() != ms[0].StateHash() {
				t.Fatal("replica 1 final state hash differs")
			}
			c := ms[0].Counters()
			served := c.HTTP.BodyBytes + c.FTP.BytesSent + c.FTP.BytesReceived + c.NBD.ReadBytes + c.NBD.WriteBytes
			if served < 1<<20 {
				t.Fatalf("the replay no longer reaches the services (HTTP %d requests %d body bytes, FTP %d commands, NBD %d requests; "+
					"%d bytes served): the stack changed since the log was recorded; re-record it (testdata/machine/README.md)",
					c.HTTP.Requests, c.HTTP.BodyBytes, c.FTP.Commands, c.NBD.Requests, served)
			}
			t.Logf("%d inputs, %d restores, %d HTTP requests, %d FTP commands, %d NBD requests, %d bytes served",
				len(lg.Inputs), restores, c.HTTP.Requests, c.FTP.Commands, c.NBD.Requests, served)
		})
	}
}

// The replay gives the same outputs and state whatever GOMAXPROCS is: the
// test binary re-runs itself with GOMAXPROCS=1 and 4.
func TestReplayAcrossGOMAXPROCS(t *testing.T) {
	if os.Getenv("FTVS_REPLAY_CHILD") == "1" {
		return
	}
	logs := readLogs(t)
	want := map[string]string{}
	for name, lg := range logs {
		d, err := replayDigest(lg)
		if err != nil {
			t.Fatal(err)
		}
		want[name] = d
	}
	for _, procs := range []string{"1", "4"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReplayChild$", "-test.v")
		cmd.Env = append(os.Environ(), "FTVS_REPLAY_CHILD=1", "GOMAXPROCS="+procs)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOMAXPROCS=%s child: %v\n%s", procs, err, out)
		}
		for name, d := range want {
			if !strings.Contains(string(out), "DIGEST "+name+" "+d+" procs="+procs) {
				t.Fatalf("GOMAXPROCS=%s: %s digest differs; want %s\n%s", procs, name, d, out)
			}
		}
	}
}

func TestReplayChild(t *testing.T) {
	if os.Getenv("FTVS_REPLAY_CHILD") != "1" {
		t.Skip("run by TestReplayAcrossGOMAXPROCS")
	}
	for name, lg := range readLogs(t) {
		d, err := replayDigest(lg)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("DIGEST %s %s procs=%d\n", name, d, runtime.GOMAXPROCS(0))
	}
}

func TestInputLogRoundTrip(t *testing.T) {
	cfg := vsConfig(1000)
	var buf bytes.Buffer
	lw := inputlog.NewWriter(&buf, cfg)
	lw.Dir("empty", 5)
	lw.File("a/b.txt", 6, []byte("hi"))
	lw.Synthetic("s.bin", 7, 100, 9)
	lw.Input(machine.Input{Seq: 1, Now: 10, Kind: machine.InFrame, Payload: []byte{1, 2}})
	lw.Input(machine.Input{Seq: 2, Now: 11, Kind: machine.InTick})
	lw.File("late", 1, nil)
	if err := lw.Close(); err == nil {
		t.Fatal("file record after inputs accepted")
	}
	buf.Reset()
	lw = inputlog.NewWriter(&buf, cfg)
	lw.File("a/b.txt", 6, []byte("hi"))
	lw.Input(machine.Input{Seq: 1, Now: 10, Kind: machine.InFrame, Payload: []byte{1, 2}})
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	lg, err := inputlog.Read(bytes.NewReader(buf.Bytes()), "mem")
	if err != nil {
		t.Fatal(err)
	}
	if lg.Config.TSOMax != 1000 || len(lg.Inputs) != 1 || lg.Inputs[0].Now != 10 || !bytes.Equal(lg.Inputs[0].Payload, []byte{1, 2}) {
		t.Fatalf("read back %+v", lg)
	}
	if fi, err := lg.Files.Stat("a/b.txt"); err != nil || fi.Size != 2 {
		t.Fatalf("file: %+v %v", fi, err)
	}
	// A log cut anywhere reads as an error or, at a record boundary, as a
	// shorter session; never as a different one.
	for cut := 0; cut < buf.Len(); cut++ {
		lg, err := inputlog.Read(bytes.NewReader(buf.Bytes()[:cut]), "cut")
		if err == nil && len(lg.Inputs) != 0 {
			t.Fatalf("log cut at %d bytes still holds the last input", cut)
		}
	}
}

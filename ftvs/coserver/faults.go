package coserver

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ftvs/ftvs/ftvs/blockdev"
	"github.com/ftvs/ftvs/ftvs/blockdev/faultdev"
	"github.com/ftvs/ftvs/ftvs/machine"
	"github.com/ftvs/ftvs/ftvs/vdisk"
)

// Test-only fault injection. Two environment variables must both be set, one
// of them to a sentence nobody types by accident, so a production node can
// never run with it.
const (
	faultEnvAck = "FTVS_TEST_FAULTS"
	faultAck    = "i-want-this-replica-to-diverge"
	divergeEnv  = "FTVS_TEST_DIVERGE_AT_SEQ"
)

// DivergeFromEnv returns the lockstep Diverge hook the environment asks for,
// or nil. The hook replaces the first IPv4 frame input at or after the given
// sequence number, on this node only, by an ARP request for the frame's
// destination (the VS) from its source: this replica answers an ARP the
// other never saw, so their outputs differ at once (an input that is merely
// dropped can heal itself, as TCP's cumulative ACKs do).
func DivergeFromEnv() (func(*machine.Input), error) {
	at := os.Getenv(divergeEnv)
	if at == "" {
		return nil, nil
	}
	if os.Getenv(faultEnvAck) != faultAck {
		return nil, fmt.Errorf("%s is set but %s is not %q: refusing to start with a fault hook", divergeEnv, faultEnvAck, faultAck)
	}
	seq, err := strconv.ParseUint(at, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: %w", divergeEnv, at, err)
	}
	var done atomic.Bool
	return func(in *machine.Input) {
		f := in.Payload
		if in.Seq < seq || in.Kind != machine.InFrame || done.Load() || len(f) < 34 || f[12] != 0x08 || f[13] != 0x00 {
			return
		}
		done.Store(true)
		fmt.Fprintf(os.Stderr, "ftvs: TEST FAULT HOOK: input %d (a %d-byte frame) replaced by an ARP request on this replica\n", in.Seq, len(f))
		in.Payload = arpRequest([]byte{0x02, 0xde, 0xad, 0, 0, 1}, [4]byte(f[26:30]), [4]byte(f[30:34]))
	}, nil
}

func arpRequest(src []byte, sender, target [4]byte) []byte {
	a := make([]byte, 0, 60)
	a = append(a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	a = append(a, src...)
	a = append(a, 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1)
	a = append(a, src...)
	a = append(a, sender[:]...)
	a = append(a, 0, 0, 0, 0, 0, 0)
	a = append(a, target[:]...)
	return append(a, make([]byte, 60-len(a))...)
}

// diskFaultEnv names a virtual disk and a trigger file ("data=/run/x"):
// once the file exists, every read and write of that disk's data area on
// this node fails (ftvs/blockdev/faultdev), as a dying disk would; the
// metadata area keeps working so the copy can be marked detached. Needs
// faultEnvAck like the other hooks.
const diskFaultEnv = "FTVS_TEST_DISK_FAULT"

// diskFaultFromEnv returns the trigger file for disk name, or "".
func diskFaultFromEnv(name string) (string, error) {
	v := os.Getenv(diskFaultEnv)
	if v == "" {
		return "", nil
	}
	if os.Getenv(faultEnvAck) != faultAck {
		return "", fmt.Errorf("%s is set but %s is not %q: refusing to start with a fault hook", diskFaultEnv, faultEnvAck, faultAck)
	}
	disk, trigger, ok := strings.Cut(v, "=")
	if !ok || disk == "" || !filepath.IsAbs(trigger) {
		return "", fmt.Errorf("%s=%q: want DISK=/absolute/trigger/file", diskFaultEnv, v)
	}
	if disk != name {
		return "", nil
	}
	return trigger, nil
}

// faultSwitch passes I/O through until its trigger file appears, then
// fails the data area's reads and writes through a faultdev.
type faultSwitch struct {
	inner blockdev.Device
	armed atomic.Bool
	mu    sync.Mutex // faultdev is plain data
	fd    *faultdev.Dev
}

func newFaultSwitch(inner blockdev.Device, trigger string) (*faultSwitch, error) {
	md, _, _, err := vdisk.ReadMetadata(inner)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", diskFaultEnv, err)
	}
	s := &faultSwitch{inner: inner, fd: faultdev.New(inner)}
	s.fd.Add(faultdev.Rule{Ops: faultdev.Read | faultdev.Write, Off: md.DataOffset, Len: md.DataSize})
	go func() {
		for {
			if _, err := os.Stat(trigger); err == nil {
				fmt.Fprintf(os.Stderr, "ftvs: TEST FAULT HOOK: %s exists: the data area of this copy fails from now on\n", trigger)
				s.armed.Store(true)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	return s, nil
}

func (s *faultSwitch) ReadAt(p []byte, off int64) (int, error) {
	if !s.armed.Load() {
		return s.inner.ReadAt(p, off)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fd.ReadAt(p, off)
}

func (s *faultSwitch) WriteAt(p []byte, off int64) (int, error) {
	if !s.armed.Load() {
		return s.inner.WriteAt(p, off)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fd.WriteAt(p, off)
}

func (s *faultSwitch) Flush() error    { return s.inner.Flush() }
func (s *faultSwitch) Size() int64     { return s.inner.Size() }
func (s *faultSwitch) SectorSize() int { return s.inner.SectorSize() }

// failFinishEnv: FTVS_TEST_FAIL_FINISH_RESYNC=N makes the first N
// hand-overs on this node where a mirror is a resync source fail their
// FinishResync (as a link or target error would), so the join is refused.
// Needs faultEnvAck like the other hooks.
const failFinishEnv = "FTVS_TEST_FAIL_FINISH_RESYNC"

func failFinishFromEnv() (int32, error) {
	v := os.Getenv(failFinishEnv)
	if v == "" {
		return 0, nil
	}
	if os.Getenv(faultEnvAck) != faultAck {
		return 0, fmt.Errorf("%s is set but %s is not %q: refusing to start with a fault hook", failFinishEnv, faultEnvAck, faultAck)
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a count >= 0", failFinishEnv, v)
	}
	fmt.Fprintf(os.Stderr, "ftvs: TEST FAULT HOOK: the first %d FinishResync of a resync source fail\n", n)
	return int32(n), nil
}

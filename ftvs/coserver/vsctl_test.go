package coserver

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestCtlNoticeAuth: a peer's control notice is taken only under the pair
// key, from the peer's node number, fresh, for a known action; the ranges
// are covered by the MAC.
func TestCtlNoticeAuth(t *testing.T) {
	key := bytes.Repeat([]byte{3}, 32)
	now := time.Now()
	mk := func(f func(*ctlNotice)) []byte {
		n := ctlNotice{Node: 1, Action: "resync", Disk: "data", Ranges: [][2]int64{{4096, 8192}}, TimeMS: now.UnixMilli(), Nonce: strings.Repeat("ab", 16)}
		n.MAC = n.sum(key)
		f(&n)
		b, _ := json.Marshal(&n)
		return b
	}
	if got, err := parseCtl(mk(func(*ctlNotice) {}), key, 2, now); err != nil || got.Disk != "data" || got.Ranges[0] != [2]int64{4096, 8192} {
		t.Fatalf("good notice: %+v %v", got, err)
	}
	for what, b := range map[string][]byte{
		"ranges changed after signing": mk(func(n *ctlNotice) { n.Ranges[0][1] = 1 << 30 }),
		"action changed after signing": mk(func(n *ctlNotice) { n.Action = "vs-stop" }),
		"unknown action":               mk(func(n *ctlNotice) { n.Action = "format"; n.MAC = n.sum(key) }),
		"short nonce":                  mk(func(n *ctlNotice) { n.Nonce = "ab"; n.MAC = n.sum(key) }),
	} {
		if _, err := parseCtl(b, key, 2, now); err == nil {
			t.Errorf("%s: accepted", what)
		}
	}
	good := mk(func(*ctlNotice) {})
	if _, err := parseCtl(good, bytes.Repeat([]byte{4}, 32), 2, now); err == nil {
		t.Error("notice under another key accepted")
	}
	if _, err := parseCtl(good, key, 1, now); err == nil {
		t.Error("notice from our own node number accepted")
	}
	if _, err := parseCtl(good, key, 2, now.Add(time.Minute)); err == nil {
		t.Error("stale notice accepted")
	}
	var c ctlState
	if !c.fresh("n1") || c.fresh("n1") {
		t.Error("a replayed nonce is not refused")
	}
}

// TestOutputHoldHistogram: observations land in the first bucket whose
// bound holds them, the counts are cumulative and the sum is kept.
func TestOutputHoldHistogram(t *testing.T) {
	var h holdHist
	for _, d := range []time.Duration{30 * time.Microsecond, 300 * time.Microsecond, 2 * time.Millisecond, 3 * time.Second} {
		h.observe(d)
	}
	s := h.snapshot()
	if s.Count != 4 || s.Counts[0] != 1 || s.Counts[3] != 2 || s.Counts[len(s.Counts)-1] != 3 {
		t.Fatalf("histogram %+v: want 1 at 50us, 2 at 500us, 3 at 1s, count 4 (one above every bound)", s)
	}
	if want := 3.00233; s.SumS < want-1e-6 || s.SumS > want+1e-6 {
		t.Fatalf("sum %v, want %v", s.SumS, want)
	}
}

// FuzzParseCtl: a control notice comes from the management network; no
// input may panic the parser or pass it unsigned.
func FuzzParseCtl(f *testing.F) {
	key := bytes.Repeat([]byte{3}, 32)
	n := ctlNotice{Node: 1, Action: "resync", Disk: "data", Ranges: [][2]int64{{4096, 8192}}, TimeMS: 1, Nonce: strings.Repeat("ab", 16)}
	n.MAC = n.sum(key)
	b, _ := json.Marshal(&n)
	f.Add(b)
	f.Add([]byte(`{"node":1,"action":"vs-stop","ranges":[[1,-1]]}`))
	f.Add([]byte(`{"node":1,"unknown":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseCtl(b, key, 2, time.UnixMilli(1))
		if err == nil && got.MAC != got.sum(key) {
			t.Fatalf("accepted a notice whose MAC does not match: %s", b)
		}
	})
}

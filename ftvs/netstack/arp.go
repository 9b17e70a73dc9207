package netstack

import (
	"bytes"
	"sort"

	"github.com/ftvs/ftvs/ftvs/netstack/wire"
)

// arpEntry is one neighbour.
type arpEntry struct {
	mac     [6]byte
	expires int64 // trusted until then; refreshed by a request after
	lastReq int64 // last refresh request sent
}

// arpWait is a neighbour being resolved, with the frames waiting for it.
type arpWait struct {
	ip     [4]byte
	frames []txFrame
	tries  int
	next   int64 // next request
}

type arpTable struct {
	entries  map[[4]byte]*arpEntry // lookup only; order-independent use
	waits    []arpWait
	held     int
	deadline int64
}

const (
	arpRetry = int64(1e9)
	arpTries = 3
	arpGrace = int64(5e9) // keep using an expired entry while refreshing
)

func (a *arpTable) init() { a.entries = make(map[[4]byte]*arpEntry) }

// lookup returns the MAC for ip, asking for a refresh when the entry aged.
func (a *arpTable) lookup(s *Stack, ip [4]byte) ([6]byte, bool) {
	if ip == s.bcast || ip == [4]byte{255, 255, 255, 255} {
		return broadcastMAC, true
	}
	e := a.entries[ip]
	if e == nil {
		return [6]byte{}, false
	}
	if s.now >= e.expires {
		if s.now >= e.expires+arpGrace {
			delete(a.entries, ip)
			s.ctr.ARPExpired++
			return [6]byte{}, false
		}
		if s.now-e.lastReq >= arpRetry {
			e.lastReq = s.now
			s.sendARP(1, e.mac, [6]byte{}, ip)
		}
	}
	return e.mac, true
}

// learn records ip at mac. create=false only refreshes or adds when room.
func (a *arpTable) learn(s *Stack, ip [4]byte, mac [6]byte, create bool) {
	if mac[0]&1 != 0 || ip == ([4]byte{}) {
		return
	}
	e := a.entries[ip]
	if e == nil {
		if len(a.entries) >= s.cfg.ARPCacheSize {
			if !create {
				return
			}
			a.evict(s)
		}
		e = &arpEntry{}
		a.entries[ip] = e
	}
	e.mac = mac
	e.expires = s.now + s.cfg.ARPLifetime
	a.release(s, ip, mac)
}

// evict drops the entry that expires first (ties: lowest IP), deterministically.
func (a *arpTable) evict(s *Stack) {
	var victim [4]byte
	var best *arpEntry
	//detcheck:orderless: a minimum with a total tie-break (lowest IP)
	for ip, e := range a.entries {
		if best == nil || e.expires < best.expires || e.expires == best.expires && bytes.Compare(ip[:], victim[:]) < 0 {
			best, victim = e, ip
		}
	}
	if best != nil {
		delete(a.entries, victim)
		s.ctr.ARPEvictions++
	}
}

// release sends the frames that waited for ip.
func (a *arpTable) release(s *Stack, ip [4]byte, mac [6]byte) {
	for i := range a.waits {
		if a.waits[i].ip != ip {
			continue
		}
		for _, f := range a.waits[i].frames {
			wire.PutEthernet(f.b, mac, s.cfg.MAC, wire.EtherTypeIPv4)
			s.emit(f.b, f.gso)
		}
		a.held -= len(a.waits[i].frames)
		a.waits = append(a.waits[:i], a.waits[i+1:]...)
		a.setDeadline()
		return
	}
}

// hold queues f until ip resolves, asking for it when it is new.
func (a *arpTable) hold(s *Stack, ip [4]byte, f txFrame) {
	i := 0
	for ; i < len(a.waits); i++ {
		if a.waits[i].ip == ip {
			break
		}
	}
	if i == len(a.waits) {
		if len(a.waits) >= s.cfg.ARPPending {
			s.ctr.ARPHoldDrops++
			return
		}
		a.waits = append(a.waits, arpWait{ip: ip, tries: 1, next: s.now + arpRetry})
		s.sendARP(1, broadcastMAC, [6]byte{}, ip)
		a.setDeadline()
	}
	w := &a.waits[i]
	if a.held >= s.cfg.ARPPending || len(w.frames) >= 16 {
		s.ctr.ARPHoldDrops++
		return
	}
	w.frames = append(w.frames, f)
	a.held++
}

func (a *arpTable) setDeadline() {
	a.deadline = 0
	for _, w := range a.waits {
		if a.deadline == 0 || w.next < a.deadline {
			a.deadline = w.next
		}
	}
}

// timers retries requests and gives up on silent neighbours.
func (a *arpTable) timers(s *Stack) {
	out := a.waits[:0]
	for _, w := range a.waits {
		if w.next <= s.now {
			if w.tries >= arpTries {
				s.ctr.ARPResolveFailed++
				s.ctr.ARPHoldDrops += uint64(len(w.frames))
				a.held -= len(w.frames)
				continue
			}
			w.tries++
			w.next = s.now + arpRetry
			s.sendARP(1, broadcastMAC, [6]byte{}, w.ip)
		}
		out = append(out, w)
	}
	for i := len(out); i < len(a.waits); i++ {
		a.waits[i] = arpWait{}
	}
	a.waits = out
	a.setDeadline()
}

// sortedIPs lists cached IPs in order (for snapshots).
func (a *arpTable) sortedIPs() [][4]byte {
	ips := make([][4]byte, 0, len(a.entries))
	//detcheck:orderless: sorted right below
	for ip := range a.entries {
		ips = append(ips, ip)
	}
	sort.Slice(ips, func(i, j int) bool { return bytes.Compare(ips[i][:], ips[j][:]) < 0 })
	return ips
}

func (s *Stack) arpInput(b []byte) {
	p, err := wire.ParseARP(b)
	if err != nil {
		s.ctr.ARPBad++
		return
	}
	if p.SenderIP == s.cfg.IP {
		if p.SenderHW != s.cfg.MAC {
			s.ctr.ARPConflicts++ // someone else claims our address
		} else {
			s.ctr.ARPNotForUs++ // our own announcement reflected back
		}
		return
	}
	forUs := p.TargetIP == s.cfg.IP
	// RFC 826: merge if known; add when the packet is addressed to us.
	if _, known := s.arp.entries[p.SenderIP]; known || forUs {
		if s.onLink(p.SenderIP) {
			s.arp.learn(s, p.SenderIP, p.SenderHW, forUs)
		}
	}
	switch {
	case forUs && p.Op == 1:
		s.ctr.ARPReplies++
		s.sendARP(2, p.SenderHW, p.SenderHW, p.SenderIP)
	case !forUs:
		s.ctr.ARPNotForUs++ // other hosts' traffic on the LAN (merged above if known)
	}
}

// sendARP queues an ARP packet: op 1 request (target MAC unknown) or 2 reply.
func (s *Stack) sendARP(op uint16, ethDst, targetHW [6]byte, targetIP [4]byte) {
	f := make([]byte, wire.EthLen+wire.ARPLen)
	wire.PutEthernet(f, ethDst, s.cfg.MAC, wire.EtherTypeARP)
	wire.PutARP(f[wire.EthLen:], wire.ARP{Op: op, SenderHW: s.cfg.MAC, SenderIP: s.cfg.IP, TargetHW: targetHW, TargetIP: targetIP})
	if op == 1 {
		s.ctr.ARPRequests++
	}
	s.emit(f, 0)
}

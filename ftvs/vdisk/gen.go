package vdisk

import "fmt"

// Action is what Decide says to do with two copies of one virtual disk.
type Action uint8

const (
	// InSync: both copies hold the same data; no resync.
	InSync Action = iota + 1
	// BitmapResync: copy the regions marked in the bitmaps from Source to
	// Target.
	BitmapResync
	// FullSync: copy every region from Source to Target.
	FullSync
	// SplitBrain: both copies were written independently; only the operator
	// can choose the copy whose changes are discarded.
	SplitBrain
	// Unrelated: the generations share no ancestor; refuse.
	Unrelated
	// Refuse: some other reason makes any resync unsafe (see Reason).
	Refuse
)

func (a Action) String() string {
	switch a {
	case InSync:
		return "in-sync"
	case BitmapResync:
		return "bitmap-resync"
	case FullSync:
		return "full-sync"
	case SplitBrain:
		return "split-brain"
	case Unrelated:
		return "unrelated"
	case Refuse:
		return "refuse"
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// Decision is Decide's verdict.
type Decision struct {
	Action Action
	// Source and Target are node numbers (1 or 2) for the resync actions.
	Source, Target uint8
	// UnionBitmaps: the regions to copy are those marked in either copy's
	// bitmap (after a double crash, or a resolved split brain, the target's
	// own marks must be overwritten too).
	UnionBitmaps bool
	// Rule is the rule number of DRBD's drbd_uuid_compare that matched
	// (0 for a disk-state or identity rule).
	Rule   int
	Reason string
}

func (d Decision) String() string {
	switch d.Action {
	case BitmapResync, FullSync:
		return fmt.Sprintf("%s from node %d to node %d: %s", d.Action, d.Source, d.Target, d.Reason)
	}
	return fmt.Sprintf("%s: %s", d.Action, d.Reason)
}

// compare is DRBD's drbd_uuid_compare from a's point of view. Result:
// 0 in sync, 1/-1 bitmap resync with a as source/target, 2/-2 full sync,
// 100/-100 split brain, -1000 unrelated. (DRBD masks the lowest bit of each
// UUID for its primary flag; ours are plain values.)
func compare(a, b *Metadata) (hg int, rule int, why string) {
	self, peer := a.Gens.Current, b.Gens.Current
	if self == JustCreated && peer == JustCreated {
		return 0, 10, "both copies are new"
	}
	if self == JustCreated {
		return -2, 20, "this copy is new, the peer holds data"
	}
	if peer == JustCreated {
		return 2, 30, "the peer copy is new, this one holds data"
	}
	if self == peer {
		ac, bc := a.Crashed(), b.Crashed()
		switch {
		case ac && bc:
			// Both were applying writes (lockstep) when they went down: the
			// lower node is the source (DRBD picks by a fixed role flag); the
			// target's in-flight marks are copied over too.
			if a.Node < b.Node {
				return 1, 40, "double crash with equal generations; lower node is source"
			}
			return -1, 40, "double crash with equal generations; lower node is source"
		case ac:
			return 1, 40, "this copy crashed while applying writes"
		case bc:
			return -1, 40, "the peer crashed while applying writes"
		}
		return 0, 40, "equal current generations"
	}
	if self == b.Gens.Bitmap {
		return -1, 50, "the peer has marked every write since this copy's current generation"
	}
	for _, h := range b.Gens.History {
		if h != 0 && self == h {
			return -2, 60, "this copy's current generation is in the peer's history"
		}
	}
	if a.Gens.Bitmap == peer {
		return 1, 70, "this copy has marked every write since the peer's current generation"
	}
	for _, h := range a.Gens.History {
		if h != 0 && h == peer {
			return 2, 80, "the peer's current generation is in this copy's history"
		}
	}
	if a.Gens.Bitmap == b.Gens.Bitmap && a.Gens.Bitmap != 0 {
		return 100, 90, "both copies went on alone from the same generation"
	}
	for _, h := range a.Gens.History {
		for _, k := range b.Gens.History {
			if h != 0 && h == k {
				return -100, 100, "both copies went on alone from a common ancestor"
			}
		}
	}
	return -1000, 110, "no common generation"
}

// Decide compares two copies of one virtual disk and says which way data must
// flow. It is symmetric: Decide(b, a) names the same source and target.
// Split brain is never resolved here unless exactly one copy carries the
// operator's discard-my-data flag (ftvs vdisk resolve).
func Decide(a, b Metadata) Decision {
	if a.UUID != b.UUID {
		return Decision{Action: Unrelated, Reason: fmt.Sprintf("different disks: uuid %x vs %x", a.UUID, b.UUID)}
	}
	if a.Node == b.Node {
		return Decision{Action: Refuse, Reason: fmt.Sprintf("both copies belong to node %d", a.Node)}
	}
	if a.DataSize != b.DataSize {
		return Decision{Action: Refuse, Reason: fmt.Sprintf("data sizes differ: node %d has %d bytes, node %d has %d", a.Node, a.DataSize, b.Node, b.DataSize)}
	}
	// Work from node 1's point of view so that the answer is symmetric.
	if a.Node > b.Node {
		a, b = b, a
	}
	hg, rule, why := compare(&a, &b)
	mk := func(act Action, srcA bool, reason string) Decision {
		// DRBD ORs both bitmaps at every handshake: copying a region more
		// than needed is always safe, missing one never is.
		d := Decision{Action: act, Rule: rule, Reason: reason, UnionBitmaps: act == BitmapResync}
		if act == BitmapResync || act == FullSync {
			d.Source, d.Target = a.Node, b.Node
			if !srcA {
				d.Source, d.Target = b.Node, a.Node
			}
		}
		return d
	}
	aBad := a.State == Inconsistent || a.State == Diskless
	bBad := b.State == Inconsistent || b.State == Diskless
	if hg == 0 && rule == 10 {
		// Both new: the initial full sync from node 1 (checksums skip what
		// already matches, e.g. two zero-filled files).
		return mk(FullSync, true, why+"; initial sync from node 1")
	}
	if aBad && bBad {
		return Decision{Action: Refuse, Rule: rule, Reason: fmt.Sprintf("neither copy holds good data (node %d %s, node %d %s)", a.Node, a.State, b.Node, b.State)}
	}
	if hg == -1000 && !aBad && !bBad {
		return Decision{Action: Unrelated, Rule: rule, Reason: why + "; refusing to overwrite either copy"}
	}
	if hg == 100 || hg == -100 {
		ad, bd := a.Discard(), b.Discard()
		if ad != bd && !aBad && !bBad {
			act := BitmapResync
			if hg == -100 {
				act = FullSync
			}
			victim := a.Node
			if bd {
				victim = b.Node
			}
			return mk(act, bd, fmt.Sprintf("split brain (%s) resolved by the operator: node %d's changes are discarded", why, victim))
		}
		if !aBad && !bBad {
			return Decision{Action: SplitBrain, Rule: rule, Reason: why + "; waiting for ftvs vdisk resolve --discard-node N"}
		}
	}
	if aBad || bBad {
		// DRBD: an Inconsistent copy is always the target; the generations
		// only say whether its bitmap can be trusted.
		full := hg == 2 || hg == -2 || hg == -100 || hg == -1000 ||
			a.State == Diskless || b.State == Diskless
		act := BitmapResync
		if full {
			act = FullSync
		}
		bad := a
		if bBad {
			bad = b
		}
		return mk(act, bBad, fmt.Sprintf("node %d is %s (%s)", bad.Node, bad.State, why))
	}
	switch hg {
	case 0:
		return mk(InSync, true, why)
	case 1, -1, 2, -2:
		src, dst := a, b
		if hg < 0 {
			src, dst = b, a
		}
		if src.State == Outdated && dst.State == UpToDate {
			return Decision{Action: Refuse, Rule: rule, Reason: fmt.Sprintf("generations say node %d is newer but it is Outdated and node %d is UpToDate", src.Node, dst.Node)}
		}
		act := BitmapResync
		if hg == 2 || hg == -2 {
			act = FullSync
		}
		return mk(act, hg > 0, why)
	}
	return Decision{Action: Refuse, Rule: rule, Reason: why}
}

// CanGoLiveAlone says whether a copy may serve the VS without its peer.
// Only an UpToDate copy may; an Outdated one never does. After a restart the
// runtime must still make sure the peer is not live with newer data (the
// lockstep issue's split-brain checks): metadata alone cannot know that.
func CanGoLiveAlone(m Metadata) (bool, string) {
	switch m.State {
	case UpToDate:
		if m.Discard() {
			return false, "the operator chose this copy as the split-brain victim"
		}
		return true, ""
	case Outdated:
		return false, "copy is Outdated: the peer holds newer data"
	case Inconsistent:
		return false, "copy is Inconsistent (a resync into it did not finish)"
	}
	return false, fmt.Sprintf("copy is %s", m.State)
}

// GoSolo is the transition when the peer is lost and this copy carries on
// alone: the current generation becomes the bitmap generation (everything
// written from now on is marked), and newGen becomes current. If the copy
// is already marking (bitmap generation set: a resync never finished), its
// marks still cover everything since that generation, so only the current
// one changes. newGen must be random and never JustCreated or 0.
func GoSolo(m Metadata, newGen uint64) Metadata {
	if m.Gens.Bitmap == 0 {
		m.Gens.Bitmap = m.Gens.Current
	}
	m.Gens.Current = newGen
	m.Flags &^= FlagDiscardMyData
	return m
}

// NewCurrent starts a fresh data generation on a copy that is the initial
// sync source (both copies new): it then holds the reference data.
func NewCurrent(m Metadata, newGen uint64) Metadata {
	m.Gens.Current = newGen
	m.State = UpToDate
	return m
}

// BeginResync returns the metadata both copies must persist before the first
// byte is copied: the target becomes Inconsistent (so it never goes live
// half-copied). For a full sync the source's generations are rotated so that
// the target's generation equals the source's bitmap generation: a restart
// then decides bitmap resync and continues from the marks left, instead of
// starting the full sync again. The caller marks every region for a full
// sync. newGen is used only by that rotation.
func BeginResync(src, dst Metadata, full bool, newGen uint64) (Metadata, Metadata) {
	if src.Gens.Current == JustCreated {
		src = NewCurrent(src, newGen)
		newGen = mixGen(newGen)
	}
	if full {
		if src.Gens.Bitmap == 0 {
			src.Gens.Bitmap = src.Gens.Current
			src.Gens.Current = newGen
		}
		dst.Gens.Current = src.Gens.Bitmap
		dst.Gens.Bitmap = 0
	}
	dst.State = Inconsistent
	dst.ResyncCursor = 0
	src.ResyncCursor = 0
	return src, dst
}

// EndResync returns the metadata after every marked region was copied and
// the target flushed: the target takes the source's generations and becomes
// UpToDate; the source moves its bitmap generation into history. Persist
// the target first: a crash between the two writes then leaves equal
// current generations (in sync), and Settle tidies the source.
func EndResync(src, dst Metadata) (Metadata, Metadata) {
	if src.Gens.Bitmap != 0 {
		src.Gens.History[1] = src.Gens.History[0]
		src.Gens.History[0] = src.Gens.Bitmap
		src.Gens.Bitmap = 0
	}
	src.ResyncCursor = src.DataSize
	dst.Gens = src.Gens
	dst.State = UpToDate
	dst.Flags &^= FlagDiscardMyData | FlagCrashedPrimary
	dst.ResyncCursor = dst.DataSize
	return src, dst
}

// Settle tidies a copy found in sync with its peer whose marks are all
// clear: a leftover bitmap generation moves to history (as EndResync would
// have done before a crash interrupted it).
func Settle(m Metadata, marksClear bool) Metadata {
	if m.Gens.Bitmap != 0 && marksClear {
		m.Gens.History[1] = m.Gens.History[0]
		m.Gens.History[0] = m.Gens.Bitmap
		m.Gens.Bitmap = 0
	}
	return m
}

// Outdate marks a copy that knows its peer went on without it.
func Outdate(m Metadata) Metadata {
	if m.State == UpToDate {
		m.State = Outdated
	}
	return m
}

// MarkDiscard sets the operator's split-brain choice on the victim copy.
func MarkDiscard(m Metadata) Metadata {
	m.Flags |= FlagDiscardMyData
	return m
}

// mixGen derives a second generation from a random one (splitmix64's
// finaliser), for the one transition that needs two at once.
func mixGen(g uint64) uint64 {
	g ^= g >> 30
	g *= 0xbf58476d1ce4e5b9
	g ^= g >> 27
	g *= 0x94d049bb133111eb
	g ^= g >> 31
	if g <= JustCreated {
		g += JustCreated + 1
	}
	return g
}

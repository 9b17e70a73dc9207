package netstack

// Counters are the stack's traffic, drop and error counters. Every dropped
// frame or segment increments exactly one drop counter.
type Counters struct {
	RxFrames, RxBytes, TxFrames, TxBytes uint64

	RxBadEthernet, RxNotForUs, RxUnknownEtherType uint64
	TxQueueDrops                                  uint64

	ARPBad, ARPRequests, ARPReplies, ARPConflicts    uint64
	ARPEvictions, ARPExpired, ARPHoldDrops           uint64
	ARPResolveFailed                                 uint64
	IPBadHeader, IPNotForUs, IPBroadcastIgnored      uint64
	IPFragmentsDropped, IPBadSource, IPUnknownProto  uint64
	IPNoRoute                                        uint64
	ICMPBad, ICMPIgnored, ICMPEchoReplies            uint64
	TCPSegsIn, TCPSegsOut, TCPBadHeader              uint64
	TCPBadChecksum, TCPNoSocket, TCPDropped          uint64
	TCPListenOverflows, TCPSocketTableFull           uint64
	TCPPassiveOpens, TCPActiveOpens, TCPEstablished  uint64
	TCPClosed, TCPAborts, TCPResetsIn, TCPResetsOut  uint64
	TCPPAWSDrops, TCPOutOfWindow, TCPRcvWindowDrops  uint64
	TCPDupData, TCPChallengeACKs, TCPAckTooNew       uint64
	TCPAckTooOld, TCPDataAfterFin, TCPOOOSegs        uint64
	TCPOOODrops, TCPDupAcks, TCPFastRecoveries       uint64
	TCPFastRetrans, TCPRetransSegs, TCPRTOs          uint64
	TCPTimeouts, TCPWindowProbes, TCPKeepAliveProbes uint64
	TCPKeepAliveTimeouts, TCPSACKDrops               uint64
	TCPTimeWaitReused, TCPTimeWaitRecycled           uint64
	TCPLostRetrans, TCPTailLossProbes                uint64
	ARPNotForUs                                      uint64
}

// Counters returns a copy of the counters.
func (s *Stack) Counters() Counters { return s.ctr }

// fields lists every counter in a fixed order for the snapshot encoding.
func (c *Counters) fields() []*uint64 {
	return []*uint64{&c.RxFrames, &c.RxBytes, &c.TxFrames, &c.TxBytes,
		&c.RxBadEthernet, &c.RxNotForUs, &c.RxUnknownEtherType, &c.TxQueueDrops,
		&c.ARPBad, &c.ARPRequests, &c.ARPReplies, &c.ARPConflicts,
		&c.ARPEvictions, &c.ARPExpired, &c.ARPHoldDrops, &c.ARPResolveFailed,
		&c.IPBadHeader, &c.IPNotForUs, &c.IPBroadcastIgnored,
		&c.IPFragmentsDropped, &c.IPBadSource, &c.IPUnknownProto, &c.IPNoRoute,
		&c.ICMPBad, &c.ICMPIgnored, &c.ICMPEchoReplies,
		&c.TCPSegsIn, &c.TCPSegsOut, &c.TCPBadHeader,
		&c.TCPBadChecksum, &c.TCPNoSocket, &c.TCPDropped,
		&c.TCPListenOverflows, &c.TCPSocketTableFull,
		&c.TCPPassiveOpens, &c.TCPActiveOpens, &c.TCPEstablished,
		&c.TCPClosed, &c.TCPAborts, &c.TCPResetsIn, &c.TCPResetsOut,
		&c.TCPPAWSDrops, &c.TCPOutOfWindow, &c.TCPRcvWindowDrops,
		&c.TCPDupData, &c.TCPChallengeACKs, &c.TCPAckTooNew,
		&c.TCPAckTooOld, &c.TCPDataAfterFin, &c.TCPOOOSegs,
		&c.TCPOOODrops, &c.TCPDupAcks, &c.TCPFastRecoveries,
		&c.TCPFastRetrans, &c.TCPRetransSegs, &c.TCPRTOs,
		&c.TCPTimeouts, &c.TCPWindowProbes, &c.TCPKeepAliveProbes,
		&c.TCPKeepAliveTimeouts, &c.TCPSACKDrops,
		&c.TCPTimeWaitReused, &c.TCPTimeWaitRecycled, &c.TCPLostRetrans, &c.TCPTailLossProbes, &c.ARPNotForUs}
}

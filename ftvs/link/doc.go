// Package link is the CoServer link transport: one Session per peer, carried
// over one or two direct links (crossover cables), giving the lockstep layer
// a reliable, ordered, authenticated message stream that survives the loss
// of either link, plus heartbeats, peer-silence detection and RTT.
//
// # Connections
//
// Each link is one TCP connection, bound to the link's interface
// (SO_BINDTODEVICE) and local address, with TCP_NODELAY and no TCP
// keepalive (heartbeats do that job, faster), and TCP's retransmission
// timeout bounded to 10 ms..1 s (TCP_RTO_MIN_US/TCP_RTO_MAX_MS, Linux 6.15+):
// with the default 200 ms minimum one lost segment stalls a connection
// longer than LinkTimeout and reads as a dead link. Node 1 dials, node 2 listens
// (default port 7470); node 1 redials a link Reconnect after it goes down.
//
// # Handshake (pair-key authentication, both ways)
//
//	hello  = "FTVSLNK1" | version u16 | node u8 | link u8 | incarnation u64 | nonce [32]
//	proof  = HMAC-SHA256(key, "ftvs-link proof v1" | node | hello1 | hello2)
//
// Both sides write their hello, read the peer's, write their proof, read
// and check the peer's (hello1/hello2 are node 1's and node 2's). The proof
// is fresh per connection (both nonces) and bound to the prover's node
// number, so it can be neither replayed nor reflected. A peer whose hello is
// malformed, claims our node number or another link index, or whose proof
// is wrong is refused: the connection is closed and a WARN "link: peer
// refused" is logged with its address and the reason; Status counts
// AuthFails. The incarnation is a random number drawn at Start: a peer
// with a new one is a restarted process.
//
// # Frames
//
// After the handshake every frame is
//
//	length u32 | type u8 | 0 0 0 | AES-256-GCM(body), 16-byte tag
//
// where the 8-byte header is the AEAD's additional data, the key is
// HKDF-SHA256(pair key, salt = hello1|hello2, "ftvs-link v1 frames from node
// N") (one key per direction per connection), and the nonce is an implicit
// frame counter, so a forged, replayed, dropped or reordered frame fails to
// open and kills the connection. Bodies:
//
//	data (1): seq u64 | message type u8 | payload (at most MaxPayload)
//	ack  (2): cumulative seq u64 (every message up to it was delivered)
//	ping (3): sender clock u64 ns      pong (4): the ping's clock echoed
//
// A length above MaxPayload+25 or non-zero reserved bytes end the
// connection before anything is allocated.
//
// # Reliability and link failover
//
// Messages are numbered per direction from 1. Exactly one link, the active
// one, carries data; the receiver delivers only the next expected number and
// drops everything else (duplicates), acking cumulatively once its read
// buffer drains (at least every 64 messages); the ack of a small message
// the user took at once rides on the next frame sent (the user's reply,
// at the latest the heartbeat). On an idle link (nothing else
// unacknowledged, a message up to 64 KiB) Send seals and writes the
// message from the caller's goroutine; otherwise a writer goroutine per
// connection batches what is queued. The sender keeps every
// unacknowledged message (bounded by MaxUnacked bytes: Send returns
// ErrWindowFull rather than block). When the active link goes down, the
// first other link that is up becomes active and resends from the oldest
// unacknowledged message (go-back-N). Since TCP keeps each connection in
// order and a newly active link always starts at or below what the receiver
// expects, no gap can occur: the user sees every message once, in order.
// The active link stays active while it is up (no flapping back).
//
// When the peer comes back as a new incarnation, both streams restart from 1
// and messages queued for the old incarnation are dropped; the EventPeerUp
// says Restarted so the lockstep layer resynchronises it.
//
// # Heartbeats and silence
//
// Every link sends a ping every Heartbeat (default 20 ms); any frame counts
// as life. A link silent for LinkTimeout (default 150 ms) is closed
// (EventLinkDown) and redialled; the peer silent on every link for
// PeerTimeout (default 250 ms) raises EventPeerSilent, and the first frame
// heard after that EventPeerUp. A reader blocked because the user is not
// reading (MaxQueued bytes waiting) does not count as silence. RTT is the
// last ping's round trip per link.
//
// # Failure modes
//
//   - One of two links cut or its NIC gone: link down after LinkTimeout,
//     traffic moves to the other, no message lost or duplicated.
//   - Both links cut, peer alive: EventPeerSilent after PeerTimeout; the
//     lockstep layer (not this package) must rule out split brain.
//   - Peer process killed: its kernel resets the connections (link down at
//     once); a powered-off peer is detected by silence.
//   - Peer slower than the sender for long: ErrWindowFull.
//   - Wrong key, wrong cabling (link 0 wired to link 1), same node number
//     on both sides: refused and logged on both sides, retried forever.
package link

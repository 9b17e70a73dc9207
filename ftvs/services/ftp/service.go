package ftp

import (
	"crypto/subtle"
	"errors"
	"strconv"
	"strings"

	"github.com/ftvs/ftvs/ftvs/fsapi"
	"github.com/ftvs/ftvs/ftvs/services/svcutil"
	"github.com/ftvs/ftvs/ftvs/sockapi"
)

// Counters count the service's work and every refusal.
type Counters struct {
	Accepted      uint64
	RefusedConns  uint64 // 421 on accept: MaxConns reached
	Commands      uint64
	BadCommands   uint64 // syntax errors and unknown verbs
	LoginsOK      uint64
	LoginsFailed  uint64
	Transfers     uint64 // completed with 226
	FailedXfers   uint64 // ended with 425/426/451
	BytesSent     uint64 // file and listing bytes on data connections
	BytesReceived uint64 // uploaded bytes written to the store
	DataRefused   uint64 // data connections from a foreign address, or extra ones
	PasvExhausted uint64 // no free port in the passive range
	Timeouts      uint64
	Resets        uint64
}

func (c *Counters) fields() []*uint64 {
	return []*uint64{&c.Accepted, &c.RefusedConns, &c.Commands, &c.BadCommands, &c.LoginsOK, &c.LoginsFailed,
		&c.Transfers, &c.FailedXfers, &c.BytesSent, &c.BytesReceived, &c.DataRefused, &c.PasvExhausted,
		&c.Timeouts, &c.Resets}
}

// Transfer kinds.
const (
	xNone = iota
	xRetr
	xList // listing bytes in buf
	xStor // also APPE and REST+STOR: written at off
)

// transfer is the data transfer a control connection has asked for.
type transfer struct {
	kind uint8
	path string
	off  int64  // file offset of the next byte
	left int64  // RETR: bytes still to send
	buf  []byte // LIST/NLST/MLSD: bytes still to send
}

// ctl is one control connection; everything in it is part of the snapshot.
type ctl struct {
	sock       sockapi.SockID
	in, out    []byte
	user       string
	authed     bool
	canWrite   bool
	failures   int
	cwd        string // absolute, clean
	binary     bool
	rest       int64
	renameFrom string // absolute; "" when no RNFR pending
	pasvL      sockapi.SockID
	data       sockapi.SockID
	dataL      sockapi.SockID // listener data came from (0: dialed by PORT/EPRT)
	active     sockapi.Addr   // PORT/EPRT target; zero when none
	epsvAll    bool           // after EPSV ALL only EPSV sets up data (RFC 2428 4)
	x          transfer
	closeAfter bool
	peerEOF    bool
	lastActive int64
}

// Service is the FTP server. Create it with New.
type Service struct {
	cfg      Config
	files    fsapi.FileStore
	wfiles   fsapi.WritableFileStore // nil: the store is read-only
	lis      svcutil.Listener
	ctls     map[sockapi.SockID]*ctl
	owner    map[sockapi.SockID]sockapi.SockID // passive listener -> control socket
	dialed   map[sockapi.SockID]sockapi.SockID // active data socket -> control socket
	nextPasv uint16                            // where the next passive port search starts
	ctr      Counters

	scratch []byte // not state
}

const (
	scratchSize = 128 << 10
	maxOut      = 64 << 10 // control replies buffered before commands wait
)

// New makes the service. When files is also an fsapi.WritableFileStore,
// users with write access may change it.
func New(cfg Config, files fsapi.FileStore) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if files == nil {
		return nil, errors.New("ftp: no file store")
	}
	s := &Service{cfg: cfg.WithDefaults(), files: files, ctls: map[sockapi.SockID]*ctl{},
		owner: map[sockapi.SockID]sockapi.SockID{}, dialed: map[sockapi.SockID]sockapi.SockID{}}
	s.wfiles, _ = files.(fsapi.WritableFileStore)
	s.nextPasv = s.cfg.PasvMin
	return s, nil
}

// Name is the snapshot tag.
func (s *Service) Name() string { return "ftp" }

// Counters reports the counters.
func (s *Service) Counters() Counters { return s.ctr }

// Conns is how many control connections are open.
func (s *Service) Conns() int { return len(s.ctls) }

// Start opens the control listener.
func (s *Service) Start(sk sockapi.Sockets) error {
	return s.lis.Open(sk, "ftp", s.cfg.Port, s.cfg.Backlog)
}

// Owns reports whether l is the control listener or a passive listener of
// a live control connection (also after it closed, while its data
// connection lives: events name the listener a socket came from).
func (s *Service) Owns(l sockapi.SockID) bool {
	if !s.lis.Started {
		return false
	}
	_, ok := s.owner[l]
	return l == s.lis.ID || ok
}

// OwnsSock reports whether s is an active-mode data connection of ours.
func (s *Service) OwnsSock(id sockapi.SockID) bool {
	_, ok := s.dialed[id]
	return ok
}

// Handle reacts to one socket event.
func (s *Service) Handle(sk sockapi.Sockets, ev sockapi.Event, now int64) {
	if ev.Listener == s.lis.ID {
		switch ev.Kind {
		case sockapi.EvAccept:
			s.accept(sk, now)
		case sockapi.EvReadable, sockapi.EvWritable:
			if c := s.ctls[ev.Sock]; c != nil {
				s.pump(sk, c, now)
			}
		case sockapi.EvClosed:
			if c := s.ctls[ev.Sock]; c != nil {
				s.ctr.Resets++
				s.forget(sk, c)
			}
		}
		return
	}
	var c *ctl
	if ev.Listener == 0 {
		c = s.ctls[s.dialed[ev.Sock]]
	} else {
		c = s.ctls[s.owner[ev.Listener]]
	}
	if c == nil {
		return
	}
	switch {
	case ev.Kind == sockapi.EvAccept:
		s.acceptData(sk, c, ev.Listener, now)
	case ev.Sock != c.data:
		// A data socket we already let go of.
	case ev.Kind == sockapi.EvClosed:
		c.data, c.dataL = 0, 0
		if ev.Listener == 0 {
			delete(s.dialed, ev.Sock)
		}
		s.releaseListener(ev.Listener, c)
		if c.x.kind != xNone {
			s.endTransfer(sk, c, false, "426 Connection closed; transfer aborted.")
		}
		s.pump(sk, c, now)
	default:
		s.pump(sk, c, now)
	}
}

func (s *Service) accept(sk sockapi.Sockets, now int64) {
	svcutil.AcceptAll(sk, s.lis.ID, func(id sockapi.SockID) {
		if len(s.ctls) >= s.cfg.MaxConns {
			s.ctr.RefusedConns++
			_, _ = sk.Write(id, []byte("421 Too many connections, try later.\r\n"))
			_ = sk.Close(id)
			return
		}
		s.ctr.Accepted++
		c := &ctl{sock: id, cwd: "/", lastActive: now, out: []byte("220 ftvs FTP server ready.\r\n")}
		s.ctls[id] = c
		s.pump(sk, c, now)
	})
}

// acceptData takes the data connection of a passive listener: the first one
// from the control connection's address; the listener then closes.
func (s *Service) acceptData(sk sockapi.Sockets, c *ctl, l sockapi.SockID, now int64) {
	for {
		id, ok := sk.Accept(l)
		if !ok {
			break
		}
		if c.data != 0 || l != c.pasvL || sk.RemoteAddr(id).IP != sk.RemoteAddr(c.sock).IP {
			s.ctr.DataRefused++
			sk.Abort(id)
			continue
		}
		c.data, c.dataL = id, l
	}
	if c.data != 0 && c.pasvL == l {
		_ = sk.Close(l)
		c.pasvL = 0
	}
	s.pump(sk, c, now)
}

// releaseListener forgets a passive listener id once neither it nor a data
// connection from it lives.
func (s *Service) releaseListener(l sockapi.SockID, c *ctl) {
	if l != 0 && l != c.pasvL && l != c.dataL {
		delete(s.owner, l)
	}
}

func (s *Service) closePasv(sk sockapi.Sockets, c *ctl) {
	if c.pasvL != 0 {
		_ = sk.Close(c.pasvL)
		l := c.pasvL
		c.pasvL = 0
		s.releaseListener(l, c)
	}
}

// dropData ends the data connection: a graceful close after a complete
// transfer, a reset otherwise.
func (s *Service) dropData(sk sockapi.Sockets, c *ctl, graceful bool) {
	if c.data == 0 {
		return
	}
	if graceful {
		_ = sk.Close(c.data)
	} else {
		sk.Abort(c.data)
	}
	l := c.dataL
	if l == 0 {
		delete(s.dialed, c.data)
	}
	c.data, c.dataL = 0, 0
	s.releaseListener(l, c)
}

// forget drops a control connection and everything it holds.
func (s *Service) forget(sk sockapi.Sockets, c *ctl) {
	s.dropData(sk, c, false)
	s.closePasv(sk, c)
	delete(s.ctls, c.sock)
}

func (c *ctl) deadline(cfg *Config) int64 {
	if c.x.kind != xNone {
		return c.lastActive + int64(cfg.DataTimeout)
	}
	return c.lastActive + int64(cfg.IdleTimeout)
}

// NextDeadline is the earliest timeout, 0 with no connections.
func (s *Service) NextDeadline() int64 {
	return svcutil.EarliestDeadline(s.ctls, func(c *ctl) int64 { return c.deadline(&s.cfg) })
}

// Timer gives up stalled transfers (426) and closes idle sessions (421).
func (s *Service) Timer(sk sockapi.Sockets, now int64) {
	due := svcutil.DueIDs(s.ctls, func(c *ctl) bool { return c.deadline(&s.cfg) <= now })
	for _, id := range due {
		c := s.ctls[id]
		s.ctr.Timeouts++
		c.lastActive = now
		if c.x.kind != xNone {
			if c.data == 0 {
				s.endTransfer(sk, c, false, "425 Data connection never came; transfer aborted.")
			} else {
				s.endTransfer(sk, c, false, "426 Data connection stalled; transfer aborted.")
			}
		} else {
			c.reply("421 Idle timeout, closing control connection.")
			c.closeAfter = true
		}
		s.pump(sk, c, now)
	}
}

func (s *Service) buf() []byte {
	if s.scratch == nil {
		s.scratch = make([]byte, scratchSize)
	}
	return s.scratch
}

func (c *ctl) reply(line string) { c.out = append(append(c.out, line...), "\r\n"...) }

// pump moves a control connection and its transfer forward.
func (s *Service) pump(sk sockapi.Sockets, c *ctl, now int64) {
	for {
		progress := false
		if !c.peerEOF && !c.closeAfter && len(c.in) <= maxLine {
			p := s.buf()[:maxLine+1-len(c.in)]
			n, err := sk.Read(c.sock, p)
			if n > 0 {
				c.in = append(c.in, p[:n]...)
				progress = true
			}
			switch {
			case err == nil, errors.Is(err, sockapi.ErrWouldBlock):
			case errors.Is(err, sockapi.ErrEOF):
				c.peerEOF = true
				progress = true
			default:
				s.ctr.Resets++
				s.forget(sk, c)
				return
			}
		}
		for !c.closeAfter && len(c.out) < maxOut {
			cmd, n, err := ParseCommand(c.in)
			if err == nil && n == 0 {
				break
			}
			if err == nil && c.x.kind != xNone && !immediate(cmd.Verb) {
				break // waits for the transfer to end
			}
			progress = true
			c.lastActive = now
			if n == 0 { // a line too long with no end yet
				c.in = nil
			} else {
				c.in = append(c.in[:0], c.in[n:]...)
			}
			s.ctr.Commands++
			if err != nil {
				s.ctr.BadCommands++
				c.reply("500 " + err.Error() + ".")
				continue
			}
			s.command(sk, c, cmd, now)
		}
		if c.x.kind != xNone && c.data != 0 {
			moved, ok := s.pumpData(sk, c, now)
			if !ok {
				return
			}
			if moved {
				c.lastActive = now
				progress = true
			}
		}
		for len(c.out) > 0 {
			n, err := sk.Write(c.sock, c.out)
			if err != nil {
				s.ctr.Resets++
				s.forget(sk, c)
				return
			}
			if n == 0 {
				break
			}
			c.out = c.out[n:]
			progress = true
		}
		if len(c.out) == 0 {
			c.out = nil
			if c.closeAfter || (c.peerEOF && !progress) {
				s.dropData(sk, c, false)
				s.closePasv(sk, c)
				delete(s.ctls, c.sock)
				_ = sk.Close(c.sock)
				return
			}
		}
		if !progress {
			return
		}
	}
}

// immediate verbs are handled while a transfer runs.
func immediate(verb string) bool {
	switch verb {
	case "ABOR", "QUIT", "NOOP", "STAT":
		return true
	}
	return false
}

// endTransfer closes the data side and answers the transfer command.
func (s *Service) endTransfer(sk sockapi.Sockets, c *ctl, ok bool, line string) {
	if ok {
		s.ctr.Transfers++
	} else {
		s.ctr.FailedXfers++
	}
	s.dropData(sk, c, ok)
	s.closePasv(sk, c)
	c.x = transfer{}
	c.reply(line)
}

// pumpData moves the transfer's bytes. ok is false when the control
// connection is gone.
func (s *Service) pumpData(sk sockapi.Sockets, c *ctl, now int64) (moved, ok bool) {
	x := &c.x
	switch x.kind {
	case xList:
		for len(x.buf) > 0 {
			n, err := sk.Write(c.data, x.buf)
			if err != nil {
				s.endTransfer(sk, c, false, "426 Connection closed; transfer aborted.")
				return true, true
			}
			if n == 0 {
				return moved, true
			}
			x.buf = x.buf[n:]
			s.ctr.BytesSent += uint64(n)
			moved = true
		}
		s.endTransfer(sk, c, true, "226 Directory send OK.")
		return true, true
	case xRetr:
		for x.left > 0 {
			p := s.buf()
			p = svcutil.SendChunk(sk, c.data, p)
			if int64(len(p)) > x.left {
				p = p[:x.left]
			}
			if n, _ := s.files.ReadAt(x.path, p, x.off); n < len(p) {
				s.endTransfer(sk, c, false, "451 File read failed or the file shrank; transfer aborted.")
				return true, true
			}
			n, err := sk.Write(c.data, p)
			if err != nil {
				s.endTransfer(sk, c, false, "426 Connection closed; transfer aborted.")
				return true, true
			}
			x.off += int64(n)
			x.left -= int64(n)
			s.ctr.BytesSent += uint64(n)
			if n > 0 {
				moved = true
			}
			if n < len(p) {
				return moved, true
			}
		}
		s.endTransfer(sk, c, true, "226 Transfer complete.")
		return true, true
	case xStor:
		for {
			p := s.buf()
			n, err := sk.Read(c.data, p)
			if n > 0 {
				w, werr := s.wfiles.WriteAt(x.path, p[:n], x.off, now/1e9)
				x.off += int64(w)
				s.ctr.BytesReceived += uint64(w)
				moved = true
				if werr != nil {
					s.endTransfer(sk, c, false, "451 Write failed; transfer aborted.")
					return true, true
				}
			}
			switch {
			case err == nil:
				continue
			case errors.Is(err, sockapi.ErrWouldBlock):
				return moved, true
			case errors.Is(err, sockapi.ErrEOF):
				// 226 tells the client its file is safe: durable first.
				if serr := fsapi.Sync(s.files); serr != nil {
					s.endTransfer(sk, c, false, "451 Could not make the file durable; transfer aborted.")
					return true, true
				}
				s.endTransfer(sk, c, true, "226 Transfer complete.")
				return true, true
			default:
				s.endTransfer(sk, c, false, "426 Connection closed; transfer aborted.")
				return true, true
			}
		}
	}
	return moved, true
}

// loginFree verbs work before login.
func loginFree(verb string) bool {
	switch verb {
	case "USER", "PASS", "QUIT", "FEAT", "SYST", "OPTS", "NOOP", "HELP", "AUTH", "PBSZ", "PROT":
		return true
	}
	return false
}

// command carries out one command.
func (s *Service) command(sk sockapi.Sockets, c *ctl, cmd Command, now int64) {
	// REST holds until a transfer command uses it (clients put PASV,
	// TYPE or SIZE in between, and vsftpd keeps it too).
	rest := c.rest
	switch cmd.Verb {
	case "RETR", "STOR", "APPE", "LIST", "NLST", "MLSD":
		c.rest = 0
	}
	if cmd.Verb != "RNTO" && cmd.Verb != "RNFR" {
		c.renameFrom = ""
	}
	if !c.authed && !loginFree(cmd.Verb) {
		c.reply("530 Please login with USER and PASS.")
		return
	}
	arg := cmd.Arg
	switch cmd.Verb {
	case "USER":
		c.user, c.authed, c.canWrite = arg, false, false
		if arg == "" {
			c.reply("501 USER needs a name.")
			return
		}
		if isAnon(arg) {
			c.reply("331 Anonymous login ok, send your e-mail address as password.")
		} else {
			c.reply("331 Password required for " + arg + ".")
		}
	case "PASS":
		if c.user == "" || c.authed {
			c.reply("503 Login with USER first.")
			return
		}
		if ok, write := s.checkLogin(c.user, arg); ok {
			s.ctr.LoginsOK++
			c.authed, c.canWrite = true, write
			c.reply("230 Login successful.")
			return
		}
		s.ctr.LoginsFailed++
		c.failures++
		c.user = ""
		c.reply("530 Login incorrect.")
		if c.failures >= 3 {
			c.closeAfter = true
		}
	case "QUIT":
		if c.x.kind != xNone {
			s.endTransfer(sk, c, false, "426 Transfer aborted by QUIT.")
		}
		c.reply("221 Goodbye.")
		c.closeAfter = true
	case "NOOP":
		c.reply("200 NOOP ok.")
	case "SYST":
		c.reply("215 UNIX Type: L8")
	case "FEAT":
		c.reply("211-Features:")
		for _, f := range []string{"EPRT", "EPSV", "PASV", "MDTM", "MLST type*;size*;modify*;", "REST STREAM", "SIZE", "TVFS", "UTF8"} {
			c.reply(" " + f)
		}
		c.reply("211 End")
	case "OPTS":
		switch o := strings.ToUpper(strings.TrimSpace(arg)); {
		case o == "UTF8 ON" || o == "UTF8":
			c.reply("200 Always in UTF8 mode.")
		case strings.HasPrefix(o, "MLST"):
			c.reply("200 MLST OPTS type;size;modify;")
		default:
			c.reply("501 Option not understood.")
		}
	case "HELP":
		c.reply("214 See RFC 959, RFC 2428 and RFC 3659; FEAT lists the extensions.")
	case "AUTH", "PBSZ", "PROT", "ADAT", "CCC":
		c.reply("502 TLS is not supported.")
	case "STAT":
		if arg != "" {
			c.reply("502 STAT with an argument is not supported.")
			return
		}
		c.reply("211-ftvs FTP server status:")
		c.reply(" Logged in as " + c.user)
		if c.x.kind != xNone {
			c.reply(" Transfer in progress at offset " + strconv.FormatInt(c.x.off, 10))
		}
		c.reply("211 End of status")
	case "ABOR":
		if c.x.kind != xNone {
			s.endTransfer(sk, c, false, "426 Transfer aborted.")
		} else {
			s.dropData(sk, c, false)
			s.closePasv(sk, c)
		}
		c.reply("226 ABOR successful.")
	case "PWD", "XPWD":
		c.reply("257 " + quote(c.cwd) + " is the current directory.")
	case "CWD", "XCWD", "CDUP", "XCUP":
		target := ".."
		if cmd.Verb == "CWD" || cmd.Verb == "XCWD" {
			target = arg
		}
		p := resolve(c.cwd, target)
		if fi, err := s.files.Stat(storePath(p)); err != nil || !fi.Dir {
			c.reply("550 Failed to change directory.")
			return
		}
		c.cwd = p
		c.reply("250 Directory successfully changed.")
	case "TYPE":
		switch strings.ToUpper(strings.Join(strings.Fields(arg), " ")) {
		case "I", "L 8":
			c.binary = true
			c.reply("200 Switching to Binary mode.")
		case "A", "A N":
			c.binary = false
			c.reply("200 Switching to ASCII mode.")
		default:
			c.reply("504 TYPE " + arg + " not supported.")
		}
	case "MODE":
		s.only(c, arg, "S", "200 Mode set to S.", "504 Only stream mode is supported.")
	case "STRU":
		s.only(c, arg, "F", "200 Structure set to F.", "504 Only file structure is supported.")
	case "ALLO":
		c.reply("202 ALLO not needed.")
	case "PORT", "EPRT":
		if c.epsvAll {
			c.reply("503 Only EPSV after EPSV ALL.")
			return
		}
		s.port(sk, c, cmd.Verb, arg)
	case "PASV", "EPSV":
		if cmd.Verb == "PASV" && c.epsvAll {
			c.reply("503 Only EPSV after EPSV ALL.")
			return
		}
		if cmd.Verb == "EPSV" && arg != "" {
			switch a := strings.ToUpper(strings.TrimSpace(arg)); a {
			case "ALL":
				c.epsvAll = true
				c.reply("200 EPSV ALL ok.")
				return
			case "1":
			default:
				c.reply("522 Network protocol not supported, use (1)")
				return
			}
		}
		s.passive(sk, c, cmd.Verb == "EPSV")
	case "REST":
		n, err := strconv.ParseInt(strings.TrimSpace(arg), 10, 64)
		if err != nil || n < 0 {
			c.reply("501 REST needs a byte offset.")
			return
		}
		c.rest = n
		c.reply("350 Restarting at " + strconv.FormatInt(n, 10) + ". Send STOR or RETR to continue.")
	case "SIZE", "MDTM":
		fi, err := s.files.Stat(storePath(resolve(c.cwd, arg)))
		if err != nil || fi.Dir {
			c.reply("550 Could not get file " + strings.ToLower(cmd.Verb) + ".")
			return
		}
		if cmd.Verb == "SIZE" {
			c.reply("213 " + strconv.FormatInt(fi.Size, 10))
		} else {
			c.reply("213 " + mdtm(fi.ModTime))
		}
	case "MLST":
		p := resolve(c.cwd, arg)
		fi, err := s.files.Stat(storePath(p))
		if err != nil {
			c.reply("550 No such file or directory.")
			return
		}
		c.reply("250- Listing " + p)
		c.out = append(c.out, ' ')
		c.out = append(c.out, factLine(fi, p)...)
		c.reply("250 End")
	case "LIST", "NLST", "MLSD":
		s.list(sk, c, cmd.Verb, arg, now)
	case "RETR":
		s.retr(sk, c, arg, rest, now)
	case "STOR", "APPE":
		s.stor(sk, c, cmd.Verb == "APPE", arg, rest, now)
	case "DELE", "MKD", "XMKD", "RMD", "XRMD", "RNFR", "RNTO":
		s.change(c, cmd.Verb, arg, now)
	default:
		s.ctr.BadCommands++
		c.reply("502 Command " + cmd.Verb + " not implemented.")
	}
}

func (s *Service) only(c *ctl, arg, want, ok, no string) {
	if strings.EqualFold(strings.TrimSpace(arg), want) {
		c.reply(ok)
	} else {
		c.reply(no)
	}
}

func isAnon(user string) bool { return user == "anonymous" || user == "ftp" }

func (s *Service) checkLogin(user, pass string) (ok, write bool) {
	if isAnon(user) {
		return s.cfg.Anonymous, s.cfg.AnonymousWrite
	}
	h := HashPassword(pass)
	for _, u := range s.cfg.Users {
		if u.Name == user {
			return subtle.ConstantTimeCompare([]byte(h), []byte(strings.ToLower(u.PasswordSHA256))) == 1, u.Write
		}
	}
	return false, false
}

// port takes a PORT or EPRT target. Only the control connection's own
// address is accepted (no FTP bounce), and only unprivileged ports.
func (s *Service) port(sk sockapi.Sockets, c *ctl, verb, arg string) {
	if _, ok := sk.(sockapi.Dialer); !ok {
		c.reply("502 Active mode is not supported; use PASV or EPSV.")
		return
	}
	var a sockapi.Addr
	var ok bool
	if verb == "PORT" {
		a, ok = parsePORT(arg)
	} else {
		a, ok = parseEPRT(arg)
		if !ok {
			c.reply("522 Network protocol not supported, use (1)")
			return
		}
	}
	if !ok {
		c.reply("501 Syntax error in " + verb + " argument.")
		return
	}
	if a.IP != sk.RemoteAddr(c.sock).IP || a.Port < 1024 {
		c.reply("500 Illegal " + verb + ": only your own address and a port from 1024 up.")
		return
	}
	s.dropData(sk, c, false)
	s.closePasv(sk, c)
	c.active = a
	c.reply("200 " + verb + " command successful. Consider using PASV.")
}

// passive opens a data listener on the next free port of the range,
// searching from where the last search ended (deterministic).
func (s *Service) passive(sk sockapi.Sockets, c *ctl, ext bool) {
	s.dropData(sk, c, false)
	s.closePasv(sk, c)
	c.active = sockapi.Addr{}
	n := int(s.cfg.PasvMax) - int(s.cfg.PasvMin) + 1
	if s.nextPasv < s.cfg.PasvMin || s.nextPasv > s.cfg.PasvMax {
		s.nextPasv = s.cfg.PasvMin
	}
	for i := 0; i < n; i++ {
		port := s.nextPasv
		if s.nextPasv == s.cfg.PasvMax {
			s.nextPasv = s.cfg.PasvMin
		} else {
			s.nextPasv++
		}
		l, err := sk.Listen(port, 1)
		if err != nil {
			continue
		}
		c.pasvL = l
		s.owner[l] = c.sock
		if ext {
			c.reply("229 Entering Extended Passive Mode (|||" + strconv.Itoa(int(port)) + "|)")
			return
		}
		ip := sk.LocalAddr(c.sock).IP
		c.reply("227 Entering Passive Mode (" + strconv.Itoa(int(ip[0])) + "," + strconv.Itoa(int(ip[1])) + "," +
			strconv.Itoa(int(ip[2])) + "," + strconv.Itoa(int(ip[3])) + "," +
			strconv.Itoa(int(port>>8)) + "," + strconv.Itoa(int(port&0xff)) + ").")
		return
	}
	s.ctr.PasvExhausted++
	c.reply("425 No free passive port, try again later.")
}

// begin starts a transfer once a data connection exists or is awaited,
// dialing the PORT/EPRT target in active mode (one connection per PORT).
func (s *Service) begin(sk sockapi.Sockets, c *ctl, x transfer, line string) bool {
	if !s.dataReady(sk, c) {
		return false
	}
	c.x = x
	c.reply(line)
	return true
}

// dataReady makes sure a data connection exists or is coming, or replies 425.
func (s *Service) dataReady(sk sockapi.Sockets, c *ctl) bool {
	if c.data != 0 || c.pasvL != 0 {
		return true
	}
	if c.active.Port != 0 {
		d, ok := sk.(sockapi.Dialer)
		if ok {
			id, err := d.Connect(c.active)
			if err == nil {
				c.data, c.dataL = id, 0
				s.dialed[id] = c.sock
				c.active = sockapi.Addr{}
				return true
			}
		}
		c.active = sockapi.Addr{}
		c.reply("425 Cannot open the data connection.")
		return false
	}
	c.reply("425 Use PORT, EPRT, PASV or EPSV first.")
	return false
}

func (s *Service) list(sk sockapi.Sockets, c *ctl, verb, arg string, now int64) {
	if verb != "MLSD" {
		arg = listArg(arg)
	}
	p := resolve(c.cwd, arg)
	fi, err := s.files.Stat(storePath(p))
	if err != nil {
		c.reply("550 No such file or directory.")
		return
	}
	var entries []fsapi.FileInfo
	if fi.Dir {
		entries, err = s.files.ReadDir(storePath(p))
		if err != nil {
			c.reply("550 Cannot read directory.")
			return
		}
	} else if verb == "MLSD" {
		c.reply("501 MLSD needs a directory.")
		return
	} else {
		entries = []fsapi.FileInfo{fi}
	}
	if len(entries) > s.cfg.MaxListing {
		entries = entries[:s.cfg.MaxListing]
	}
	var b []byte
	for _, e := range entries {
		switch verb {
		case "LIST":
			b = append(b, lsLine(e, now/1e9)...)
		case "NLST":
			b = append(append(b, e.Name...), "\r\n"...)
		default:
			b = append(b, factLine(e, e.Name)...)
		}
	}
	s.begin(sk, c, transfer{kind: xList, buf: b}, "150 Here comes the directory listing.")
}

func (s *Service) retr(sk sockapi.Sockets, c *ctl, arg string, rest int64, now int64) {
	p := storePath(resolve(c.cwd, arg))
	fi, err := s.files.Stat(p)
	if err != nil || fi.Dir {
		c.reply("550 Failed to open file.")
		return
	}
	if rest > fi.Size {
		c.reply("554 Restart offset " + strconv.FormatInt(rest, 10) + " is beyond the end of the file.")
		return
	}
	mode := "ASCII"
	if c.binary {
		mode = "BINARY"
	}
	s.begin(sk, c, transfer{kind: xRetr, path: p, off: rest, left: fi.Size - rest},
		"150 Opening "+mode+" mode data connection for "+arg+" ("+strconv.FormatInt(fi.Size-rest, 10)+" bytes).")
}

func (s *Service) writeDenied(c *ctl) bool {
	if s.wfiles == nil || !c.canWrite {
		c.reply("550 Permission denied.")
		return true
	}
	return false
}

func (s *Service) stor(sk sockapi.Sockets, c *ctl, appe bool, arg string, rest int64, now int64) {
	if s.writeDenied(c) {
		return
	}
	if arg == "" {
		c.reply("501 STOR needs a file name.")
		return
	}
	if c.data == 0 && c.pasvL == 0 && c.active.Port == 0 {
		c.reply("425 Use PORT, EPRT, PASV or EPSV first.")
		return
	}
	p := storePath(resolve(c.cwd, arg))
	mt := now / 1e9
	fi, err := s.files.Stat(p)
	exists := err == nil
	if exists && fi.Dir {
		c.reply("550 " + arg + " is a directory.")
		return
	}
	var off int64
	switch {
	case appe && exists:
		off = fi.Size
	case rest > 0:
		if !exists || rest > fi.Size {
			c.reply("554 Restart offset " + strconv.FormatInt(rest, 10) + " is beyond the end of the file.")
			return
		}
		err = s.wfiles.Truncate(p, rest, mt)
		off = rest
	default:
		err = s.wfiles.Create(p, mt)
	}
	if !exists && appe {
		err = s.wfiles.Create(p, mt)
	}
	if err != nil {
		c.reply("553 Could not create file.")
		return
	}
	s.begin(sk, c, transfer{kind: xStor, path: p, off: off}, "150 Ok to send data.")
}

// change carries out DELE, MKD, RMD, RNFR and RNTO.
func (s *Service) change(c *ctl, verb, arg string, now int64) {
	if s.writeDenied(c) {
		return
	}
	if arg == "" {
		c.reply("501 " + verb + " needs a path.")
		return
	}
	abs := resolve(c.cwd, arg)
	p := storePath(abs)
	mt := now / 1e9
	if p == "" {
		c.reply("550 The root cannot be changed.")
		return
	}
	var err error
	switch verb {
	case "DELE":
		if err = s.wfiles.Remove(p, mt); err == nil {
			c.reply("250 Delete operation successful.")
		}
	case "MKD", "XMKD":
		if err = s.wfiles.Mkdir(p, mt); err == nil {
			c.reply("257 " + quote(abs) + " created.")
		}
	case "RMD", "XRMD":
		if err = s.wfiles.Rmdir(p, mt); err == nil {
			c.reply("250 Remove directory operation successful.")
		}
	case "RNFR":
		if _, err = s.files.Stat(p); err == nil {
			c.renameFrom = abs
			c.reply("350 Ready for RNTO.")
		}
	case "RNTO":
		if c.renameFrom == "" {
			c.reply("503 RNFR required first.")
			return
		}
		from := c.renameFrom
		c.renameFrom = ""
		if err = s.wfiles.Rename(storePath(from), p, mt); err == nil {
			c.reply("250 Rename successful.")
		}
	}
	if err != nil {
		c.reply("550 " + verb + " failed: " + fsReason(err) + ".")
	}
}

// fsReason names a store error without leaking host paths.
func fsReason(err error) string {
	for _, e := range []error{fsapi.ErrNotExist, fsapi.ErrExist, fsapi.ErrNotEmpty, fsapi.ErrIsDir, fsapi.ErrNotDir, fsapi.ErrInvalid} {
		if errors.Is(err, e) {
			return e.Error()
		}
	}
	return "operation failed"
}

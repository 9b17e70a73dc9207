package alert

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gosnmp/gosnmp"
)

// OIDs of docs/mib/FTVS-MIB.txt. 32473 is the private enterprise number RFC
// 5612 reserves for documentation: a site that owns a number can rebase the
// MIB and set SNMP.Base.
const (
	MIBBase       = "1.3.6.1.4.1.32473.1"
	oidSysUpTime  = "1.3.6.1.2.1.1.3.0"
	oidSnmpTrapID = "1.3.6.1.6.3.1.1.4.1.0"
)

// TrapOID is the notification OID of a kind under base.
func TrapOID(base string, k Kind) string { return base + ".0." + strconv.Itoa(kinds[k].trap) }

// SNMP sends SNMPv2-Trap PDUs, v2c (community) or v3 (USM user, as the
// authoritative engine).
type SNMP struct {
	Target    string // host:port, usually :162
	Version   string // "2c" or "3"
	Community string // v2c
	// v3
	User      string
	AuthProto string // MD5, SHA, SHA224, SHA256, SHA384, SHA512 or "" (noAuth)
	AuthPass  string
	PrivProto string // DES, AES, AES192, AES256 or "" (noPriv)
	PrivPass  string
	EngineID  []byte // this sender's engine ID; see DefaultEngineID
	Base      string // default MIBBase

	started time.Time
}

// DefaultEngineID is an RFC 3411 engine ID of text format for name.
func DefaultEngineID(name string) []byte {
	if len(name) > 27 {
		name = name[:27]
	}
	return append([]byte{0x80, 0x00, 0x7e, 0xd9, 0x04}, name...)
}

// Name implements Channel.
func (s *SNMP) Name() string { return "snmp v" + s.Version + " " + s.Target }

// Send implements Channel.
func (s *SNMP) Send(ctx context.Context, a Alert) error {
	if s.started.IsZero() {
		s.started = time.Now()
	}
	host, port, err := net.SplitHostPort(s.Target)
	if err != nil {
		return Permanent(fmt.Errorf("snmp: target %q: %w", s.Target, err))
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return Permanent(fmt.Errorf("snmp: target %q: bad port", s.Target))
	}
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Transport: "udp", Timeout: 5 * time.Second, Retries: 0, Context: ctx, MaxOids: gosnmp.MaxOids}
	switch s.Version {
	case "2c":
		g.Version, g.Community = gosnmp.Version2c, s.Community
	case "3":
		usm, flags, err := s.usm()
		if err != nil {
			return Permanent(err)
		}
		g.Version, g.SecurityModel, g.MsgFlags, g.SecurityParameters = gosnmp.Version3, gosnmp.UserSecurityModel, flags, usm
	default:
		return Permanent(fmt.Errorf("snmp: version %q; want 2c or 3", s.Version))
	}
	if err := g.Connect(); err != nil {
		return fmt.Errorf("snmp %s: %w", s.Target, err)
	}
	defer g.Conn.Close()
	if _, err := g.SendTrap(gosnmp.SnmpTrap{Variables: s.varbinds(a)}); err != nil {
		return fmt.Errorf("snmp %s: %w", s.Target, err)
	}
	return nil
}

func (s *SNMP) varbinds(a Alert) []gosnmp.SnmpPDU {
	base := s.Base
	if base == "" {
		base = MIBBase
	}
	sev := map[Severity]int{Critical: 1, Warning: 2, Info: 3}[a.Severity]
	up := uint32(time.Since(s.started) / (10 * time.Millisecond))
	obj := func(n int) string { return base + ".1." + strconv.Itoa(n) + ".0" }
	return []gosnmp.SnmpPDU{
		{Name: oidSysUpTime, Type: gosnmp.TimeTicks, Value: up},
		{Name: oidSnmpTrapID, Type: gosnmp.ObjectIdentifier, Value: TrapOID(base, a.Kind)},
		{Name: obj(1), Type: gosnmp.Integer, Value: sev},
		{Name: obj(2), Type: gosnmp.OctetString, Value: []byte(a.Host)},
		{Name: obj(3), Type: gosnmp.Integer, Value: a.Node},
		{Name: obj(4), Type: gosnmp.OctetString, Value: []byte(a.Component)},
		{Name: obj(5), Type: gosnmp.OctetString, Value: []byte(trim(a.Detail, 255))},
		{Name: obj(6), Type: gosnmp.OctetString, Value: []byte(a.Kind)},
	}
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (s *SNMP) usm() (*gosnmp.UsmSecurityParameters, gosnmp.SnmpV3MsgFlags, error) {
	if s.User == "" {
		return nil, 0, fmt.Errorf("snmp v3: no user")
	}
	auth := map[string]gosnmp.SnmpV3AuthProtocol{"": gosnmp.NoAuth, "MD5": gosnmp.MD5, "SHA": gosnmp.SHA,
		"SHA224": gosnmp.SHA224, "SHA256": gosnmp.SHA256, "SHA384": gosnmp.SHA384, "SHA512": gosnmp.SHA512}
	priv := map[string]gosnmp.SnmpV3PrivProtocol{"": gosnmp.NoPriv, "DES": gosnmp.DES, "AES": gosnmp.AES,
		"AES192": gosnmp.AES192, "AES256": gosnmp.AES256}
	ap, ok := auth[strings.ToUpper(s.AuthProto)]
	if !ok {
		return nil, 0, fmt.Errorf("snmp v3: auth protocol %q unknown", s.AuthProto)
	}
	pp, ok := priv[strings.ToUpper(s.PrivProto)]
	if !ok {
		return nil, 0, fmt.Errorf("snmp v3: privacy protocol %q unknown", s.PrivProto)
	}
	flags := gosnmp.NoAuthNoPriv
	switch {
	case ap != gosnmp.NoAuth && pp != gosnmp.NoPriv:
		flags = gosnmp.AuthPriv
	case ap != gosnmp.NoAuth:
		flags = gosnmp.AuthNoPriv
	case pp != gosnmp.NoPriv:
		return nil, 0, fmt.Errorf("snmp v3: privacy needs authentication")
	}
	eid := s.EngineID
	if len(eid) == 0 {
		eid = DefaultEngineID("ftvs")
	}
	return &gosnmp.UsmSecurityParameters{UserName: s.User, AuthoritativeEngineID: string(eid),
		AuthoritativeEngineBoots: 1, AuthoritativeEngineTime: uint32(time.Since(s.started) / time.Second),
		AuthenticationProtocol: ap, AuthenticationPassphrase: s.AuthPass,
		PrivacyProtocol: pp, PrivacyPassphrase: s.PrivPass}, flags, nil
}

// EngineIDHex is the engine ID as snmptrapd's createUser -e wants it.
func EngineIDHex(id []byte) string { return "0x" + hex.EncodeToString(id) }

package alert

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Debian ships no IETF base MIBs (they are in non-free snmp-mibs-downloader),
// so the test writes the few definitions FTVS-MIB imports; net-snmp knows the
// SMIv2 macros itself.
var baseMIBs = map[string]string{
	"SNMPv2-SMI.txt": "SNMPv2-SMI DEFINITIONS ::= BEGIN\norg ::= { iso 3 }\ndod ::= { org 6 }\ninternet ::= { dod 1 }\nprivate ::= { internet 4 }\nenterprises ::= { private 1 }\nEND\n",
	"SNMPv2-TC.txt": "SNMPv2-TC DEFINITIONS ::= BEGIN\nIMPORTS TEXTUAL-CONVENTION FROM SNMPv2-SMI;\n" +
		"DisplayString ::= TEXTUAL-CONVENTION\n DISPLAY-HINT \"255a\"\n STATUS current\n DESCRIPTION \"Text.\"\n SYNTAX OCTET STRING (SIZE (0..255))\nEND\n",
	"SNMPv2-CONF.txt": "SNMPv2-CONF DEFINITIONS ::= BEGIN\nEND\n",
}

func mibName(k Kind) string {
	var b strings.Builder
	b.WriteString("ftvs")
	for _, w := range strings.Split(string(k), "-") {
		if w == "coserver" {
			b.WriteString("CoServer")
			continue
		}
		b.WriteString(strings.ToUpper(w[:1]) + w[1:])
	}
	return b.String()
}

// TestMIBMatchesTrapOIDs resolves every notification of docs/mib/FTVS-MIB.txt
// with net-snmp's snmptranslate and compares it with the OID the SNMP channel
// sends, so the MIB and the code cannot drift apart.
func TestMIBMatchesTrapOIDs(t *testing.T) {
	bin, err := exec.LookPath("snmptranslate")
	if err != nil {
		t.Skip("snmptranslate not installed (Debian package snmp)")
	}
	dir := t.TempDir()
	for name, text := range baseMIBs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mib, err := os.ReadFile("../../../docs/mib/FTVS-MIB.txt")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "FTVS-MIB.txt"), mib, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-M", dir, "-m", "FTVS-MIB", "-On"}
	var names []string
	for _, k := range Kinds() {
		names = append(names, "FTVS-MIB::"+mibName(k))
	}
	for _, o := range []string{"Severity", "Host", "Node", "Component", "Detail", "Kind"} {
		names = append(names, "FTVS-MIB::ftvsAlert"+o)
	}
	cmd := exec.Command(bin, append(args, names...)...)
	cmd.Env = append(os.Environ(), "MIBDIRS="+dir, "MIBS=", "SNMP_PERSISTENT_DIR="+dir, "SNMPCONFPATH="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("snmptranslate: %v\n%s", err, out)
	}
	var oids []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, ".") {
			oids = append(oids, l)
		}
	}
	if len(oids) != len(names) {
		t.Fatalf("snmptranslate resolved %d of %d names:\n%s", len(oids), len(names), out)
	}
	for i, k := range Kinds() {
		if want := "." + TrapOID(MIBBase, k); oids[i] != want {
			t.Errorf("%s: MIB says %s, code sends %s", mibName(k), oids[i], want)
		}
	}
	for i := range 6 {
		if want := "." + MIBBase + ".1." + string(rune('1'+i)); oids[len(Kinds())+i] != want {
			t.Errorf("%s: MIB says %s, code sends %s.0", names[len(Kinds())+i], oids[len(Kinds())+i], want)
		}
	}
}

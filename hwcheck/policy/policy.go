// Package policy reads the YAML file that relaxes a hardware comparison:
// paths whose unverified (unknown) values are tolerated, and paths whose
// differences are downgraded to a warning or information.
//
//	version: 1
//	tolerate_unverified:
//	  - bios.boot_mode
//	  - memory.dimms[*].serial
//	downgrade:
//	  - path: network.nics[*].firmware_version
//	    to: info
//
// Patterns match comparison paths segment by segment (segments are split at
// dots outside brackets): "*" matches any characters within one segment,
// and a segment "**" matches any number of segments.
package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// Severity ranks a difference between two inventories.
type Severity string

// The severities, most severe first. Unverified means a value is unknown on
// at least one side.
const (
	Fatal      Severity = "fatal"
	Unverified Severity = "unverified"
	Warning    Severity = "warning"
	Info       Severity = "info"
)

// Policy is a parsed policy file. The zero value tolerates nothing.
type Policy struct {
	Tolerate  []Pattern
	Downgrade []Downgrade
}

// Downgrade lowers the severity of differences at matching paths.
type Downgrade struct {
	Pattern Pattern
	To      Severity
}

// Tolerates reports whether an unverified value at path is accepted.
func (p *Policy) Tolerates(path string) bool {
	if p == nil {
		return false
	}
	for _, t := range p.Tolerate {
		if t.Match(path) {
			return true
		}
	}
	return false
}

// Severity returns the severity for path: the first matching downgrade's,
// else def.
func (p *Policy) Severity(path string, def Severity) Severity {
	if p == nil {
		return def
	}
	for _, d := range p.Downgrade {
		if d.Pattern.Match(path) {
			return d.To
		}
	}
	return def
}

// Load reads and parses a policy file.
func Load(file string) (*Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(file, data)
}

// Parse parses policy YAML; name labels errors ("name:LINE: field: what").
func Parse(name string, data []byte) (*Policy, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%s: empty policy file (want at least \"version: 1\")", name)
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	errAt := func(n *yaml.Node, field, format string, args ...any) error {
		return fmt.Errorf("%s:%d: %s: %s", name, n.Line, field, fmt.Sprintf(format, args...))
	}
	if root.Kind != yaml.MappingNode {
		return nil, errAt(root, "(top level)", "want a mapping with version, tolerate_unverified, downgrade")
	}
	p := &Policy{}
	version := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		switch key.Value {
		case "version":
			if val.Kind != yaml.ScalarNode || val.Value != "1" {
				return nil, errAt(val, "version", "%q is not a supported version (want 1)", val.Value)
			}
			version = true
		case "tolerate_unverified":
			if val.Kind != yaml.SequenceNode {
				return nil, errAt(val, "tolerate_unverified", "want a list of path patterns")
			}
			for j, item := range val.Content {
				field := fmt.Sprintf("tolerate_unverified[%d]", j)
				pat, err := patternNode(item)
				if err != nil {
					return nil, errAt(item, field, "%v", err)
				}
				p.Tolerate = append(p.Tolerate, pat)
			}
		case "downgrade":
			if val.Kind != yaml.SequenceNode {
				return nil, errAt(val, "downgrade", "want a list of {path, to} entries")
			}
			for j, item := range val.Content {
				d, err := downgradeNode(item, fmt.Sprintf("downgrade[%d]", j), errAt)
				if err != nil {
					return nil, err
				}
				p.Downgrade = append(p.Downgrade, d)
			}
		default:
			return nil, errAt(key, key.Value, "unknown field (want version, tolerate_unverified, downgrade)")
		}
	}
	if !version {
		return nil, errAt(root, "version", "missing (want \"version: 1\")")
	}
	return p, nil
}

type errAtFunc func(n *yaml.Node, field, format string, args ...any) error

func downgradeNode(n *yaml.Node, field string, errAt errAtFunc) (Downgrade, error) {
	var d Downgrade
	if n.Kind != yaml.MappingNode {
		return d, errAt(n, field, "want a mapping with path and to")
	}
	var havePath, haveTo bool
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		switch key.Value {
		case "path":
			pat, err := patternNode(val)
			if err != nil {
				return d, errAt(val, field+".path", "%v", err)
			}
			d.Pattern, havePath = pat, true
		case "to":
			switch s := Severity(val.Value); {
			case val.Kind == yaml.ScalarNode && (s == Warning || s == Info):
				d.To, haveTo = s, true
			default:
				return d, errAt(val, field+".to", "%q is not a severity a difference can be downgraded to (warning, info)", val.Value)
			}
		default:
			return d, errAt(key, field+"."+key.Value, "unknown field (want path, to)")
		}
	}
	if !havePath {
		return d, errAt(n, field+".path", "missing")
	}
	if !haveTo {
		return d, errAt(n, field+".to", "missing")
	}
	return d, nil
}

func patternNode(n *yaml.Node) (Pattern, error) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		return Pattern{}, errors.New("want a path pattern string")
	}
	return ParsePattern(n.Value)
}

// Pattern is a compiled path pattern.
type Pattern struct {
	text string
	segs []string
}

func (p Pattern) String() string { return p.text }

// ParsePattern checks and compiles a path pattern.
func ParsePattern(s string) (Pattern, error) {
	if strings.TrimSpace(s) == "" {
		return Pattern{}, errors.New("empty path pattern")
	}
	segs, err := Split(s)
	if err != nil {
		return Pattern{}, fmt.Errorf("path pattern %q: %w", s, err)
	}
	if first := segs[0]; !strings.Contains(first, "*") && !isCategory(first) {
		return Pattern{}, fmt.Errorf("path pattern %q: unknown category %q (want one of %s)", s, first, strings.Join(Categories(), ", "))
	}
	for _, seg := range segs {
		if seg == "" {
			return Pattern{}, fmt.Errorf("path pattern %q: empty segment", s)
		}
		if strings.Contains(seg, "**") && seg != "**" {
			return Pattern{}, fmt.Errorf("path pattern %q: \"**\" must be a whole segment", s)
		}
	}
	return Pattern{text: s, segs: segs}, nil
}

// Categories are the first segments of every comparison path, in report
// order.
func Categories() []string {
	return []string{"system", "baseboard", "bios", "cpu", "memory", "network", "storage", "pci"}
}

func isCategory(s string) bool {
	for _, c := range Categories() {
		if c == s {
			return true
		}
	}
	return false
}

// Split cuts a path into segments at dots outside brackets:
// "network.nics[0000:03:00.0].driver" is network, nics[0000:03:00.0], driver.
func Split(path string) ([]string, error) {
	var segs []string
	depth, start := 0, 0
	for i := 0; i < len(path); i++ {
		switch path[i] {
		case '[':
			depth++
		case ']':
			if depth == 0 {
				return nil, fmt.Errorf("unbalanced ']' at byte %d", i)
			}
			depth--
		case '.':
			if depth == 0 {
				segs = append(segs, path[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, errors.New("unbalanced '['")
	}
	return append(segs, path[start:]), nil
}

// Match reports whether path matches the pattern.
func (p Pattern) Match(path string) bool {
	segs, err := Split(path)
	if err != nil {
		return false
	}
	return matchSegs(p.segs, segs)
}

func matchSegs(pat, segs []string) bool {
	if len(pat) == 0 {
		return len(segs) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(segs); i++ {
			if matchSegs(pat[1:], segs[i:]) {
				return true
			}
		}
		return false
	}
	return len(segs) > 0 && matchStar(pat[0], segs[0]) && matchSegs(pat[1:], segs[1:])
}

// matchStar matches s against p where only '*' is special.
func matchStar(p, s string) bool {
	before, after, found := strings.Cut(p, "*")
	if !found {
		return p == s
	}
	if !strings.HasPrefix(s, before) {
		return false
	}
	s = s[len(before):]
	for i := 0; i <= len(s); i++ {
		if matchStar(after, s[i:]) {
			return true
		}
	}
	return false
}

// Package yamlconf loads strict YAML configuration files whose every error
// names the file, the line and the field: unknown fields, wrong types and
// semantic checks alike. Operators fix configs from the error alone.
package yamlconf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Doc is a decoded document that remembers where each field was written.
type Doc struct {
	file string
	root *yaml.Node
}

// Error is a configuration error at a place in the file.
type Error struct {
	File  string
	Line  int    // 0 when the field is absent from the file
	Field string // dotted path, e.g. "vs.ip" or "links[1].interface"
	Msg   string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		b.WriteString(": field " + e.Field)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Load decodes data (read from file, named in errors) into out, refusing
// unknown fields, type mismatches, multiple documents and empty input.
func Load(file string, data []byte, out any) (*Doc, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &Error{File: file, Msg: "file is empty"}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return nil, yamlError(file, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &Error{File: file, Msg: "more than one YAML document; expected exactly one"}
	}
	return &Doc{file: file, root: &root}, nil
}

// yamlError turns yaml.v3's "yaml: line N: msg" (or a TypeError with several
// such lines) into an Error with the first line number.
func yamlError(file string, err error) error {
	var te *yaml.TypeError
	msgs := []string{err.Error()}
	if errors.As(err, &te) {
		msgs = te.Errors
	}
	first := strings.TrimPrefix(msgs[0], "yaml: ")
	line := 0
	if strings.HasPrefix(first, "line ") {
		rest := first[len("line "):]
		if i := strings.Index(rest, ":"); i > 0 {
			if n, convErr := strconv.Atoi(rest[:i]); convErr == nil {
				line = n
				first = strings.TrimSpace(rest[i+1:])
			}
		}
	}
	first = strings.Replace(first, "not found in type", "is not a known field of", 1)
	if len(msgs) > 1 {
		first += fmt.Sprintf(" (and %d more errors)", len(msgs)-1)
	}
	return &Error{File: file, Line: line, Msg: first}
}

// Line returns the line where the dotted field path is written ("vs.ip",
// "links[1].interface"), or 0 when it is absent.
func (d *Doc) Line(path string) int {
	if n := d.find(path); n != nil {
		return n.Line
	}
	return 0
}

// Errorf builds an Error for a field, with the field's line when present.
func (d *Doc) Errorf(path, format string, args ...any) error {
	return &Error{File: d.file, Line: d.Line(path), Field: path, Msg: fmt.Sprintf(format, args...)}
}

// Has reports whether the field is written in the file (to tell "absent" from
// "zero").
func (d *Doc) Has(path string) bool { return d.find(path) != nil }

func (d *Doc) find(path string) *yaml.Node {
	n := d.root
	if n == nil {
		return nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	if path == "" {
		return n
	}
	for _, part := range strings.Split(path, ".") {
		key, idx := part, -1
		if i := strings.IndexByte(part, '['); i >= 0 && strings.HasSuffix(part, "]") {
			v, err := strconv.Atoi(part[i+1 : len(part)-1])
			if err != nil {
				return nil
			}
			key, idx = part[:i], v
		}
		if key != "" {
			n = mapValue(n, key)
			if n == nil {
				return nil
			}
		}
		if idx >= 0 {
			if n.Kind != yaml.SequenceNode || idx >= len(n.Content) {
				return nil
			}
			n = n.Content[idx]
		}
	}
	return n
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

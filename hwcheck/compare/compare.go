// Package compare diffs two hardware inventories with go-cmp and ranks each
// difference: fatal (can break lockstep or the disk layout), warning, info,
// or unverified (a value unknown on either side: unknown never equals
// anything). Lists are matched by key (DIMMs by locator, NICs and PCI
// devices by slot, disks by name), never by enumeration order.
package compare

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/ftvs/ftvs/hwcheck/inventory"
	"github.com/ftvs/ftvs/hwcheck/policy"
	"github.com/google/go-cmp/cmp"
)

// Severity is policy.Severity: the policy file names the same levels.
type Severity = policy.Severity

// The severities.
const (
	Fatal      = policy.Fatal
	Unverified = policy.Unverified
	Warning    = policy.Warning
	Info       = policy.Info
)

// Difference is one field that differs, or that could not be verified.
type Difference struct {
	Path     string   `json:"path"`
	Category string   `json:"category"`
	A        string   `json:"a"`
	B        string   `json:"b"`
	Severity Severity `json:"severity"`
	// Blocking differences make the pair a mismatch: fatal ones, and
	// unverified ones at a fatal path that the policy does not tolerate.
	Blocking bool   `json:"blocking"`
	Reason   string `json:"reason,omitempty"` // why a value is unknown
}

// Verdict is the outcome of a comparison.
type Verdict string

// The verdicts.
const (
	Match    Verdict = "match"
	Mismatch Verdict = "mismatch"
)

// Report is every difference between two inventories, sorted by category
// then path.
type Report struct {
	A           string       `json:"a"`
	B           string       `json:"b"`
	Differences []Difference `json:"differences"`
}

// Verdict is Mismatch when any difference is blocking.
func (r Report) Verdict() Verdict {
	for _, d := range r.Differences {
		if d.Blocking {
			return Mismatch
		}
	}
	return Match
}

// Count returns how many differences have severity s, split by whether
// they block.
func (r Report) Count(s Severity) (blocking, other int) {
	for _, d := range r.Differences {
		if d.Severity != s {
			continue
		}
		if d.Blocking {
			blocking++
		} else {
			other++
		}
	}
	return blocking, other
}

// Compare diffs a against b under policy p (nil: the defaults).
func Compare(a, b *inventory.Inventory, p *policy.Policy) Report {
	rep := Report{A: a.Source, B: b.Source, Differences: []Difference{}}
	c := &collector{a: a, b: b, policy: p}
	type domain struct {
		name string
		x, y any
	}
	domains := []domain{
		{"system", a.System, b.System},
		{"baseboard", a.Baseboard, b.Baseboard},
		{"bios", a.BIOS, b.BIOS},
		{"cpu", a.CPU, b.CPU},
		{"memory", a.Memory, b.Memory},
		{"network", a.Network, b.Network},
		{"storage", a.Storage, b.Storage},
		{"pci", a.PCI, b.PCI},
	}
	for _, d := range domains {
		if reflect.ValueOf(d.x).IsNil() || reflect.ValueOf(d.y).IsNil() {
			c.add(d.name, describe(reflect.ValueOf(d.x)), describe(reflect.ValueOf(d.y)), true)
			continue
		}
		c.prefix = d.name
		cmp.Equal(d.x, d.y, options(), cmp.Reporter(c))
	}
	rep.Differences = append(rep.Differences, c.diffs...)
	sort.SliceStable(rep.Differences, func(i, j int) bool {
		di, dj := rep.Differences[i], rep.Differences[j]
		if di.Category != dj.Category {
			return categoryRank(di.Category) < categoryRank(dj.Category)
		}
		return di.Path < dj.Path
	})
	return rep
}

func categoryRank(c string) int {
	for i, x := range policy.Categories() {
		if x == c {
			return i
		}
	}
	return len(policy.Categories())
}

// options are the go-cmp options: unknown-aware leaf comparers and keyed
// list transformers.
func options() cmp.Options {
	return cmp.Options{
		leaf[string](), leaf[int](), leaf[int64](), leaf[bool](),
		keyed("flags", func(f string) (string, bool) { return f, true }),
		keyed("sockets", func(s inventory.Socket) (string, inventory.Socket) { return strconv.Itoa(s.ID), s }),
		keyed("dimms", func(d inventory.DIMM) (string, *inventory.DIMM) {
			if !d.Populated {
				return d.Key(), nil // an empty slot: compared as "empty"
			}
			return d.Key(), &d
		}),
		keyed("nics", func(n inventory.NIC) (string, inventory.NIC) { return n.Slot, n }),
		keyed("pci", func(d inventory.PCIDevice) (string, inventory.PCIDevice) { return d.Address, d }),
		keyed("disks", func(d inventory.Disk) (string, inventory.Disk) { return d.Name, d }),
	}
}

// leaf compares *T values: equal only when both are known and equal.
func leaf[T comparable]() cmp.Option {
	return cmp.Comparer(func(x, y *T) bool { return x != nil && y != nil && *x == *y })
}

// keyed turns a []T into a map by key so that go-cmp matches elements by
// key; a nil (unknown) list on either side never compares equal.
func keyed[T any, V any](name string, kv func(T) (string, V)) cmp.Option {
	return cmp.Options{
		cmp.FilterValues(func(x, y []T) bool { return x == nil || y == nil },
			cmp.Comparer(func(x, y []T) bool { return false })),
		cmp.FilterValues(func(x, y []T) bool { return x != nil && y != nil },
			cmp.Transformer(name, func(in []T) map[string]V {
				m := make(map[string]V, len(in))
				for _, e := range in {
					k, v := kv(e)
					m[k] = v
				}
				return m
			})),
	}
}

// collector is the go-cmp Reporter that turns unequal leaves into
// Differences.
type collector struct {
	a, b   *inventory.Inventory
	policy *policy.Policy
	prefix string
	steps  []cmp.PathStep
	diffs  []Difference
}

func (c *collector) PushStep(ps cmp.PathStep) { c.steps = append(c.steps, ps) }
func (c *collector) PopStep()                 { c.steps = c.steps[:len(c.steps)-1] }

func (c *collector) Report(rs cmp.Result) {
	if rs.Equal() {
		return
	}
	vx, vy := c.steps[len(c.steps)-1].Values()
	c.add(c.path(), describe(vx), describe(vy), isUnknown(vx) || isUnknown(vy))
}

func (c *collector) add(path, a, b string, unknown bool) {
	base := c.policy.Severity(path, DefaultSeverity(path))
	d := Difference{Path: path, Category: category(path), A: a, B: b, Severity: base, Blocking: base == Fatal}
	if unknown {
		d.Severity = Unverified
		d.Blocking = base == Fatal && !c.policy.Tolerates(path)
		d.Reason = c.reason(path)
	}
	c.diffs = append(c.diffs, d)
}

func category(path string) string {
	cat, _, _ := strings.Cut(path, ".")
	return cat
}

// path renders the go-cmp path the way paths are written in reports and
// policies: memory.dimms[A3].part_number.
func (c *collector) path() string {
	var b strings.Builder
	b.WriteString(c.prefix)
	for i, s := range c.steps {
		switch s := s.(type) {
		case cmp.StructField:
			parent := c.steps[i-1].Type()
			for parent.Kind() == reflect.Pointer {
				parent = parent.Elem()
			}
			name := s.Name()
			if f, ok := parent.FieldByName(name); ok {
				if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" {
					name = tag
				}
			}
			b.WriteString("." + name)
		case cmp.MapIndex:
			fmt.Fprintf(&b, "[%v]", s.Key())
		case cmp.SliceIndex:
			fmt.Fprintf(&b, "[%d]", s.Key())
		}
	}
	return b.String()
}

// reason finds why a path is unknown in each inventory's unreadable list
// (the entry for the path or its nearest ancestor).
func (c *collector) reason(path string) string {
	ra, rb := unreadable(c.a, path), unreadable(c.b, path)
	switch {
	case ra != "" && rb != "" && ra == rb:
		return "both: " + ra
	case ra != "" && rb != "":
		return "A: " + ra + "; B: " + rb
	case ra != "":
		return "A: " + ra
	case rb != "":
		return "B: " + rb
	}
	return ""
}

func unreadable(inv *inventory.Inventory, path string) string {
	best, reason := -1, ""
	for _, u := range inv.Unreadable {
		covers := path == u.Path || strings.HasPrefix(path, u.Path+".") || strings.HasPrefix(path, u.Path+"[")
		if covers && len(u.Path) > best {
			best, reason = len(u.Path), u.Reason
		}
	}
	if reason == "" && category(path) == path {
		return "not collected" // a whole section nobody explained
	}
	return reason
}

// isUnknown reports whether v is an unknown value: a nil pointer or slice.
// A nil *DIMM is an empty slot, not an unknown one; an absent map entry is
// absent hardware.
func isUnknown(v reflect.Value) bool {
	if !v.IsValid() {
		return false
	}
	switch v.Kind() {
	case reflect.Pointer:
		return v.IsNil() && v.Type() != reflect.TypeFor[*inventory.DIMM]()
	case reflect.Slice, reflect.Map:
		return v.IsNil()
	}
	return false
}

// describe renders one side of a difference.
func describe(v reflect.Value) string {
	if !v.IsValid() {
		return "absent"
	}
	if v.Kind() == reflect.Pointer && v.IsNil() && v.Type() == reflect.TypeFor[*inventory.DIMM]() {
		return "empty"
	}
	if isUnknown(v) {
		return "unknown"
	}
	if v.Kind() == reflect.Interface {
		return describe(v.Elem())
	}
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case string:
		return strconv.Quote(x)
	case bool:
		if v.Type() == reflect.TypeFor[bool]() {
			return "present"
		}
	case inventory.DIMM:
		return dimmSummary(x)
	case inventory.NIC:
		return fmt.Sprintf("%s:%s %s", deref(x.VendorID), deref(x.DeviceID), deref(x.Name))
	case inventory.PCIDevice:
		return fmt.Sprintf("%s:%s class %s", deref(x.VendorID), deref(x.DeviceID), deref(x.Class))
	case inventory.Disk:
		return fmt.Sprintf("%s %s bytes", x.Name, derefInt(x.SizeBytes))
	case inventory.Socket:
		return deref(x.ModelName)
	}
	if v.Kind() == reflect.Struct {
		return "present"
	}
	return fmt.Sprint(v.Interface())
}

func dimmSummary(d inventory.DIMM) string {
	size := "unknown size"
	if d.SizeBytes != nil {
		size = fmt.Sprintf("%d MiB", *d.SizeBytes>>20)
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s %s %s", size, deref(d.Type), deref(d.Manufacturer), deref(d.PartNumber)))
}

func deref(s *string) string {
	if s == nil {
		return "?"
	}
	return *s
}

func derefInt[T int | int64](p *T) string {
	if p == nil {
		return "?"
	}
	return strconv.FormatInt(int64(*p), 10)
}

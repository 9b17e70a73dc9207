package inventory

import (
	"reflect"
	"strconv"
	"strings"
)

// listUnknowns adds an Unreadable entry for every unknown field that no
// entry covers yet (itself or an ancestor), so the list is complete
// whatever path led to the gap.
func (inv *Inventory) listUnknowns() {
	covered := func(path string) bool {
		for _, u := range inv.Unreadable {
			if path == u.Path || strings.HasPrefix(path, u.Path+".") || strings.HasPrefix(path, u.Path+"[") {
				return true
			}
		}
		return false
	}
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() {
				if !covered(path) {
					inv.unread(path, "not reported by the source")
				}
				return
			}
			walk(path, v.Elem())
		case reflect.Slice:
			if v.IsNil() {
				if !covered(path) {
					inv.unread(path, "not reported by the source")
				}
				return
			}
			for i := 0; i < v.Len(); i++ {
				if key, ok := listKey(v.Index(i)); ok {
					walk(path+"["+key+"]", v.Index(i))
				}
			}
		case reflect.Struct:
			if d, ok := v.Interface().(DIMM); ok && !d.Populated {
				return // an empty slot has nothing more to read
			}
			t := v.Type()
			for i := 0; i < t.NumField(); i++ {
				name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
				if name == "" || name == "-" || name == "unreadable" || name == "version" || name == "source" {
					continue
				}
				p := name
				if path != "" {
					p = path + "." + name
				}
				walk(p, v.Field(i))
			}
		}
	}
	walk("", reflect.ValueOf(inv).Elem())
}

// listKey is the matching key of a list element (the same key compare
// matches by); strings (CPU flags) have none worth listing.
func listKey(v reflect.Value) (string, bool) {
	switch x := v.Interface().(type) {
	case Socket:
		return strconv.Itoa(x.ID), true
	case DIMM:
		return x.Key(), true
	case NIC:
		return x.Slot, true
	case PCIDevice:
		return x.Address, true
	case Disk:
		return x.Name, true
	}
	return "", false
}

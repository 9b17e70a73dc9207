package inventory

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// CPUInfoProcessor is one logical CPU of an x86 /proc/cpuinfo.
type CPUInfoProcessor struct {
	Processor  int
	PhysicalID int
	VendorID   string
	ModelName  string
	Family     int
	Model      int
	Stepping   *int // absent on some hypervisors
	Microcode  string
	Cores      int // "cpu cores": cores in this package
	Siblings   int // threads in this package
	Flags      []string
}

// maxCPUInfoProcessors bounds the logical CPUs read from one file.
const maxCPUInfoProcessors = 16384

// ParseCPUInfo parses an x86 /proc/cpuinfo. A file with processors but no
// vendor_id is another architecture and is refused: the inventory's CPU
// signature is x86's family/model/stepping.
func ParseCPUInfo(data []byte) ([]CPUInfoProcessor, error) {
	var procs []CPUInfoProcessor
	var cur *CPUInfoProcessor
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		key, val, ok := strings.Cut(text, ":")
		if !ok {
			continue // e.g. "power management" has a colon; anything else is not a field
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if key == "processor" {
			n, err := strconv.Atoi(val)
			if err != nil {
				if len(procs) == 0 && !seen["vendor_id"] {
					// arm64 writes "Processor : AArch64 Processor rev 4"
					return nil, errors.New("not an x86 cpuinfo: processor line is not a CPU number")
				}
				return nil, fmt.Errorf("line %d: processor %q is not a number", line, val)
			}
			if len(procs) >= maxCPUInfoProcessors {
				return nil, fmt.Errorf("more than %d processors", maxCPUInfoProcessors)
			}
			procs = append(procs, CPUInfoProcessor{Processor: n})
			cur = &procs[len(procs)-1]
			seen = map[string]bool{}
			continue
		}
		if cur == nil {
			continue
		}
		seen[key] = true
		var err error
		switch key {
		case "vendor_id":
			cur.VendorID = val
		case "model name":
			cur.ModelName = strings.Join(strings.Fields(val), " ") // "CPU           L5640  @"
		case "cpu family":
			cur.Family, err = atoi(line, key, val)
		case "model":
			cur.Model, err = atoi(line, key, val)
		case "stepping":
			var s int
			if s, err = atoi(line, key, val); err == nil {
				cur.Stepping = &s
			}
		case "microcode":
			cur.Microcode = strings.ToLower(val)
		case "physical id":
			cur.PhysicalID, err = atoi(line, key, val)
		case "cpu cores":
			cur.Cores, err = atoi(line, key, val)
		case "siblings":
			cur.Siblings, err = atoi(line, key, val)
		case "flags":
			cur.Flags = strings.Fields(val)
			sort.Strings(cur.Flags)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	if len(procs) == 0 {
		return nil, errors.New("no processor entries")
	}
	for _, p := range procs {
		if p.VendorID == "" {
			return nil, fmt.Errorf("not an x86 cpuinfo: processor %d has no vendor_id", p.Processor)
		}
	}
	return procs, nil
}

func atoi(line int, key, val string) (int, error) {
	n, err := strconv.Atoi(val)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("line %d: %s %q is not a non-negative number", line, key, val)
	}
	return n, nil
}

// physicalIDs returns the distinct package ids, ascending.
func physicalIDs(procs []CPUInfoProcessor) []int {
	seen := map[int]bool{}
	var ids []int
	for _, p := range procs {
		if !seen[p.PhysicalID] {
			seen[p.PhysicalID] = true
			ids = append(ids, p.PhysicalID)
		}
	}
	sort.Ints(ids)
	return ids
}

// cpuinfoSockets groups logical CPUs by package, in physical-id order.
func cpuinfoSockets(procs []CPUInfoProcessor) []Socket {
	byPkg := map[int][]CPUInfoProcessor{}
	var ids []int
	for _, p := range procs {
		if _, ok := byPkg[p.PhysicalID]; !ok {
			ids = append(ids, p.PhysicalID)
		}
		byPkg[p.PhysicalID] = append(byPkg[p.PhysicalID], p)
	}
	sort.Ints(ids)
	sockets := make([]Socket, 0, len(ids))
	for i, id := range ids {
		ps := byPkg[id]
		first := ps[0]
		s := Socket{
			ID:        i,
			Vendor:    ptr(first.VendorID),
			ModelName: ptr(first.ModelName),
			Family:    ptr(first.Family),
			Model:     ptr(first.Model),
			Stepping:  first.Stepping,
			Flags:     first.Flags,
		}
		// Threads of one package may run different microcode during a
		// late load: record every revision seen.
		revs := map[string]bool{}
		var list []string
		for _, p := range ps {
			if p.Microcode != "" && !revs[p.Microcode] {
				revs[p.Microcode] = true
				list = append(list, p.Microcode)
			}
		}
		sort.Strings(list)
		if len(list) > 0 {
			s.Microcode = ptr(strings.Join(list, ","))
		}
		if first.Cores > 0 {
			s.Cores = ptr(first.Cores)
		}
		if first.Siblings > 0 {
			s.Threads = ptr(first.Siblings)
		} else {
			s.Threads = ptr(len(ps))
		}
		sockets = append(sockets, s)
	}
	return sockets
}

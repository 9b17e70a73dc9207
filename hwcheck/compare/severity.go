package compare

import "github.com/ftvs/ftvs/hwcheck/policy"

// defaultRules rank paths that are not fatal; every other path is fatal:
// CPU signature, microcode, flags, core and thread counts, memory size and
// DIMM population, BIOS vendor and version, NICs, storage controllers and
// disk sizes all can break lockstep or the disk layout.
var defaultRules = []struct {
	pattern  string
	severity Severity
}{
	// Identities: recorded, never equal between two machines.
	{"system.serial", Info},
	{"system.uuid", Info},
	{"baseboard.serial", Info},
	{"memory.dimms[*].serial", Info},
	{"network.nics[*].mac", Info},
	{"network.nics[*].link_state", Info}, // a cable, not the hardware
	{"storage.disks[*].serial", Info},
	// Worth a look, but the same hardware can differ here.
	{"bios.release_date", Warning}, // re-stamped builds of one version
	{"system.sku", Warning},
	{"memory.usable_bytes", Warning}, // firmware reservations move it a little
	{"network.nics[*].name", Warning},
	{"network.nics[*].firmware_version", Warning},
	{"network.nics[*].driver", Warning},
	{"pci.devices[*].driver", Warning},
	{"pci.devices[*].revision", Warning}, // a chip stepping, same IDs and function
	{"storage.controllers[*].revision", Warning},
	{"storage.controllers[*].driver", Warning},
	{"storage.disks[*].model", Warning},
	{"storage.disks[*].rotational", Warning},
	{"storage.disks[*].transport", Warning},
}

var compiledRules = func() []policy.Downgrade {
	out := make([]policy.Downgrade, len(defaultRules))
	for i, r := range defaultRules {
		p, err := policy.ParsePattern(r.pattern)
		if err != nil {
			panic("compare: bad built-in rule " + r.pattern + ": " + err.Error())
		}
		out[i] = policy.Downgrade{Pattern: p, To: r.severity}
	}
	return out
}()

// DefaultSeverity is the severity of a difference at path before any
// policy applies.
func DefaultSeverity(path string) Severity {
	for _, r := range compiledRules {
		if r.Pattern.Match(path) {
			return r.To
		}
	}
	return Fatal
}

package vsrun

import (
	"os"
	"runtime/debug"
)

// GCPercent is the GOGC the solo driver runs with unless GOGC is set. The
// machine hands out a fresh buffer for every output frame (64 KiB for a
// super-segment) while its live heap stays a few MiB, so Go's default of 100
// collects every few MiB of traffic: measured on a 512 MiB download, 400 cuts
// the collections from ~80 to 20 and the driver's CPU by about a quarter;
// higher values only grow the heap.
const GCPercent = 400

// TuneGC applies GCPercent to the process unless the GOGC environment
// variable says otherwise. Call it from a command, not a library.
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(GCPercent)
	}
}

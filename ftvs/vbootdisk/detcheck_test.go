package vbootdisk

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ftvs/ftvs/ftvs/detcheck"
)

// The store follows the deterministic core's rules (it is meant to run
// inside machine.Step): no forbidden imports, clock, goroutines or channels,
// no unmarked map ranges, and no dependency outside the standard library
// and this module.
func TestCoreRules(t *testing.T) {
	goTool := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = "go"
	}
	checked, vs, err := detcheck.CheckModule(filepath.Join("..", ".."), goTool, "github.com/ftvs/ftvs", "./ftvs/vbootdisk")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Error(v)
	}
	want := "github.com/ftvs/ftvs/ftvs/vbootdisk"
	found := false
	for _, c := range checked {
		found = found || c == want
	}
	if !found {
		t.Fatalf("%s not checked (checked %v)", want, checked)
	}
}
